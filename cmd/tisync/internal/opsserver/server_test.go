package opsserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestReadyzReflectsChecks(t *testing.T) {
	var natsDown atomic.Bool
	s := New(DefaultConfig(), prometheus.NewRegistry(), nil)
	s.AddCheck(Check{Name: "nats", Fn: func(context.Context) error {
		if natsDown.Load() {
			return errors.New("disconnected")
		}
		return nil
	}})
	s.AddCheck(Check{Name: "scheduler", Fn: func(context.Context) error { return nil }})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	get := func() (int, readyReport) {
		t.Helper()
		resp, err := http.Get(srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r readyReport
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, r
	}

	code, report := get()
	if code != http.StatusOK || !report.Ready {
		t.Fatalf("ready: code %d, report %+v", code, report)
	}
	natsDown.Store(true)
	code, report = get()
	if code != http.StatusServiceUnavailable || report.Ready {
		t.Fatalf("not ready: code %d, report %+v", code, report)
	}
	if report.Checks["nats"] != "disconnected" || report.Checks["scheduler"] != "ok" {
		t.Errorf("checks = %v", report.Checks)
	}
}

func TestMetricsAndHealthz(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tisync_probe_total", Help: "probe"})
	reg.MustRegister(c)
	c.Add(3)
	srv := httptest.NewServer(New(DefaultConfig(), reg, nil).Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "tisync_probe_total 3") {
		t.Errorf("metrics lack the counter:\n%s", body)
	}

	resp, err = http.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz = %d", resp.StatusCode)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Listen = "127.0.0.1:0"
	s := New(cfg, prometheus.NewRegistry(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	<-s.Listening()
	resp, err := http.Get("http://" + s.Addr() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
}

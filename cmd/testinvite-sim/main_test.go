package main

import (
	"context"
	"testing"
	"time"
)

func TestParseFlags(t *testing.T) {
	t.Setenv("TESTINVITE_SIM_PRIVATE_KEY", "k-123")
	f, err := parseFlags([]string{"-seed", "9", "-tasks", "4", "-max-page-size", "50", "-retry-after", "3s", "-epoch", "2025-03-01T00:00:00Z", "-wrap-payload"})
	if err != nil {
		t.Fatal(err)
	}
	o := f.opts
	if o.Seed != 9 || o.Tasks != 4 || o.Faults.MaxPageSize != 50 || o.Faults.RetryAfter != 3*time.Second || !o.WrapPayload || o.Epoch.Month() != time.March {
		t.Errorf("options = %+v", o)
	}
	if o.Credentials.PrivateKey != "k-123" || f.keySource != "TESTINVITE_SIM_PRIVATE_KEY" {
		t.Errorf("private key not taken from the environment")
	}
	for _, bad := range [][]string{{"-epoch", "yesterday"}, {"extra"}, {"-tasks", "x"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("flags %q accepted", bad)
		}
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-tasks", "1", "-churn-rate", "100", "-log-level", "error"})
	}()
	time.AfterFunc(200*time.Millisecond, cancel)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
}

func TestRunRejectsBadOptions(t *testing.T) {
	if err := run(context.Background(), []string{"-addr", "127.0.0.1:0", "-timeout-rate", "2", "-log-level", "error"}); err == nil {
		t.Error("timeout rate 2 accepted")
	}
}

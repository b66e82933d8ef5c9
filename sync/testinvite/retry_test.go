package testinvite_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

func TestTransientFaultsRetried(t *testing.T) {
	cases := []struct {
		name   string
		faults testinvitesim.Faults
		fault  string
	}{
		{"429", testinvitesim.Faults{RateLimitRate: 0.4, RetryAfter: time.Second}, "rate_limit"},
		{"503", testinvitesim.Faults{ServerErrorRate: 0.4}, "server_error"},
		{"500", testinvitesim.Faults{ServerErrorRate: 0.4, ServerErrorStatus: 500}, "server_error"},
		{"timeout", testinvitesim.Faults{TimeoutRate: 0.3}, "timeout"},
		{"truncated body", testinvitesim.Faults{TruncateRate: 0.4}, "truncate"},
		{"malformed body", testinvitesim.Faults{MalformedRate: 0.4}, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := startSim(t, testinvitesim.Options{Seed: 31, Tasks: 1, CandidatesPerTask: 120, Faults: tc.faults})
			cfg := testConfig(srv)
			cfg.RequestTimeout = 200 * time.Millisecond
			cfg.Retry.MaxAttempts = 20
			clock := newFakeClock()
			c, logs := newClient(t, cfg, testinvite.WithClock(clock))
			taskID := srv.TaskIDs()[0]

			got, st, err := c.ListCandidates(taskID, testinvite.CandidateQuery{PageSize: 10}).Collect(ctxT(t))
			if err != nil {
				t.Fatalf("scan: %v", err)
			}
			want, _ := srv.CandidateIDs(taskID)
			if len(got) != len(want) || !st.Exhaustive() {
				t.Errorf("got %d candidates, want %d; stats %+v", len(got), len(want), st)
			}
			injected := srv.Stats().Faults[tc.fault]
			if injected == 0 {
				t.Fatalf("no %s fault injected", tc.fault)
			}
			retries := logs.FilterMessage("retrying request")
			if int64(retries.Len()) != injected {
				t.Errorf("%d retries logged for %d injected faults", retries.Len(), injected)
			}
			if e := retries.All(); len(e) > 0 && e[0].ContextMap()["attempt"] != int64(1) {
				t.Errorf("first retry logged with attempt %v", e[0].ContextMap()["attempt"])
			}
		})
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Run("seconds", func(t *testing.T) {
		srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, Faults: testinvitesim.Faults{RateLimitRate: 1, RetryAfter: 3 * time.Second}})
		cfg := testConfig(srv)
		cfg.Retry.MaxAttempts = 3
		cfg.Retry.MaxElapsed = time.Minute
		clock := newFakeClock()
		c, _ := newClient(t, cfg, testinvite.WithClock(clock))
		_, err := c.GetTask(ctxT(t), srv.TaskIDs()[0])
		if !errors.Is(err, testinvite.ErrRateLimited) || !errors.Is(err, testinvite.ErrRetriesExhausted) {
			t.Fatalf("err = %v, want rate limited after retries", err)
		}
		sleeps := clock.Sleeps()
		if len(sleeps) != 2 || sleeps[0] != 3*time.Second || sleeps[1] != 3*time.Second {
			t.Errorf("sleeps = %v, want [3s 3s]", sleeps)
		}
	})
	t.Run("http date", func(t *testing.T) {
		srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, Faults: testinvitesim.Faults{RateLimitRate: 1, RetryAfter: 5 * time.Second, RetryAfterDate: true}})
		cfg := testConfig(srv)
		cfg.Retry.MaxAttempts = 2
		clock := newFakeClock()
		clock.now = time.Now()
		c, _ := newClient(t, cfg, testinvite.WithClock(clock), testinvite.WithJitter(func(time.Duration) time.Duration { return 0 }))
		_, err := c.GetTask(ctxT(t), srv.TaskIDs()[0])
		if !errors.Is(err, testinvite.ErrRateLimited) {
			t.Fatalf("err = %v, want rate limited", err)
		}
		sleeps := clock.Sleeps()
		// The date has whole-second resolution, so the wait is between 4s and 5s.
		if len(sleeps) != 1 || sleeps[0] <= 3*time.Second || sleeps[0] > 5*time.Second {
			t.Errorf("sleeps = %v, want one wait of 4s to 5s", sleeps)
		}
	})
	t.Run("beyond total time", func(t *testing.T) {
		srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, Faults: testinvitesim.Faults{RateLimitRate: 1, RetryAfter: time.Hour}})
		cfg := testConfig(srv)
		cfg.Retry.MaxElapsed = time.Minute
		clock := newFakeClock()
		c, _ := newClient(t, cfg, testinvite.WithClock(clock))
		_, err := c.GetTask(ctxT(t), srv.TaskIDs()[0])
		var re *testinvite.RetryError
		if !errors.As(err, &re) || re.Reason != "max_elapsed" || re.Attempts != 1 {
			t.Errorf("err = %v, want giving up at once on max_elapsed", err)
		}
		if len(clock.Sleeps()) != 0 {
			t.Errorf("slept %v", clock.Sleeps())
		}
	})
}

func TestRetryCaps(t *testing.T) {
	t.Run("attempts", func(t *testing.T) {
		srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, Faults: testinvitesim.Faults{ServerErrorRate: 1}})
		cfg := testConfig(srv)
		cfg.Retry.MaxAttempts = 3
		c, _ := newClient(t, cfg, testinvite.WithClock(newFakeClock()))
		before := srv.Stats().Total
		_, err := c.GetTask(ctxT(t), srv.TaskIDs()[0])
		var re *testinvite.RetryError
		var apiErr *testinvite.APIError
		if !errors.As(err, &re) || re.Reason != "max_attempts" || re.Attempts != 3 {
			t.Fatalf("err = %v, want max_attempts after 3", err)
		}
		if !errors.Is(err, testinvite.ErrServer) || !errors.As(err, &apiErr) || apiErr.StatusCode != 503 {
			t.Errorf("err = %v, want the last 503 inside", err)
		}
		if got := srv.Stats().Total - before; got != 3 {
			t.Errorf("%d requests, want 3", got)
		}
	})
	t.Run("total time", func(t *testing.T) {
		srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, Faults: testinvitesim.Faults{ServerErrorRate: 1}})
		cfg := testConfig(srv)
		cfg.Retry = testinvite.RetryConfig{MaxAttempts: 100, InitialBackoff: time.Second, MaxBackoff: 4 * time.Second, MaxElapsed: 10 * time.Second}
		clock := newFakeClock()
		ceiling := func(d time.Duration) time.Duration { return d }
		c, _ := newClient(t, cfg, testinvite.WithClock(clock), testinvite.WithJitter(ceiling))
		_, err := c.GetTask(ctxT(t), srv.TaskIDs()[0])
		var re *testinvite.RetryError
		if !errors.As(err, &re) || re.Reason != "max_elapsed" {
			t.Fatalf("err = %v, want max_elapsed", err)
		}
		// Ceilings 1s, 2s, 4s fit in 10s; the next 4s would not.
		want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}
		if got := clock.Sleeps(); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
			t.Errorf("sleeps = %v, want %v", got, want)
		}
		if re.Attempts != 4 {
			t.Errorf("attempts = %d, want 4", re.Attempts)
		}
	})
}

func TestNonRetryableFailFast(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, CandidatesPerTask: 2})
	c, logs := newClient(t, testConfig(srv))
	ctx := ctxT(t)
	taskID := srv.TaskIDs()[0]
	cases := []struct {
		name string
		call func() error
		want error
	}{
		{"404 task", func() error { _, err := c.GetTask(ctx, "AAAAAAAAAAAAAAAAAAAA"); return err }, testinvite.ErrNotFound},
		{"404 candidate", func() error { _, err := c.GetCandidate(ctx, taskID, "nope"); return err }, testinvite.ErrNotFound},
		{"404 test instance", func() error { _, err := c.GetTestInstance(ctx, taskID, "nope"); return err }, testinvite.ErrNotFound},
		{"400 invalid body", func() error {
			_, err := c.CreateCandidate(ctx, taskID, testinvite.NewCandidate{Kind: "robot"})
			return err
		}, testinvite.ErrBadRequest},
		{"400 expand keyword", func() error {
			ids, _ := srv.SessionIDs(taskID)
			_, err := c.ExpandTestInstance(ctx, taskID, ids[0], "everything")
			return err
		}, testinvite.ErrBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := srv.Stats().Total
			err := tc.call()
			if !errors.Is(err, tc.want) || errors.Is(err, testinvite.ErrRetriesExhausted) {
				t.Errorf("err = %v, want %v without retries", err, tc.want)
			}
			if got := srv.Stats().Total - before; got != 1 {
				t.Errorf("%d requests, want 1", got)
			}
		})
	}
	if n := logs.FilterMessage("retrying request").Len(); n != 0 {
		t.Errorf("%d retries logged", n)
	}
}

func TestCreateNotRetriedOnServerError(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, Faults: testinvitesim.Faults{ServerErrorRate: 1}})
	c, _ := newClient(t, testConfig(srv))
	before := srv.Stats().Total
	_, err := c.CreateCandidate(ctxT(t), srv.TaskIDs()[0], testinvite.NewCandidate{Kind: testinvite.KindTemporaryCandidate, Fullname: "X"})
	if !errors.Is(err, testinvite.ErrServer) || errors.Is(err, testinvite.ErrRetriesExhausted) {
		t.Errorf("err = %v, want a single 503", err)
	}
	if got := srv.Stats().Total - before; got != 1 {
		t.Errorf("%d requests, want 1", got)
	}
}

func TestConnectionResetRetried(t *testing.T) {
	var calls atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		io.WriteString(w, `{"taskId":"T1","title":"x","createdAt":1}`)
	}))
	t.Cleanup(hs.Close)
	cfg := testinvite.DefaultConfig()
	cfg.BaseURL, cfg.OrganizationID, cfg.PrivateKey, cfg.RateLimit.RPS = hs.URL, "org1", "k", 0
	c, logs := newClient(t, cfg, testinvite.WithClock(newFakeClock()))
	task, err := c.GetTask(ctxT(t), "T1")
	if err != nil || task.ID != "T1" {
		t.Fatalf("get task = %+v, %v", task, err)
	}
	entries := logs.FilterMessage("retrying request").All()
	if len(entries) != 2 || entries[0].ContextMap()["reason"] != "connection" || entries[1].ContextMap()["attempt"] != int64(2) {
		t.Errorf("retry logs = %v", entries)
	}
}

func TestCancelDuringBackoff(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1, Faults: testinvitesim.Faults{ServerErrorRate: 1}})
	cfg := testConfig(srv)
	cfg.Retry = testinvite.RetryConfig{MaxAttempts: 10, InitialBackoff: time.Hour, MaxBackoff: time.Hour, MaxElapsed: 10 * time.Hour}
	c, _ := newClient(t, cfg, testinvite.WithJitter(func(d time.Duration) time.Duration { return d }))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.GetTask(ctx, srv.TaskIDs()[0])
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want context deadline", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Errorf("returned after %v", time.Since(start))
	}
}

func TestSecretsScrubbedFromBodies(t *testing.T) {
	const key = "echoed-private-key-7d2a"
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"message":"bad auth `+r.Header.Get("Authorization")+` key=`+key+`"}`)
	}))
	t.Cleanup(hs.Close)
	cfg := testinvite.DefaultConfig()
	cfg.BaseURL, cfg.OrganizationID, cfg.PrivateKey, cfg.RateLimit.RPS = hs.URL, "org1", key, 0
	cfg.Retry.MaxAttempts = 2
	c, logs := newClient(t, cfg, testinvite.WithClock(newFakeClock()))

	_, err := c.GetTask(ctxT(t), "T1")
	if err == nil {
		t.Fatal("no error")
	}

	basic := base64.StdEncoding.EncodeToString([]byte("org1:" + key))
	texts := []string{err.Error()}
	for _, e := range logs.All() {
		texts = append(texts, e.Message, mustJSON(t, e.ContextMap()))
	}
	if logs.Len() == 0 {
		t.Fatal("no retry logged")
	}
	for _, text := range texts {
		if strings.Contains(text, key) || strings.Contains(text, basic) {
			t.Errorf("secret in %q", text)
		}
	}
	if !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("error %q shows no redaction", err)
	}
}

func TestRateLimitShared(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 1, Tasks: 1})
	cfg := testConfig(srv)
	cfg.RateLimit = testinvite.RateLimitConfig{RPS: 2, Burst: 1}
	clock := newFakeClock()
	c, _ := newClient(t, cfg, testinvite.WithClock(clock))
	basic := c.WithMode(testinvite.ModeBasic)
	for i := 0; i < 3; i++ {
		if _, err := c.GetTask(ctxT(t), srv.TaskIDs()[0]); err != nil {
			t.Fatal(err)
		}
		if _, err := basic.GetTask(ctxT(t), srv.TaskIDs()[0]); err != nil {
			t.Fatal(err)
		}
	}
	// Six requests at 2 per second with a burst of 1: five waits of 500ms.
	var total time.Duration
	for _, d := range clock.Sleeps() {
		total += d
	}
	if total != 2500*time.Millisecond {
		t.Errorf("waited %v in %v, want 2.5s", total, clock.Sleeps())
	}
}

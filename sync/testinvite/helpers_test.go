package testinvite_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// startSim starts a simulator on a loopback port for the test.
func startSim(t testing.TB, opts testinvitesim.Options) *testinvitesim.Server {
	t.Helper()
	srv, err := testinvitesim.NewServer(opts)
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(srv.Close)
	return srv
}

// testConfig returns a client configuration for srv with fast retries and no rate limit.
func testConfig(srv *testinvitesim.Server) testinvite.Config {
	cfg := testinvite.DefaultConfig()
	cfg.BaseURL = srv.URL
	cfg.OrganizationID = srv.OrganizationID()
	cfg.PrivateKey = testinvite.Secret(srv.Credentials().PrivateKey)
	cfg.Token = testinvite.Secret(srv.Credentials().Token)
	cfg.RateLimit.RPS = 0
	cfg.RequestTimeout = 5 * time.Second
	cfg.Retry = testinvite.RetryConfig{MaxAttempts: 5, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, MaxElapsed: 10 * time.Second}
	return cfg
}

// newClient builds a client whose logs are observed at debug level.
func newClient(t testing.TB, cfg testinvite.Config, opts ...testinvite.Option) (*testinvite.Client, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	c, err := testinvite.New(cfg, zap.New(core), nil, opts...)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c, logs
}

// fakeClock is a Clock whose Sleep advances time at once and records the wait.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.sleeps = append(f.sleeps, d)
	return nil
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

package testinvite_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

func TestMetrics(t *testing.T) {
	srv := startSim(t, testinvitesim.Options{Seed: 3, Tasks: 1, CandidatesPerTask: 60,
		Faults: testinvitesim.Faults{MaxPageSize: 20, ServerErrorRate: 0.3}})
	reg := prometheus.NewRegistry()
	cfg := testConfig(srv)
	cfg.Retry.MaxAttempts = 20
	c, err := testinvite.New(cfg, zap.NewNop(), reg, testinvite.WithClock(newFakeClock()))
	if err != nil {
		t.Fatal(err)
	}
	// A second client on the same registry shares the metrics instead of failing.
	if _, err := testinvite.New(cfg, nil, reg); err != nil {
		t.Fatalf("second client on the registry: %v", err)
	}
	if _, _, err := c.ListCandidates(srv.TaskIDs()[0], testinvite.CandidateQuery{PageSize: 50}).Collect(ctxT(t)); err != nil {
		t.Fatal(err)
	}

	ep := testinvite.EndpointListCandidates
	injected := srv.Stats().Faults["server_error"]
	if got := testutil.ToFloat64(testinviteCounter(t, reg, "tisync_testinvite_requests_total", map[string]string{"endpoint": ep, "code": "503"})); got != float64(injected) || injected == 0 {
		t.Errorf("503 requests metric = %v, injected %d", got, injected)
	}
	if got := testutil.ToFloat64(testinviteCounter(t, reg, "tisync_testinvite_retries_total", map[string]string{"endpoint": ep, "reason": "status_5xx"})); got != float64(injected) {
		t.Errorf("retries metric = %v, want %d", got, injected)
	}
	if got := testutil.ToFloat64(testinviteCounter(t, reg, "tisync_testinvite_short_pages_total", map[string]string{"endpoint": ep})); got != 1 {
		t.Errorf("short pages metric = %v, want 1", got)
	}
	if n, err := testutil.GatherAndCount(reg, "tisync_testinvite_request_duration_seconds"); err != nil || n == 0 {
		t.Errorf("duration histogram series = %d, %v", n, err)
	}
}

// testinviteCounter returns the counter child with the given labels from the registry.
func testinviteCounter(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metric
				}
			}
			return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return m.GetCounter().GetValue() })
		}
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "x", Help: "x"}, func() float64 { return 0 })
}

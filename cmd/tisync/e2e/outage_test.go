package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/tisync/tisync/sink/clickhouse/clickhousetest"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// TestOutages runs the daemon through three outages, one after the other, while the organization
// changes: ClickHouse unreachable, a storm of 5xx and 429 responses from the API, and pagination
// drift with a page-size cap. At the end the tables must equal the truth, with no duplicate and no
// false delete.
func TestOutages(t *testing.T) {
	t.Parallel()
	var proxy *clickhousetest.Proxy
	s := newStack(t, stackOptions{
		sim:      testinvitesim.Options{Seed: 31, Tasks: 3, CandidatesPerTask: 250},
		pageSize: 40,
		clickhouseAddr: func(server, _ string) string {
			proxy = clickhousetest.NewProxy(t, server)
			return proxy.Addr()
		},
	})
	s.d.start()
	initial := readTruth(t, s.sim)
	s.wh.waitCaughtUp(t, initial.records, 90*time.Second)
	states := []state{initial.records}

	// ClickHouse goes away while events keep coming; the sink retries until it is back.
	s.sim.SetChurnRate(20)
	from := s.d.lineCount()
	proxy.Cut()
	retries := waitLines(t, s.d, from, 3, 60*time.Second, func(l logLine) bool { return l.msg == "insert failed; retrying" })
	proxy.Restore(t)
	t.Logf("ClickHouse outage: %d failed inserts retried, last: %s", len(retries), retries[len(retries)-1].str("error"))

	// The API fails most requests with 5xx or 429.
	storm := testinvitesim.Faults{ServerErrorRate: 0.5, RateLimitRate: 0.3, RetryAfter: time.Second}
	before := s.sim.Stats()
	if err := s.sim.SetFaults(storm); err != nil {
		t.Fatal(err)
	}
	s.waitCycles(2, 2*time.Minute)
	stormStats := s.sim.Stats().Sub(before)
	if err := s.sim.SetFaults(testinvitesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	t.Logf("storm: %d requests, faults %v", stormStats.Total, stormStats.Faults)
	if stormStats.Faults["server_error"] == 0 || stormStats.Faults["rate_limit"] == 0 {
		t.Errorf("the storm injected no 5xx or no 429: %v", stormStats.Faults)
	}

	// Records are created and deleted between the pages of scans, and the server caps pages below
	// the requested size.
	drift := testinvitesim.Faults{DriftRate: 0.3, DriftInserts: 2, DriftDeletes: 2, MaxPageSize: 30}
	before = s.sim.Stats()
	if err := s.sim.SetFaults(drift); err != nil {
		t.Fatal(err)
	}
	s.waitCycles(3, 2*time.Minute)
	driftStats := s.sim.Stats().Sub(before)
	if driftStats.Faults["drift"] == 0 {
		t.Errorf("no drift was injected: %v", driftStats.Faults)
	}

	final := s.settle(2 * time.Minute)
	states = append(states, final.records)

	assertMatchesTruth(t, s.wh, final)
	dup := assertNoDuplicates(t, s.wh)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	changes, err := s.wh.changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertTransitions(t, changes, states)
	deletes := assertNoFalseDeletes(t, changes, final)
	partial := len(s.d.logs(func(l logLine) bool { return l.msg == "poll finished" && l.str("scan") == "partial" }))
	failed := len(s.d.logs(func(l logLine) bool {
		return l.msg == "poll failed; the checkpoint is unchanged and the next poll redoes the work"
	}))
	t.Logf("drift: %d drifts in %d requests; %d partial and %d failed polls in all; %d change events (%d rows before OPTIMIZE), %d deleted records",
		driftStats.Faults["drift"], driftStats.Total, partial, failed, dup.idsBefore, dup.rowsBefore, deletes)
}

// waitLines waits until n lines logged after the first from lines match, and returns them.
func waitLines(t testing.TB, d *daemon, from, n int, timeout time.Duration, match func(logLine) bool) []logLine {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		lines := d.logsFrom(from, match)
		if len(lines) >= n {
			return lines
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d matching log lines within %s, want %d", len(lines), timeout, n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

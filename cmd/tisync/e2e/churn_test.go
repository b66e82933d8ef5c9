package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// apiFaults are the faults of the churn test: every kind of failure the client retries, and
// pagination drift, which makes scans partial.
var apiFaults = testinvitesim.Faults{
	ServerErrorRate: 0.05,
	RateLimitRate:   0.05,
	RetryAfter:      time.Second,
	TruncateRate:    0.03,
	MalformedRate:   0.03,
	DriftRate:       0.05,
	DriftInserts:    1,
	DriftDeletes:    1,
}

// TestChurnAndFaults feeds the daemon a changing organization through a faulty API. After each
// round of churn it waits until ClickHouse has caught up and records the truth. At the end, with
// churn and faults stopped, the tables must equal the truth field by field. change_events must
// contain each event once, an event for every recorded state and every delete, and no false
// delete.
func TestChurnAndFaults(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{
		sim:      testinvitesim.Options{Seed: 11, Tasks: 3, CandidatesPerTask: 300, StepsPerTask: 2},
		pageSize: 50,
	})
	if err := s.sim.SetFaults(apiFaults); err != nil {
		t.Fatal(err)
	}
	s.d.start()

	const rounds = 3
	var states []state
	for round := 0; round < rounds; round++ {
		if round > 0 {
			// A burst of changes between two scans, then changes while the daemon scans, with drift.
			s.sim.Resume()
			s.sim.Churn(300)
			s.sim.SetChurnRate(50)
			s.waitCycles(2, time.Minute)
			s.sim.SetChurnRate(0)
		}
		s.sim.Freeze()
		tr := readTruth(t, s.sim)
		start := time.Now()
		s.wh.waitCaughtUp(t, tr.records, 90*time.Second)
		t.Logf("round %d: %d records, caught up in %s", round, len(tr.records), time.Since(start).Round(time.Millisecond))
		states = append(states, tr.records)
	}

	final := s.settle(90 * time.Second)
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

	stats := s.sim.Stats()
	for _, fault := range []string{"server_error", "rate_limit", "truncate", "malformed", "drift"} {
		if stats.Faults[fault] == 0 {
			t.Errorf("fault %s never fired; the test did not exercise it", fault)
		}
	}
	if deletes == 0 {
		t.Error("no deleted event at all; the churn did not exercise deletes")
	}
	t.Logf("%d API requests, faults %v; %d change events (%d physical rows before OPTIMIZE), %d deleted records; %d error lines in the log",
		stats.Total, stats.Faults, dup.idsBefore, dup.rowsBefore, deletes, len(s.d.errorLines()))
}

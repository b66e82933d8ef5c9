package e2e

import (
	"testing"
	"time"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// TestKillDuringMigrationCheck kills the daemon right after its sink took the ClickHouse migration
// lock at start-up. With sink.auto_migrate every start takes that lock, even when no migration is
// pending. The next run must write changes without waiting for the killed run's lock to expire
// (clickhouse.migration_lock_lease, 10m by default).
func TestKillDuringMigrationCheck(t *testing.T) {
	t.Parallel()
	var proxy *insertProxy
	s := newStack(t, stackOptions{
		sim: testinvitesim.Options{Seed: 53, Tasks: 1, CandidatesPerTask: 20},
		clickhouseAddr: func(server, database string) string {
			proxy = newInsertProxy(t, server, database, 0, "schema_migrations_lock")
			return proxy.addr
		},
		// Task leases of the killed run expire after 3s, so that they cannot delay the last run.
		settings: map[string]any{"publish": map[string]any{"lease": map[string]any{"ttl": "3s"}}},
	})

	// The first run creates the tables and loads the organization.
	s.d.start()
	initial := readTruth(t, s.sim)
	s.wh.waitCaughtUp(t, initial.records, time.Minute)
	if code := s.d.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}

	// The second run dies right after ClickHouse stored its claim of the migration lock.
	killed := make(chan error, 1)
	hook := func(r insertReply) {
		if r.n == 2 && proxy.hook.CompareAndSwap(proxy.hook.Load(), nil) {
			killed <- s.d.sigkill()
		}
	}
	proxy.hook.Store(&hook)
	s.d.startAsync()
	select {
	case err := <-killed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the sink did not take the migration lock within a minute")
	}

	// The third run must write a change as promptly as any run.
	s.d.start()
	task := s.sim.TaskIDs()[0]
	ids, err := s.sim.CandidateIDs(task)
	if err != nil {
		t.Fatal(err)
	}
	group := "after-kill"
	if err := s.sim.UpdateCandidate(task, ids[0], testinvitesim.CandidateUpdate{Group: &group}); err != nil {
		t.Fatal(err)
	}
	err = s.ticketGroupWithin(ids[0], group, 30*time.Second)
	if err == nil {
		return
	}
	waits := s.d.logs(func(l logLine) bool { return l.run == 3 && l.msg == "waiting for migration lock" })
	if len(waits) == 0 {
		t.Fatal(err)
	}
	t.Fatalf("%v: the restarted sink waited for the killed run's migration lock %d times, held by %v; "+
		"Migrate takes the lock at every start, even when no migration is pending, and a lock left by a "+
		"killed process lasts until clickhouse.migration_lock_lease ends", err, len(waits), waits[len(waits)-1].fields["holders"])
}

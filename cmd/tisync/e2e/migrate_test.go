package e2e

import (
	"testing"
	"time"

	"github.com/tisync/tisync/sink/clickhouse/clickhousetest"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// TestStaleMigrationLockDoesNotStall starts the daemon on a current database whose migration lock
// is still claimed by a run that was killed while it held it. With sink.auto_migrate every start
// checks the migrations. It must not wait for that claim to expire (clickhouse.migration_lock_lease,
// 10m by default) when nothing is pending, and the next change must reach ClickHouse as promptly as
// in any run.
func TestStaleMigrationLockDoesNotStall(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOptions{
		sim: testinvitesim.Options{Seed: 53, Tasks: 1, CandidatesPerTask: 20},
	})

	// The first run creates the tables and loads the organization.
	s.d.start()
	initial := readTruth(t, s.sim)
	s.wh.waitCaughtUp(t, initial.records, time.Minute)
	if code := s.d.stop(); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}

	// A runner killed while it held the lock leaves a live claim behind.
	clickhousetest.Exec(t, s.wh.addr, "INSERT INTO "+s.wh.db+".schema_migrations_lock (owner, lease_until, released, updated_at) "+
		"SELECT 'killed-run', now() + 3600, 0, 1")

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
	if err := s.ticketGroupWithin(ids[0], group, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if waits := s.d.logs(func(l logLine) bool { return l.run == 2 && l.msg == "waiting for migration lock" }); len(waits) > 0 {
		t.Errorf("the restarted sink waited for the stale migration lock %d times", len(waits))
	}
}

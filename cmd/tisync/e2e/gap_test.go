package e2e

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// TestKillBeforeCheckpointThenRevert kills the daemon after a poll has published two changes and
// before it stored its checkpoint: a new ticket, and a ticket whose group changed. While the daemon
// is down the new ticket is deleted and the other one changes back. The published events reach
// ClickHouse after the restart, so the next poll must correct them: a deleted event for the new
// ticket and an update back to the old group.
func TestKillBeforeCheckpointThenRevert(t *testing.T) {
	t.Parallel()
	// The checkpoint of 20,000 tickets is an object of about 1.7 MB, sent in chunks of 128 KiB: a kill
	// at its first chunk lands well before the metadata update that commits it.
	s := newStack(t, stackOptions{
		sim:      testinvitesim.Options{Seed: 97, Tasks: 1, Candidates: 20_000, Sessions: -1},
		pageSize: 1000,
		// Task leases of the killed run expire after 3s, so that they cannot delay the next run.
		settings: map[string]any{"publish": map[string]any{"lease": map[string]any{"ttl": "3s"}}},
	})
	s.d.start()
	nc, _ := s.connect()
	watch := watchStream(t, nc)
	initial := readTruth(t, s.sim)
	s.wh.waitCaughtUp(t, initial.records, time.Minute)

	task := s.sim.TaskIDs()[0]
	ids, err := s.sim.CandidateIDs(task)
	if err != nil {
		t.Fatal(err)
	}
	edited := ids[0]
	var before struct {
		Group string `json:"group"`
	}
	if err := json.Unmarshal([]byte(initial.records[recordKey{schema.EntityTicket, edited}]), &before); err != nil {
		t.Fatal(err)
	}

	// Only the ticket poll that publishes the two changes stores a checkpoint object: the daemon
	// dies while it writes that object, after JetStream acknowledged the events.
	killed := make(chan error, 1)
	var once sync.Once
	hook := func(kind, subject string) {
		if kind == "checkpoint" {
			once.Do(func() { killed <- s.d.sigkill() })
		}
	}
	watch.hook.Store(&hook)
	created, err := s.sim.AddCandidate(task, testinvitesim.CandidateSpec{Fullname: "Short Lived", Email: "short.lived@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	group := "edited-then-reverted"
	if err := s.sim.UpdateCandidate(task, edited, testinvitesim.CandidateUpdate{Group: &group}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-killed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no poll stored a checkpoint within a minute of the changes")
	}
	watch.hook.Store(nil)
	committed := s.d.logs(func(l logLine) bool {
		return l.run == 1 && l.msg == "poll finished" && l.str("entity") == "ticket" && l.num("created") > 0
	})
	if len(committed) > 0 {
		t.Fatalf("the kill came after the poll had stored its checkpoint: %s", committed[0].raw)
	}

	if err := s.sim.DeleteCandidate(task, created); err != nil {
		t.Fatal(err)
	}
	if err := s.sim.UpdateCandidate(task, edited, testinvitesim.CandidateUpdate{Group: &before.Group}); err != nil {
		t.Fatal(err)
	}
	s.d.start()
	final := s.settle(time.Minute)

	// The killed run's events reached ClickHouse: the test is only meaningful if they did.
	ctx := t.Context()
	var published uint64
	if err := s.wh.conn.QueryRow(ctx, "SELECT count() FROM "+s.wh.db+".change_events FINAL WHERE entity_id IN (?, ?) AND op IN ('created', 'updated')",
		created, edited).Scan(&published); err != nil {
		t.Fatal(err)
	}
	if published < 2 {
		t.Fatalf("%d events of the killed poll reached ClickHouse, want 2", published)
	}
	assertMatchesTruth(t, s.wh, final)
	if t.Failed() {
		t.Log("a poll that published events and died before storing its checkpoint leaves those events uncorrected " +
			"when the records return to their checkpointed state or are deleted before the next poll: the next poll " +
			"diffs against the old checkpoint and finds nothing to publish")
	}
}

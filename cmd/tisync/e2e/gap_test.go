package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
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

	// The poll that finds the two changes stores its next checkpoint as pending, publishes, and
	// then commits the checkpoint with one quick metadata update. The daemon dies as soon as the
	// first of the events is in the stream, which is almost always before that update. When the
	// commit wins the race, the attempt proves nothing: the test lets the daemon catch up and tries
	// again with new changes.
	var created string
	group := "edited-then-reverted"
	for attempt := 1; ; attempt++ {
		run := s.d.run()
		killed := make(chan error, 1)
		var once sync.Once
		hook := func(kind, subject string) {
			if kind == "event" && strings.Contains(subject, ".ticket.") {
				once.Do(func() { killed <- s.d.sigkill() })
			}
		}
		watch.hook.Store(&hook)
		created, err = s.sim.AddCandidate(task, testinvitesim.CandidateSpec{Fullname: "Short Lived", Email: "short.lived@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		group = fmt.Sprintf("edited-then-reverted-%d", attempt)
		if err := s.sim.UpdateCandidate(task, edited, testinvitesim.CandidateUpdate{Group: &group}); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-killed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(time.Minute):
			t.Fatal("no poll published the changes within a minute")
		}
		watch.hook.Store(nil)
		committed := s.d.logs(func(l logLine) bool {
			return l.run == run && l.msg == "poll finished" && l.str("entity") == "ticket" && l.num("created") > 0
		})
		if len(committed) == 0 {
			break
		}
		if attempt == 3 {
			t.Fatalf("in 3 attempts the kill always came after the poll had stored its checkpoint: %s", committed[0].raw)
		}
		t.Logf("attempt %d: the checkpoint was committed before the kill; trying again", attempt)
		s.d.start()
		s.settle(time.Minute)
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
	if published < 1 {
		t.Fatalf("%d events of the killed poll reached ClickHouse, want at least 1", published)
	}
	assertMatchesTruth(t, s.wh, final)

}

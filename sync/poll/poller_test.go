package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/checkpoint"
	"github.com/tisync/tisync/sync/diff"
	"github.com/tisync/tisync/sync/publish"
	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

func TestFirstPollEmitsSnapshots(t *testing.T) {
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 3, CandidatesPerTask: 40}})
	sums := h.pollAll()
	events := h.events(0)
	truth := h.truth()

	if len(events) != len(truth) {
		t.Fatalf("%d events for %d records", len(events), len(truth))
	}
	ids := map[string]bool{}
	for _, ev := range events {
		if ev.Data.Op != schema.OpSnapshot {
			t.Errorf("%s %s: op %s, want snapshot", ev.Data.Entity, ev.Data.EntityID, ev.Data.Op)
		}
		if ev.Data.Revision != 1 {
			t.Errorf("%s %s: revision %d, want 1", ev.Data.Entity, ev.Data.EntityID, ev.Data.Revision)
		}
		if !isNull(ev.Data.Before) {
			t.Errorf("%s %s: before is set on a snapshot", ev.Data.Entity, ev.Data.EntityID)
		}
		if ids[ev.ID] {
			t.Errorf("event id %s repeats", ev.ID)
		}
		ids[ev.ID] = true
	}
	state := map[recordKey]string{}
	replay(state, events)
	assertSameState(t, state, truth)

	for _, s := range sums {
		if s.Kind != diff.Complete {
			t.Errorf("%s: scan %s, want complete", s.Key, s.Kind)
		}
		if s.Published != s.Counts.Snapshot {
			t.Errorf("%s: published %d of %d snapshots", s.Key, s.Published, s.Counts.Snapshot)
		}
	}

	// A second poll without changes publishes nothing.
	before := h.lastSeq()
	for _, s := range h.pollAll() {
		if s.Changes() != 0 || s.Published != 0 {
			t.Errorf("%s: %d changes and %d events without churn", s.Key, s.Changes(), s.Published)
		}
	}
	if after := h.lastSeq(); after != before {
		t.Errorf("stream grew from %d to %d without churn", before, after)
	}
}

func TestPublishedEventsMatchJSONSchema(t *testing.T) {
	h := newHarness(t, harnessOptions{
		sim:  testinvitesim.Options{Tasks: 2, CandidatesPerTask: 40},
		poll: func(c *Config) { c.MassDelete.MinDeletes = 1000 },
	})
	h.pollAll()
	h.sim.Churn(200)
	h.pollAll()

	ctx := testContext(t)
	last := h.lastSeq()
	ops := map[schema.Op]int{}
	for seq := uint64(1); seq <= last; seq++ {
		msg, err := h.stream.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.ValidateEvent(msg.Data); err != nil {
			t.Errorf("event %d on %s breaks the JSON Schema: %v", seq, msg.Subject, err)
		}
		ev, err := schema.DecodeEvent(msg.Data)
		if err != nil {
			t.Errorf("event %d on %s fails the semantic checks: %v", seq, msg.Subject, err)
			continue
		}
		if err := schema.CheckSubject(&ev, msg.Subject); err != nil {
			t.Errorf("event %d: %v", seq, err)
		}
		ops[ev.Data.Op]++
	}
	for _, op := range []schema.Op{schema.OpSnapshot, schema.OpCreated, schema.OpUpdated, schema.OpDeleted} {
		if ops[op] == 0 {
			t.Errorf("no %s event checked; the churn should produce every op (got %v)", op, ops)
		}
	}
}

func TestChurnYieldsExactEvents(t *testing.T) {
	h := newHarness(t, harnessOptions{
		sim:  testinvitesim.Options{Tasks: 3, CandidatesPerTask: 60},
		poll: func(c *Config) { c.MassDelete.MinDeletes = 1000 },
	})
	h.pollAll()
	before := h.truth()
	seq := h.lastSeq()

	applied := h.sim.Churn(300)
	t.Logf("churn: %v", applied)
	h.pollAll()
	after := h.truth()
	events := h.events(seq)

	type change struct {
		op            schema.Op
		before, after string
	}
	// The records of a task created by the churn are first seen by the initial load of that task's
	// checkpoints, so they come as snapshots. Every other new record comes as created.
	oldTasks := map[string]bool{}
	for k := range before {
		if k.entity == schema.EntityTask {
			oldTasks[k.id] = true
		}
	}
	want := map[recordKey]change{}
	for k, a := range after {
		b, ok := before[k]
		switch {
		case !ok && k.entity != schema.EntityTask && !oldTasks[taskOf(t, a)]:
			want[k] = change{op: schema.OpSnapshot, after: a}
		case !ok:
			want[k] = change{op: schema.OpCreated, after: a}
		case a != b:
			want[k] = change{op: schema.OpUpdated, before: b, after: a}
		}
	}
	for k, b := range before {
		if _, ok := after[k]; !ok {
			want[k] = change{op: schema.OpDeleted, before: b}
		}
	}
	if len(want) == 0 {
		t.Fatal("churn changed nothing; the test needs changes")
	}

	got := map[recordKey]change{}
	for _, ev := range events {
		k := recordKey{ev.Data.Entity, ev.Data.EntityID}
		if _, dup := got[k]; dup {
			t.Errorf("%s %s: more than one event in one poll", k.entity, k.id)
		}
		got[k] = change{op: ev.Data.Op, before: imageOrEmpty(ev.Data.Before), after: imageOrEmpty(ev.Data.After)}
		if ev.Data.Op == schema.OpUpdated && len(ev.Data.ChangedFields) == 0 {
			t.Errorf("%s %s: update without changed fields", k.entity, k.id)
		}
		if ev.Data.Op == schema.OpDeleted && !isNull(ev.Data.After) {
			t.Errorf("%s %s: delete with an after image", k.entity, k.id)
		}
	}
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s %s: no event, want %s", k.entity, k.id, w.op)
		case g.op != w.op:
			t.Errorf("%s %s: op %s, want %s", k.entity, k.id, g.op, w.op)
		case g.after != w.after && w.op != schema.OpDeleted:
			t.Errorf("%s %s: after image differs:\n got %s\nwant %s", k.entity, k.id, g.after, w.after)
		case g.before != w.before && w.op != schema.OpCreated && w.op != schema.OpSnapshot:
			t.Errorf("%s %s: before image differs", k.entity, k.id)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s %s: unexpected %s event", k.entity, k.id, g.op)
		}
	}
}

func TestCrashBeforeCheckpointRepeatsEventIDs(t *testing.T) {
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 1, CandidatesPerTask: 50}})
	task := h.sim.TaskIDs()[0]
	ctx := testContext(t)
	req := Request{TaskID: task, Entity: schema.EntityTicket}

	crash := errors.New("injected crash")
	h.poller.afterPublish = func() error { return crash }
	first, err := h.poller.Poll(ctx, req)
	if !errors.Is(err, crash) {
		t.Fatalf("crashed poll: err = %v", err)
	}
	firstEvents := h.events(0)
	if len(firstEvents) == 0 || first.Published != len(firstEvents) {
		t.Fatalf("crashed poll published %d events, stream holds %d", first.Published, len(firstEvents))
	}
	meta, err := h.store.Meta(ctx, first.Key)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Object != "" || meta.Pending == "" {
		t.Fatalf("after the crash: current object %q, pending %q; want none current and one pending", meta.Object, meta.Pending)
	}

	// The rerun first republishes the interrupted poll's events: the same ids, so JetStream reports
	// every one as a duplicate and stores nothing new.
	h.poller.afterPublish = nil
	second, err := h.poller.Poll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if second.Recovered != first.Published || second.RecoveredDuplicates != first.Published {
		t.Errorf("rerun republished %d events with %d duplicates, want %d and %d", second.Recovered, second.RecoveredDuplicates, first.Published, first.Published)
	}
	if second.Published != 0 {
		t.Errorf("rerun published %d new events, want none", second.Published)
	}
	if got := h.events(0); len(got) != len(firstEvents) {
		t.Errorf("stream holds %d events after the rerun, want %d", len(got), len(firstEvents))
	}
	meta, err = h.store.Meta(ctx, first.Key)
	if err != nil {
		t.Fatal(err)
	}
	if meta.Object == "" || meta.Pending != "" {
		t.Errorf("after the rerun: current object %q, pending %q; want the snapshot committed", meta.Object, meta.Pending)
	}

	// The same holds for updates: change records, crash again, rerun.
	ids, _ := h.sim.CandidateIDs(task)
	for _, id := range ids[:5] {
		if err := h.sim.UpdateCandidate(task, id, testinvitesim.CandidateUpdate{Group: ptr("crash-group")}); err != nil {
			t.Fatal(err)
		}
	}
	seq := h.lastSeq()
	h.poller.afterPublish = func() error { return crash }
	if _, err := h.poller.Poll(ctx, req); !errors.Is(err, crash) {
		t.Fatalf("second crash: err = %v", err)
	}
	crashed := h.events(seq)
	h.poller.afterPublish = nil
	rerun, err := h.poller.Poll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(crashed) != 5 || rerun.RecoveredDuplicates != 5 || rerun.Published != 0 {
		t.Errorf("updates: %d events before the crash; after it %d duplicates and %d new events, want 5, 5 and 0",
			len(crashed), rerun.RecoveredDuplicates, rerun.Published)
	}
}

// TestCrashThenRevertIsCorrected covers changes that go out and are undone before the next poll:
// the poll after the crash must correct what subscribers saw, not compare with the old checkpoint.
func TestCrashThenRevertIsCorrected(t *testing.T) {
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 1, CandidatesPerTask: 20, Sessions: -1}})
	task := h.sim.TaskIDs()[0]
	ctx := testContext(t)
	req := Request{TaskID: task, Entity: schema.EntityTicket}
	if _, err := h.poller.Poll(ctx, req); err != nil {
		t.Fatal(err)
	}

	ids, _ := h.sim.CandidateIDs(task)
	edited := ids[0]
	original, err := h.sim.Record("ticket", task, edited)
	if err != nil {
		t.Fatal(err)
	}
	var before struct {
		Group string `json:"group"`
	}
	if err := json.Unmarshal(original, &before); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.UpdateCandidate(task, edited, testinvitesim.CandidateUpdate{Group: ptr("temporary")}); err != nil {
		t.Fatal(err)
	}
	created, err := h.sim.AddCandidate(task, testinvitesim.CandidateSpec{})
	if err != nil {
		t.Fatal(err)
	}

	crash := errors.New("injected crash")
	h.poller.afterPublish = func() error { return crash }
	if _, err := h.poller.Poll(ctx, req); !errors.Is(err, crash) {
		t.Fatalf("crashed poll: err = %v", err)
	}
	h.poller.afterPublish = nil

	// Undo both changes in TestInvite before the next poll.
	if err := h.sim.UpdateCandidate(task, edited, testinvitesim.CandidateUpdate{Group: ptr(before.Group)}); err != nil {
		t.Fatal(err)
	}
	if err := h.sim.DeleteCandidate(task, created); err != nil {
		t.Fatal(err)
	}
	if _, err := h.poller.Poll(ctx, req); err != nil {
		t.Fatal(err)
	}

	state := map[recordKey]string{}
	replay(state, h.events(0))
	assertSameState(t, state, h.truthOf(schema.EntityTicket))
}

// halfPublisher publishes the first limit events of each call and then fails, like a process
// that dies in the middle of publishing.
type halfPublisher struct {
	inner EventPublisher
	limit int
}

func (p halfPublisher) Publish(ctx context.Context, events []schema.Event, progress func(int)) (publish.Stats, error) {
	n := min(p.limit, len(events))
	stats, err := p.inner.Publish(ctx, events[:n], progress)
	if err != nil {
		return stats, err
	}
	return stats, errors.New("injected crash in the middle of publishing")
}

func TestCrashDuringPublishIsCompleted(t *testing.T) {
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 1, CandidatesPerTask: 40, Sessions: -1}})
	task := h.sim.TaskIDs()[0]
	ctx := testContext(t)
	req := Request{TaskID: task, Entity: schema.EntityTicket}

	h.poller.pub = halfPublisher{inner: h.pub, limit: 15}
	if _, err := h.poller.Poll(ctx, req); err == nil {
		t.Fatal("the poll with a failing publisher succeeded")
	}
	if n := len(h.events(0)); n != 15 {
		t.Fatalf("stream holds %d events after the failed publish, want 15", n)
	}

	// Meanwhile a record that was published, and one that was not, change again.
	ids, _ := h.sim.CandidateIDs(task)
	for _, id := range []string{ids[0], ids[len(ids)-1]} {
		if err := h.sim.UpdateCandidate(task, id, testinvitesim.CandidateUpdate{Group: ptr("later")}); err != nil {
			t.Fatal(err)
		}
	}
	h.poller.pub = h.pub
	sum, err := h.poller.Poll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Recovered != 40 || sum.RecoveredDuplicates != 15 {
		t.Errorf("recovery republished %d events with %d duplicates, want 40 and 15", sum.Recovered, sum.RecoveredDuplicates)
	}
	state := map[recordKey]string{}
	replay(state, h.events(0))
	assertSameState(t, state, h.truthOf(schema.EntityTicket))
}

func ptr[T any](v T) *T { return &v }

// isNull reports whether an image decoded from an event is JSON null or absent.
func isNull(image []byte) bool { return len(image) == 0 || string(image) == "null" }

func imageOrEmpty(image []byte) string {
	if isNull(image) {
		return ""
	}
	return string(image)
}

// taskOf returns the taskId member of a normalized record.
func taskOf(t *testing.T, record string) string {
	t.Helper()
	raw, ok := diff.Field([]byte(record), "taskId")
	if !ok {
		t.Fatalf("record without taskId: %s", record)
	}
	return strings.Trim(string(raw), `"`)
}

func TestFaultsAndDriftNeverDeleteFalsely(t *testing.T) {
	h := newHarness(t, harnessOptions{
		sim: testinvitesim.Options{Tasks: 2, CandidatesPerTask: 120},
		client: func(c *testinvite.Config) {
			c.PageSize = 10
		},
		poll: func(c *Config) { c.MassDelete.MinDeletes = 1000 },
	})
	h.pollAll()

	faults := testinvitesim.Faults{
		ServerErrorRate: 0.08,
		TruncateRate:    0.04,
		MalformedRate:   0.02,
		DriftRate:       0.3,
		DriftInserts:    1,
		DriftDeletes:    1,
	}
	if err := h.sim.SetFaults(faults); err != nil {
		t.Fatal(err)
	}
	seq := h.lastSeq()
	partial := 0
	for round := 0; round < 4; round++ {
		h.sim.Churn(40)
		for _, s := range h.pollAll() {
			if s.Kind == diff.Partial {
				partial++
			}
		}
	}
	t.Logf("partial scans under faults: %d", partial)
	if err := h.sim.SetFaults(testinvitesim.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.pollAll()

	truth := h.truth()
	events := h.events(seq)
	deletes := 0
	for _, ev := range events {
		if ev.Data.Op != schema.OpDeleted {
			continue
		}
		deletes++
		if _, alive := truth[recordKey{ev.Data.Entity, ev.Data.EntityID}]; alive {
			t.Errorf("false delete: %s %s still exists", ev.Data.Entity, ev.Data.EntityID)
		}
	}
	if deletes == 0 {
		t.Error("no deletes at all: drift deletes candidates, so the test should see some")
	}
	state := map[recordKey]string{}
	replay(state, h.events(0))
	assertSameState(t, state, truth)
}

func TestLeaseKeepsSecondProcessOff(t *testing.T) {
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 1, CandidatesPerTask: 5}})
	ctx := testContext(t)
	task := h.sim.TaskIDs()[0]

	other, err := publish.NewLeaser(ctx, h.js, publish.DefaultConfig().Lease, "other-process", nil)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := other.Acquire(ctx, h.poller.OrganizationID(), task)
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.poller.Poll(ctx, Request{TaskID: task, Entity: schema.EntityTicket})
	if !errors.Is(err, ErrSkipped) {
		t.Fatalf("poll while another process holds the lease: err = %v, want ErrSkipped", err)
	}
	if !strings.Contains(err.Error(), "other-process") {
		t.Errorf("error %q does not name the holder", err)
	}
	if n := h.lastSeq(); n != 0 {
		t.Errorf("skipped poll published %d events", n)
	}
	if got := testutil.ToFloat64(h.poller.metrics.polls.WithLabelValues("ticket", "skipped")); got != 1 {
		t.Errorf("skipped polls metric = %g, want 1", got)
	}

	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.poller.Poll(ctx, Request{TaskID: task, Entity: schema.EntityTicket}); err != nil {
		t.Fatalf("poll after release: %v", err)
	}
}

func TestMassDeleteGuard(t *testing.T) {
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 1, CandidatesPerTask: 100, Sessions: -1}})
	ctx := testContext(t)
	task := h.sim.TaskIDs()[0]
	req := Request{TaskID: task, Entity: schema.EntityTicket}
	if _, err := h.poller.Poll(ctx, req); err != nil {
		t.Fatal(err)
	}

	ids, _ := h.sim.CandidateIDs(task)
	deleted := 0
	for _, id := range ids {
		if deleted == 30 {
			break
		}
		if h.sim.DeleteCandidate(task, id) == nil {
			deleted++
		}
	}
	if deleted != 30 {
		t.Fatalf("deleted %d candidates, need 30", deleted)
	}
	seq := h.lastSeq()
	sum, err := h.poller.Poll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Guard == nil {
		t.Fatal("guard did not trip on deleting 30 of 100 records")
	}
	if sum.Counts.Deleted != 0 || len(h.events(seq)) != 0 {
		t.Errorf("guard tripped but %d deletes were emitted", sum.Counts.Deleted)
	}
	if got := testutil.ToFloat64(h.poller.metrics.guardTrips.WithLabelValues("ticket")); got != 1 {
		t.Errorf("guard trips metric = %g, want 1", got)
	}

	// With a higher limit the same deletions go through, confirmed one by one.
	h.poller.cfg.MassDelete.MaxShare = 0.5
	sum, err = h.poller.Poll(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Guard != nil || sum.Counts.Deleted != 30 || sum.Gone != 30 {
		t.Errorf("after raising the limit: guard %v, deleted %d, gone %d, want nil, 30, 30", sum.Guard, sum.Counts.Deleted, sum.Gone)
	}
}

func TestCorruptCheckpointStopsPoll(t *testing.T) {
	store := checkpoint.NewMemory()
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 1, CandidatesPerTask: 5}, store: store})
	ctx := testContext(t)
	task := h.sim.TaskIDs()[0]
	req := Request{TaskID: task, Entity: schema.EntityTicket}
	if _, err := h.poller.Poll(ctx, req); err != nil {
		t.Fatal(err)
	}
	seq := h.lastSeq()
	if err := store.Damage(checkpoint.Key{OrganizationID: h.poller.OrganizationID(), TaskID: task, Entity: schema.EntityTicket}); err != nil {
		t.Fatal(err)
	}
	_, err := h.poller.Poll(ctx, req)
	if !errors.Is(err, checkpoint.ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
	if !strings.Contains(err.Error(), "tisync checkpoint reset") {
		t.Errorf("error %q does not say how to reset", err)
	}
	if n := h.lastSeq(); n != seq {
		t.Errorf("%d events published from an unreadable checkpoint", n-seq)
	}
}

func TestDryRunStoresNothing(t *testing.T) {
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 1, CandidatesPerTask: 12}})
	ctx := testContext(t)
	task := h.sim.TaskIDs()[0]
	var changes []diff.Change
	sum, err := h.poller.Poll(ctx, Request{TaskID: task, Entity: schema.EntityTicket, DryRun: true, OnChange: func(c diff.Change) {
		changes = append(changes, c)
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 12 || sum.Counts.Snapshot != 12 {
		t.Errorf("dry run reported %d changes (%d snapshots), want 12", len(changes), sum.Counts.Snapshot)
	}
	if h.lastSeq() != 0 {
		t.Error("dry run published events")
	}
	meta, err := h.store.Meta(ctx, sum.Key)
	if !errors.Is(err, checkpoint.ErrNotFound) {
		t.Errorf("dry run stored a checkpoint: %+v, %v", meta, err)
	}
}

func TestPollRejectsBadRequests(t *testing.T) {
	h := newHarness(t, harnessOptions{sim: testinvitesim.Options{Tasks: 1, CandidatesPerTask: 1}})
	ctx := testContext(t)
	tests := []Request{
		{TaskID: "bad.id", Entity: schema.EntityTicket},
		{TaskID: "", Entity: schema.EntityTicket},
		{TaskID: "abc", Entity: schema.EntityTask},
		{TaskID: "abc", Entity: "candidates"},
	}
	for _, req := range tests {
		t.Run(fmt.Sprintf("%s/%s", req.Entity, req.TaskID), func(t *testing.T) {
			if _, err := h.poller.Poll(ctx, req); err == nil {
				t.Error("no error")
			}
		})
	}
	_, err := h.poller.Poll(ctx, Request{TaskID: "NoSuchTask0000000000", Entity: schema.EntityTicket})
	if err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("poll of an unknown task: err = %v, want a not found error", err)
	}
}

func TestSchedulerPollsEveryTask(t *testing.T) {
	h := newHarness(t, harnessOptions{
		sim: testinvitesim.Options{Tasks: 3, CandidatesPerTask: 10},
		poll: func(c *Config) {
			c.Schedules = Schedules{Task: "@every 1h", Ticket: "@every 1h", TestSession: "@every 1h"}
		},
	})
	s := NewScheduler(h.poller, 10*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	want := len(h.truth())
	deadline := time.Now().Add(60 * time.Second)
	for len(h.events(0)) < want {
		if time.Now().After(deadline) {
			t.Fatalf("scheduler published %d of %d snapshot events within 60s", len(h.events(0)), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !s.Running() {
		t.Error("Running = false while running")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("scheduler did not stop")
	}
	if s.Running() {
		t.Error("Running = true after stop")
	}
	got := map[string]int{}
	for _, ev := range h.events(0) {
		got[string(ev.Data.Entity)]++
	}
	keys := make([]string, 0, len(got))
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 3 {
		t.Errorf("events by entity = %v, want all three entities", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"bad task id", func(c *Config) { c.Tasks.IDs = []string{"a-b"} }, "tasks.ids"},
		{"ids and filter", func(c *Config) { c.Tasks.IDs = []string{"ab"}; c.Tasks.Title = "x" }, "cannot be combined"},
		{"bad schedule", func(c *Config) { c.Schedules.Ticket = "every five minutes" }, "schedules.ticket"},
		{"bad override schedule", func(c *Config) { c.Overrides = []Override{{TaskID: "ab", TestSession: "61 * * * *"}} }, "overrides[0].test_session"},
		{"duplicate override", func(c *Config) { c.Overrides = []Override{{TaskID: "ab"}, {TaskID: "ab"}} }, "appears twice"},
		{"concurrency", func(c *Config) { c.Concurrency = 0 }, "concurrency"},
		{"share", func(c *Config) { c.MassDelete.MaxShare = 1.5 }, "mass_delete.max_share"},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %s", err, tt.want)
			}
		})
	}
}

package checkpoint

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/diff"
)

// stores returns a constructor per Store implementation; the contract tests run against each.
func stores() map[string]func(t *testing.T, c *clock) Store {
	return map[string]func(t *testing.T, c *clock) Store{
		"jetstream": func(t *testing.T, c *clock) Store {
			return newJetStream(t, connect(t, startServer(t, t.TempDir())), c)
		},
		"memory": func(t *testing.T, c *clock) Store { return NewMemory(WithClock(c.now)) },
	}
}

func TestStoreContract(t *testing.T) {
	tests := map[string]func(t *testing.T, store Store, c *clock){
		"save and load":             testSaveLoad,
		"writers race":              testRace,
		"stale base conflicts":      testStaleBase,
		"reset keeps high-water":    testResetKeepsHighWater,
		"resync request":            testResync,
		"mark scanned":              testMarkScanned,
		"reserve":                   testReserve,
		"prepare and commit":        testPrepareCommit,
		"reset drops pending":       testResetDropsPending,
		"unknown checkpoint":        testUnknown,
		"snapshot of another key":   testWrongSnapshot,
		"list sorted with metadata": testList,
	}
	for name, newStore := range stores() {
		t.Run(name, func(t *testing.T) {
			for tn, test := range tests {
				t.Run(tn, func(t *testing.T) {
					c := &clock{t: t0}
					test(t, newStore(t, c), c)
				})
			}
		})
	}
}

func testSaveLoad(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	snap, meta, err := store.Load(ctx, ticketKey)
	if err != nil || snap != nil || meta.Stored() || meta.Key != ticketKey {
		t.Fatalf("Load of a new checkpoint = %v, %+v, %v; want nil, empty metadata, nil", snap, meta, err)
	}
	res := scanTickets(t, meta, nil, 50, 0, t0)
	c.t = t0.Add(time.Second)
	saved, err := store.Save(ctx, meta, res.Next)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	got, loaded, err := store.Load(ctx, ticketKey)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !reflect.DeepEqual(records(got), records(res.Next)) {
		t.Error("loaded snapshot differs from the saved one")
	}
	if loaded != saved {
		t.Errorf("Load metadata %+v, Save returned %+v", loaded, saved)
	}
	want := Meta{Key: ticketKey, Object: saved.Object, FormatVersion: diff.FormatVersion, Records: 50,
		RecordBytes: res.Next.RecordBytes(), StoredBytes: saved.StoredBytes, SavedAt: t0.Add(time.Second),
		LastCompleteScan: t0, HighWater: res.HighWater(), revision: saved.revision}
	if saved != want {
		t.Errorf("metadata:\n got %+v\nwant %+v", saved, want)
	}
	if cur, err := store.Meta(ctx, ticketKey); err != nil || cur.StoreRevision() != saved.StoreRevision() || saved.StoreRevision() == 0 {
		t.Errorf("Meta().StoreRevision() = %d, %v; want %d from Save", cur.StoreRevision(), err, saved.StoreRevision())
	}
	if saved.StoredBytes <= 0 || saved.StoredBytes >= saved.RecordBytes {
		t.Errorf("stored %d bytes for %d record bytes", saved.StoredBytes, saved.RecordBytes)
	}

	// The next poll diffs against the loaded snapshot and saves on top of the loaded metadata.
	next := scanTickets(t, loaded, got, 50, 1, t0.Add(time.Minute))
	if next.Counts.Updated != 50 {
		t.Fatalf("%d updates, want 50", next.Counts.Updated)
	}
	if _, err := store.Save(ctx, loaded, next.Next); err != nil {
		t.Fatalf("second Save: %v", err)
	}
	got, _, err = store.Load(ctx, ticketKey)
	if err != nil || !reflect.DeepEqual(records(got), records(next.Next)) {
		t.Errorf("after the second save Load = %v; want the second snapshot", err)
	}
}

func testRace(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, base, _ := store.Load(ctx, ticketKey)
	first := scanTickets(t, base, nil, 20, 0, t0)
	base, err := store.Save(ctx, base, first.Next)
	if err != nil {
		t.Fatal(err)
	}
	prev, base, err := store.Load(ctx, ticketKey)
	if err != nil {
		t.Fatal(err)
	}
	// Two workers diffed the same checkpoint and save at once.
	a := scanTickets(t, base, prev, 20, 1, t0.Add(time.Minute))
	b := scanTickets(t, base, prev, 30, 2, t0.Add(time.Minute))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, res := range []*diff.Result{a, b} {
		wg.Go(func() { _, errs[i] = store.Save(ctx, base, res.Next) })
	}
	wg.Wait()
	conflicts := 0
	for _, err := range errs {
		switch {
		case errors.Is(err, ErrConflict):
			conflicts++
		case err != nil:
			t.Fatalf("Save: %v", err)
		}
	}
	if conflicts != 1 {
		t.Fatalf("%d of 2 racing saves got ErrConflict, want exactly 1 (errors %v)", conflicts, errs)
	}
	winner := a
	if errs[0] != nil {
		winner = b
	}
	got, meta, err := store.Load(ctx, ticketKey)
	if err != nil {
		t.Fatalf("Load after the race: %v", err)
	}
	if !reflect.DeepEqual(records(got), records(winner.Next)) || meta.Records != winner.Next.Len() {
		t.Error("stored snapshot is not the winner's")
	}
	if js, ok := store.(*JetStream); ok {
		objs, err := js.objects.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != 1 || objs[0].Name != meta.Object {
			names := []string{}
			for _, o := range objs {
				names = append(names, o.Name)
			}
			t.Errorf("objects after the race %v, want only the current %s", names, meta.Object)
		}
	}
}

func testStaleBase(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, base, _ := store.Load(ctx, ticketKey)
	res := scanTickets(t, base, nil, 5, 0, t0)
	if _, err := store.Save(ctx, base, res.Next); err != nil {
		t.Fatal(err)
	}
	// A second save from the never-stored metadata loses: the checkpoint exists now.
	if _, err := store.Save(ctx, base, res.Next); !errors.Is(err, ErrConflict) {
		t.Errorf("Save on stale empty metadata: error = %v, want ErrConflict", err)
	}
	_, loaded, _ := store.Load(ctx, ticketKey)
	if _, err := store.Reset(ctx, ticketKey); err != nil {
		t.Fatal(err)
	}
	// A poll that loaded before the reset must not overwrite it.
	if _, err := store.Save(ctx, loaded, res.Next); !errors.Is(err, ErrConflict) {
		t.Errorf("Save across a reset: error = %v, want ErrConflict", err)
	}
	if _, err := store.MarkScanned(ctx, loaded, t0); !errors.Is(err, ErrConflict) {
		t.Errorf("MarkScanned across a reset: error = %v, want ErrConflict", err)
	}
	if _, err := store.Reserve(ctx, loaded, diff.HighWater{Revision: 99}); !errors.Is(err, ErrConflict) {
		t.Errorf("Reserve across a reset: error = %v, want ErrConflict", err)
	}
}

func testResetKeepsHighWater(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	var snap *diff.Snapshot
	for v := range 4 {
		res := scanTickets(t, meta, snap, 3, v, t0.Add(time.Duration(v)*time.Minute))
		var err error
		if meta, err = store.Save(ctx, meta, res.Next); err != nil {
			t.Fatal(err)
		}
		snap = res.Next
	}
	if meta.HighWater.Revision != 4 {
		t.Fatalf("revision mark %d, want 4", meta.HighWater.Revision)
	}
	// A poll reserved revisions, published, and crashed before saving.
	meta, err := store.Reserve(ctx, meta, diff.HighWater{Revision: 5, Version: meta.HighWater.Version + 10})
	if err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(time.Hour)
	reset, err := store.Reset(ctx, ticketKey)
	if err != nil {
		t.Fatalf("Reset: %v", err)
	}
	if reset.Object != "" || reset.Records != 0 || reset.RevisionFloor != 5 || reset.HighWater != meta.HighWater || !reset.ResetAt.Equal(c.t) {
		t.Errorf("metadata after reset %+v", reset)
	}
	snap, loaded, err := store.Load(ctx, ticketKey)
	if err != nil || snap != nil {
		t.Fatalf("Load after reset = %v, %v; want no snapshot", snap, err)
	}
	res := scanTickets(t, loaded, nil, 3, 0, t0) // the clock went back, too
	for ch := range res.All() {
		if ch.Op != schema.OpSnapshot || ch.Revision != 6 {
			t.Errorf("after reset: %s revision %d, want snapshot revision 6", ch.Op, ch.Revision)
		}
		if ch.Version <= meta.HighWater.Version {
			t.Errorf("after reset: version %d not above the mark %d", ch.Version, meta.HighWater.Version)
		}
	}
	saved, err := store.Save(ctx, loaded, res.Next)
	if err != nil {
		t.Fatal(err)
	}
	if saved.RevisionFloor != 5 || saved.HighWater.Revision != 6 {
		t.Errorf("after the reload: floor %d, revision mark %d; want 5 and 6", saved.RevisionFloor, saved.HighWater.Revision)
	}
}

func testResync(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	res := scanTickets(t, meta, nil, 4, 0, t0)
	meta, err := store.Save(ctx, meta, res.Next)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.RequestResync(ctx, ticketKey); err != nil {
		t.Fatalf("RequestResync: %v", err)
	}
	snap, meta, err := store.Load(ctx, ticketKey)
	if err != nil || snap == nil || !meta.ResyncRequested || !meta.ScanOptions(snap).Resync {
		t.Fatalf("Load after RequestResync: snapshot %v, requested %v, err %v", snap != nil, meta.ResyncRequested, err)
	}
	res = scanTickets(t, meta, snap, 4, 0, t0.Add(time.Minute))
	if res.Counts.Snapshot != 4 {
		t.Errorf("resync emitted %d snapshots, want 4", res.Counts.Snapshot)
	}
	meta, err = store.Save(ctx, meta, res.Next)
	if err != nil {
		t.Fatal(err)
	}
	if meta.ResyncRequested {
		t.Error("saving a complete resync did not clear the request")
	}
}

func testMarkScanned(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	meta, err := store.Save(ctx, meta, scanTickets(t, meta, nil, 2, 0, t0).Next)
	if err != nil {
		t.Fatal(err)
	}
	later := t0.Add(10 * time.Minute)
	marked, err := store.MarkScanned(ctx, meta, later)
	if err != nil {
		t.Fatalf("MarkScanned: %v", err)
	}
	if !marked.LastCompleteScan.Equal(later) || marked.Object != meta.Object {
		t.Errorf("after MarkScanned: last scan %v, object %q", marked.LastCompleteScan, marked.Object)
	}
	got, err := store.Meta(ctx, ticketKey)
	if err != nil || !got.LastCompleteScan.Equal(later) {
		t.Errorf("Meta after MarkScanned: %v, %v", got.LastCompleteScan, err)
	}
}

func testReserve(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	// Reserving before the first save creates the checkpoint without a snapshot.
	meta, err := store.Reserve(ctx, meta, diff.HighWater{Revision: 1, Version: 100})
	if err != nil || !meta.Stored() {
		t.Fatalf("Reserve on a new checkpoint: %+v, %v", meta, err)
	}
	same, err := store.Reserve(ctx, meta, diff.HighWater{Revision: 1, Version: 50})
	if err != nil || same != meta {
		t.Errorf("Reserve below the marks changed the metadata: %+v, %v", same, err)
	}
	up, err := store.Reserve(ctx, meta, diff.HighWater{Revision: 7, Version: 90})
	if err != nil || up.HighWater != (diff.HighWater{Revision: 7, Version: 100}) {
		t.Errorf("Reserve = %+v, %v; want marks 7 and 100", up.HighWater, err)
	}
	snap, loaded, err := store.Load(ctx, ticketKey)
	if err != nil || snap != nil || loaded != up {
		t.Errorf("Load after Reserve = %v, %+v, %v", snap, loaded, err)
	}
}

func testUnknown(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	if _, err := store.Meta(ctx, ticketKey); !errors.Is(err, ErrNotFound) {
		t.Errorf("Meta: error = %v, want ErrNotFound", err)
	}
	if _, err := store.Reset(ctx, ticketKey); !errors.Is(err, ErrNotFound) {
		t.Errorf("Reset: error = %v, want ErrNotFound", err)
	}
	if _, err := store.RequestResync(ctx, ticketKey); !errors.Is(err, ErrNotFound) {
		t.Errorf("RequestResync: error = %v, want ErrNotFound", err)
	}
	bad := Key{OrganizationID: "org1", TaskID: "task.1", Entity: schema.EntityTicket}
	if _, _, err := store.Load(ctx, bad); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Load of %v: error = %v, want ErrInvalidKey", bad, err)
	}
}

func testWrongSnapshot(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	res := scanTickets(t, meta, nil, 2, 0, t0)
	other := Meta{Key: Key{OrganizationID: "org1", TaskID: "task2", Entity: schema.EntityTicket}}
	if _, err := store.Save(ctx, other, res.Next); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Save under another key: error = %v, want ErrInvalidKey", err)
	}
}

func testList(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	keys := []Key{
		{OrganizationID: "org1", TaskID: "task2", Entity: schema.EntityTestSession},
		ticketKey,
		{OrganizationID: "org1", Entity: schema.EntityTask},
	}
	for _, k := range keys {
		if _, err := store.Reserve(ctx, Meta{Key: k}, diff.HighWater{Revision: 1}); err != nil {
			t.Fatal(err)
		}
	}
	metas, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []Key
	for _, m := range metas {
		got = append(got, m.Key)
	}
	want := []Key{keys[2], keys[1], keys[0]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List keys %v, want %v", got, want)
	}
}

func testPrepareCommit(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, meta, err := store.Load(ctx, ticketKey)
	if err != nil {
		t.Fatal(err)
	}
	first := scanTickets(t, meta, nil, 20, 0, t0)
	saved, err := store.Save(ctx, meta, first.Next)
	if err != nil {
		t.Fatal(err)
	}

	next := scanTickets(t, saved, first.Next, 20, 1, t0.Add(time.Minute))
	prepared, err := store.Prepare(ctx, saved, next.Next)
	if err != nil {
		t.Fatalf("Prepare: %v", err)
	}
	if prepared.Pending == "" || prepared.Object != saved.Object {
		t.Fatalf("after Prepare: object %q pending %q; want the old object current and a pending one", prepared.Object, prepared.Pending)
	}
	if prepared.HighWater != saved.HighWater.Max(next.HighWater()) {
		t.Errorf("Prepare high-water %+v, want %+v", prepared.HighWater, saved.HighWater.Max(next.HighWater()))
	}

	// A crash here: Load still returns the old snapshot, with the pending one named in the metadata.
	got, loaded, err := store.Load(ctx, ticketKey)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(records(got), records(first.Next)) || loaded.Pending != prepared.Pending {
		t.Fatalf("Load after Prepare: pending %q; want the first snapshot and pending %q", loaded.Pending, prepared.Pending)
	}
	pending, err := store.LoadPending(ctx, loaded)
	if err != nil {
		t.Fatalf("LoadPending: %v", err)
	}
	if !reflect.DeepEqual(records(pending), records(next.Next)) {
		t.Error("pending snapshot differs from the prepared one")
	}

	committed, err := store.Commit(ctx, loaded, pending)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if committed.Pending != "" || committed.Object != prepared.Pending || committed.Records != 20 {
		t.Errorf("after Commit: %+v; want the pending object current", committed)
	}
	got, _, err = store.Load(ctx, ticketKey)
	if err != nil || !reflect.DeepEqual(records(got), records(next.Next)) {
		t.Errorf("Load after Commit = %v; want the committed snapshot", err)
	}
	if _, err := store.Commit(ctx, committed, pending); err == nil {
		t.Error("Commit without a pending snapshot succeeded")
	}
	if _, err := store.Prepare(ctx, saved, next.Next); !errors.Is(err, ErrConflict) {
		t.Errorf("Prepare on stale metadata: err = %v, want ErrConflict", err)
	}
}

func testResetDropsPending(t *testing.T, store Store, c *clock) {
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	first := scanTickets(t, meta, nil, 5, 0, t0)
	prepared, err := store.Prepare(ctx, meta, first.Next)
	if err != nil {
		t.Fatal(err)
	}
	reset, err := store.Reset(ctx, ticketKey)
	if err != nil {
		t.Fatal(err)
	}
	if reset.Pending != "" || reset.Object != "" {
		t.Errorf("after Reset: object %q pending %q; want neither", reset.Object, reset.Pending)
	}
	if reset.RevisionFloor < prepared.HighWater.Revision {
		t.Errorf("revision floor %d below the prepared mark %d", reset.RevisionFloor, prepared.HighWater.Revision)
	}
}

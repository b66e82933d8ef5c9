package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/diff"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; run go test -update to accept:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

// reportStore returns a memory store with a saved ticket checkpoint, a reset test session
// checkpoint and an unreadable task checkpoint.
func reportStore(t *testing.T) *Memory {
	t.Helper()
	c := &clock{t: t0}
	store := NewMemory(WithClock(c.now))
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	res := scanTickets(t, meta, nil, 7, 0, t0)
	if _, err := store.Save(ctx, meta, res.Next); err != nil {
		t.Fatal(err)
	}
	_, meta, _ = store.Load(ctx, ticketKey)
	snap, meta, _ := store.Load(ctx, ticketKey)
	s, _ := diff.NewScan(withTime(meta.ScanOptions(snap), t0.Add(time.Minute)))
	for i := range 7 {
		id := fmt.Sprintf("r%d", i)
		s.Add(id, ticketJSON(id, i%3))
	}
	res, err := s.Finish(diff.Complete, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(2 * time.Minute)
	if _, err := store.Save(ctx, meta, res.Next); err != nil {
		t.Fatal(err)
	}

	sessions := Key{OrganizationID: "org1", TaskID: "task1", Entity: schema.EntityTestSession}
	if _, err := store.Reserve(ctx, Meta{Key: sessions}, diff.HighWater{Revision: 12, Version: 1738411200000000}); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(time.Hour)
	if _, err := store.Reset(ctx, sessions); err != nil {
		t.Fatal(err)
	}
	tasks := Key{OrganizationID: "org1", Entity: schema.EntityTask}
	store.metas[tasks] = memoryMeta{value: []byte("{"), revision: 99}
	return store
}

func withTime(o diff.Options, at time.Time) diff.Options {
	o.ObservedAt = at
	return o
}

func TestWriteList(t *testing.T) {
	store := reportStore(t)
	metas, err := store.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteList(&buf, metas); err != nil {
		t.Fatal(err)
	}
	golden(t, "list.golden", buf.Bytes())
}

func TestShow(t *testing.T) {
	store := reportStore(t)
	ctx := context.Background()
	r, err := Show(ctx, store, ticketKey, 2)
	if err != nil {
		t.Fatalf("Show: %v", err)
	}
	want := []ValueCount{{"true", 4}, {"false", 3}}
	if fmt.Sprint(r.Counts) != fmt.Sprint(want) {
		t.Errorf("Counts = %v, want %v", r.Counts, want)
	}
	if len(r.Samples) != 2 {
		t.Errorf("%d samples, want 2", len(r.Samples))
	}
	var buf bytes.Buffer
	if err := WriteReport(&buf, r); err != nil {
		t.Fatal(err)
	}
	sessions := Key{OrganizationID: "org1", TaskID: "task1", Entity: schema.EntityTestSession}
	r, err = Show(ctx, store, sessions, 2)
	if err != nil {
		t.Fatalf("Show of a reset checkpoint: %v", err)
	}
	buf.WriteString("----\n")
	if err := WriteReport(&buf, r); err != nil {
		t.Fatal(err)
	}
	golden(t, "show.golden", buf.Bytes())

	if err := store.Damage(ticketKey); err != nil {
		t.Fatal(err)
	}
	r, err = Show(ctx, store, ticketKey, 2)
	if !errors.Is(err, ErrCorrupt) || r.Meta.Records != 7 {
		t.Errorf("Show of a damaged checkpoint = %d records, %v; want the metadata and ErrCorrupt", r.Meta.Records, err)
	}
	if _, err := Show(ctx, store, Key{OrganizationID: "org1", Entity: schema.EntityTask}, 2); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Show of unreadable metadata: error = %v, want ErrCorrupt", err)
	}
}

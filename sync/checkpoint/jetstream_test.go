package checkpoint

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tisync/tisync/sync/diff"
)

// savedStore returns a JetStream store holding one saved ticket snapshot, with its metadata.
func savedStore(t *testing.T) (*JetStream, Meta, *diff.Snapshot) {
	t.Helper()
	c := &clock{t: t0}
	store := newJetStream(t, connect(t, startServer(t, t.TempDir())), c)
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	res := scanTickets(t, meta, nil, 30, 0, t0)
	meta, err := store.Save(ctx, meta, res.Next)
	if err != nil {
		t.Fatal(err)
	}
	return store, meta, res.Next
}

func TestJetStreamSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir)
	c := &clock{t: t0}
	store := newJetStream(t, connect(t, srv), c)
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	res := scanTickets(t, meta, nil, 100, 0, t0)
	saved, err := store.Save(ctx, meta, res.Next)
	if err != nil {
		t.Fatal(err)
	}
	srv.Shutdown()
	srv.WaitForShutdown()

	store = newJetStream(t, connect(t, startServer(t, dir)), c)
	snap, loaded, err := store.Load(ctx, ticketKey)
	if err != nil {
		t.Fatalf("Load after restart: %v", err)
	}
	if !reflect.DeepEqual(records(snap), records(res.Next)) {
		t.Error("snapshot after restart differs from the saved one")
	}
	if loaded != saved {
		t.Errorf("metadata after restart %+v, want %+v", loaded, saved)
	}
	// Unchanged records still take the fast path after the restart: raw hashes were kept.
	again := scanTickets(t, loaded, snap, 100, 0, t0.Add(time.Minute))
	if again.Len() != 0 || again.Counts.Normalized != 0 {
		t.Errorf("rescan after restart: %d changes, %d normalized; want 0 and 0", again.Len(), again.Counts.Normalized)
	}
}

// putRaw overwrites the current object of meta with data.
func putRaw(t *testing.T, store *JetStream, name string, data []byte) {
	t.Helper()
	if _, err := store.objects.PutBytes(context.Background(), name, data); err != nil {
		t.Fatal(err)
	}
}

func compress(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc, _ := zstd.NewWriter(&buf)
	enc.Write(data)
	enc.Close()
	return buf.Bytes()
}

func TestJetStreamUnreadableSnapshot(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, store *JetStream, meta Meta, snap *diff.Snapshot)
		want   error
	}{
		{"garbage object", func(t *testing.T, store *JetStream, meta Meta, _ *diff.Snapshot) {
			putRaw(t, store, meta.Object, []byte("not a snapshot"))
		}, nil},
		{"damaged snapshot", func(t *testing.T, store *JetStream, meta Meta, snap *diff.Snapshot) {
			var buf bytes.Buffer
			snap.WriteTo(&buf)
			b := buf.Bytes()
			b[len(b)/2] ^= 1
			putRaw(t, store, meta.Object, compress(t, b))
		}, diff.ErrCorruptSnapshot},
		{"unknown format version in object", func(t *testing.T, store *JetStream, meta Meta, snap *diff.Snapshot) {
			var buf bytes.Buffer
			snap.WriteTo(&buf)
			b := buf.Bytes()
			binary.LittleEndian.PutUint32(b[8:], 99)
			putRaw(t, store, meta.Object, compress(t, b))
		}, diff.ErrUnknownFormat},
		{"unknown format version in metadata", func(t *testing.T, store *JetStream, meta Meta, _ *diff.Snapshot) {
			meta.FormatVersion = 99
			if _, err := store.commit(context.Background(), meta, meta); err != nil {
				t.Fatal(err)
			}
		}, diff.ErrUnknownFormat},
		{"object missing", func(t *testing.T, store *JetStream, meta Meta, _ *diff.Snapshot) {
			if err := store.objects.Delete(context.Background(), meta.Object); err != nil {
				t.Fatal(err)
			}
		}, jetstream.ErrObjectNotFound},
		{"metadata unreadable", func(t *testing.T, store *JetStream, meta Meta, _ *diff.Snapshot) {
			if _, err := store.kv.Put(context.Background(), ticketKey.kvKey(), []byte("{broken")); err != nil {
				t.Fatal(err)
			}
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			store, meta, snap := savedStore(t)
			store.metrics = newMetrics(reg)
			tt.damage(t, store, meta, snap)
			ctx := context.Background()

			got, _, err := store.Load(ctx, ticketKey)
			if got != nil {
				t.Fatal("Load returned a snapshot for an unreadable checkpoint")
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load error = %v, want a *CorruptError", err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Load error = %v, want it to wrap %v", err, tt.want)
			}
			if ce.Key != ticketKey {
				t.Errorf("CorruptError names %v, want %v", ce.Key, ticketKey)
			}
			for _, s := range []string{"org1/task1/ticket", `"tisync checkpoint reset task1 --entity ticket"`} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %s", err, s)
				}
			}
			if n := testutil.ToFloat64(store.metrics.corrupt.WithLabelValues("ticket")); n != 1 {
				t.Errorf("corrupt counter = %v, want 1", n)
			}

			// A reset repairs the checkpoint and keeps the revision mark.
			reset, err := store.Reset(ctx, ticketKey)
			if err != nil {
				t.Fatalf("Reset: %v", err)
			}
			if reset.HighWater.Revision != 1 || reset.RevisionFloor != 1 {
				t.Errorf("after reset: revision mark %d, floor %d; want 1 and 1", reset.HighWater.Revision, reset.RevisionFloor)
			}
			got, meta, err = store.Load(ctx, ticketKey)
			if err != nil || got != nil || meta.Object != "" {
				t.Errorf("Load after reset = %v, %+v, %v; want no snapshot", got, meta, err)
			}
		})
	}
}

func TestJetStreamListShowsUnreadable(t *testing.T) {
	store, _, _ := savedStore(t)
	ctx := context.Background()
	if _, err := store.kv.Put(ctx, ticketKey.kvKey(), []byte(`{"meta_version":7}`)); err != nil {
		t.Fatal(err)
	}
	metas, err := store.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 1 || metas[0].Key != ticketKey || !strings.Contains(metas[0].Unreadable, "metadata version 7") {
		t.Fatalf("List = %+v, want one unreadable checkpoint", metas)
	}
	if _, err := store.RequestResync(ctx, ticketKey); !errors.Is(err, ErrCorrupt) {
		t.Errorf("RequestResync on unreadable metadata: error = %v, want ErrCorrupt", err)
	}
}

func TestJetStreamCrashBeforeCommit(t *testing.T) {
	store, meta, snap := savedStore(t)
	ctx := context.Background()
	c := &clock{t: t0}
	store.now = c.now

	// A save wrote its object and died before swapping the metadata.
	next := scanTickets(t, meta, snap, 30, 1, t0.Add(time.Minute))
	orphan := ticketKey.objectPrefix() + "crashed"
	if _, err := store.putObjectNamed(ctx, orphan, next.Next); err != nil {
		t.Fatal(err)
	}
	got, loaded, err := store.Load(ctx, ticketKey)
	if err != nil || !reflect.DeepEqual(records(got), records(snap)) || loaded.Object != meta.Object {
		t.Fatalf("Load after the crash: %v; want the previous snapshot", err)
	}

	// Too young to tell from a save in progress: kept.
	if n, err := store.RemoveOrphans(ctx); err != nil || n != 0 {
		t.Fatalf("RemoveOrphans = %d, %v; want 0 while the object is young", n, err)
	}
	c.t = time.Now().Add(2 * time.Hour)
	if n, err := store.RemoveOrphans(ctx); err != nil || n != 1 {
		t.Fatalf("RemoveOrphans = %d, %v; want 1", n, err)
	}
	if _, err := store.objects.GetInfo(ctx, orphan); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("orphan still there: %v", err)
	}
	if got, _, err := store.Load(ctx, ticketKey); err != nil || !reflect.DeepEqual(records(got), records(snap)) {
		t.Errorf("current snapshot lost by RemoveOrphans: %v", err)
	}
}

// putObjectNamed writes a snapshot object the way Save does, without committing it.
func (s *JetStream) putObjectNamed(ctx context.Context, name string, snap *diff.Snapshot) (int64, error) {
	return s.putObject(ctx, ticketKey, name, snap)
}

func TestJetStreamConflictMetric(t *testing.T) {
	store, meta, snap := savedStore(t)
	reg := prometheus.NewRegistry()
	store.metrics = newMetrics(reg)
	ctx := context.Background()
	next := scanTickets(t, meta, snap, 30, 1, t0.Add(time.Minute))
	if _, err := store.Save(ctx, meta, next.Next); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Save(ctx, meta, next.Next); !errors.Is(err, ErrConflict) {
		t.Fatalf("second Save on the same base: error = %v, want ErrConflict", err)
	}
	if n := testutil.ToFloat64(store.metrics.conflicts.WithLabelValues("ticket")); n != 1 {
		t.Errorf("conflicts counter = %v, want 1", n)
	}
	if n := testutil.CollectAndCount(reg, "tisync_checkpoint_save_duration_seconds"); n != 1 {
		t.Errorf("save duration series = %d, want 1", n)
	}
	objs, err := store.objects.List(ctx)
	if err != nil || len(objs) != 1 {
		t.Errorf("objects after a conflict: %d, %v; want only the current one", len(objs), err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(c *Config)
		want string
	}{
		{"defaults", func(c *Config) {}, ""},
		{"object bucket", func(c *Config) { c.ObjectBucket = "a.b" }, `object_bucket: "a.b" is invalid`},
		{"meta bucket", func(c *Config) { c.MetaBucket = "" }, `meta_bucket: "" is invalid`},
		{"same buckets", func(c *Config) { c.MetaBucket = c.ObjectBucket }, "expected a name other than object_bucket"},
		{"replicas", func(c *Config) { c.Replicas = 0 }, "replicas: 0 is invalid: expected 1 to 5"},
		{"storage", func(c *Config) { c.Storage = "disk" }, `storage: "disk" is invalid`},
		{"history", func(c *Config) { c.MetaHistory = 65 }, "meta_history: 65 is invalid: expected 1 to 64"},
		{"compression", func(c *Config) { c.Compression = "max" }, `compression: "max" is invalid`},
		{"timeout", func(c *Config) { c.Timeout = 0 }, "timeout: 0s is invalid"},
		{"orphan age", func(c *Config) { c.OrphanAge = -time.Second }, "orphan_age: -1s is invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	tests := []struct {
		key   Key
		valid bool
		reset string
	}{
		{ticketKey, true, "tisync checkpoint reset task1 --entity ticket"},
		{Key{OrganizationID: "org1", Entity: "task"}, true, "tisync checkpoint reset _tasks"},
		{Key{OrganizationID: "org1", Entity: "ticket"}, false, ""},
		{Key{OrganizationID: "org 1", TaskID: "t", Entity: "ticket"}, false, ""},
		{Key{OrganizationID: "org1", TaskID: "t", Entity: "candidate"}, false, ""},
	}
	for _, tt := range tests {
		err := tt.key.Validate()
		if tt.valid != (err == nil) {
			t.Errorf("%v.Validate() = %v, want valid %v", tt.key, err, tt.valid)
			continue
		}
		if !tt.valid {
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%v.Validate() = %v, want ErrInvalidKey", tt.key, err)
			}
			continue
		}
		if got := tt.key.ResetCommand(); got != tt.reset {
			t.Errorf("ResetCommand() = %q, want %q", got, tt.reset)
		}
		back, err := parseKVKey(tt.key.kvKey())
		if err != nil || back != tt.key {
			t.Errorf("parseKVKey(%q) = %v, %v; want %v", tt.key.kvKey(), back, err, tt.key)
		}
	}
}

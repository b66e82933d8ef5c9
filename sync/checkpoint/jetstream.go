package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tisync/tisync/sync/diff"
)

// JetStream is a Store on NATS JetStream. Each snapshot is a zstd-compressed object in an object
// store bucket, under a name unique to the save. The metadata of each checkpoint is one key in a
// key-value bucket and points to the current object.
//
// A save writes the new object first, then swaps the metadata with compare-and-swap on its
// key-value revision, then deletes the previous object. A crash between the steps leaves the
// previous snapshot current and at most an unreferenced object, which RemoveOrphans deletes. The
// loser of a race deletes its own object and gets ErrConflict.
//
// A JetStream store is safe for concurrent use.
type JetStream struct {
	cfg     Config
	level   zstd.EncoderLevel
	kv      jetstream.KeyValue
	objects jetstream.ObjectStore
	log     *zap.Logger
	metrics *metrics
	now     func() time.Time
}

var _ Store = (*JetStream)(nil)

// Option changes how a store is built.
type Option func(*options)

type options struct {
	now func() time.Time
}

// WithClock sets the clock that timestamps saves and resets; the default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

func buildOptions(opts []Option) options {
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// NewJetStream creates or updates the two buckets that cfg names and returns a store on them. A
// nil logger logs nothing and a nil registerer leaves the metrics unregistered.
func NewJetStream(ctx context.Context, js jetstream.JetStream, cfg Config, logger *zap.Logger, reg prometheus.Registerer, opts ...Option) (*JetStream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	level, _ := cfg.level()
	if logger == nil {
		logger = zap.NewNop()
	}
	storage := jetstream.FileStorage
	if cfg.Storage == "memory" {
		storage = jetstream.MemoryStorage
	}
	s := &JetStream{
		cfg:     cfg,
		level:   level,
		log:     logger.Named("checkpoint"),
		metrics: newMetrics(reg),
		now:     buildOptions(opts).now,
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	var err error
	s.kv, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.MetaBucket,
		Description: "tisync checkpoint metadata",
		History:     uint8(cfg.MetaHistory),
		Replicas:    cfg.Replicas,
		Storage:     storage,
	})
	if err != nil {
		return nil, fmt.Errorf("create key-value bucket %s: %w", cfg.MetaBucket, err)
	}
	s.objects, err = js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      cfg.ObjectBucket,
		Description: "tisync checkpoint snapshots",
		Replicas:    cfg.Replicas,
		Storage:     storage,
	})
	if err != nil {
		return nil, fmt.Errorf("create object store bucket %s: %w", cfg.ObjectBucket, err)
	}
	return s, nil
}

// withTimeout applies the configured timeout to a context without a deadline.
func (s *JetStream) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.cfg.Timeout)
}

// List implements Store.
func (s *JetStream) List(ctx context.Context) ([]Meta, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	w, err := s.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	defer w.Stop()
	var metas []Meta
	for {
		select {
		case entry := <-w.Updates():
			if entry == nil {
				slices.SortFunc(metas, func(a, b Meta) int { return strings.Compare(a.Key.String(), b.Key.String()) })
				return metas, nil
			}
			key, err := parseKVKey(entry.Key())
			if err != nil {
				s.log.Warn("Skipping a metadata key that names no checkpoint", zap.String("kv_key", entry.Key()))
				continue
			}
			m, err := decodeMeta(key, entry.Value(), entry.Revision())
			if err != nil {
				m = Meta{Key: key, Unreadable: err.Error(), revision: entry.Revision()}
			}
			metas = append(metas, m)
		case <-ctx.Done():
			return nil, fmt.Errorf("list checkpoints: %w", ctx.Err())
		}
	}
}

// Meta implements Store.
func (s *JetStream) Meta(ctx context.Context, key Key) (Meta, error) {
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return s.meta(ctx, key)
}

func (s *JetStream) meta(ctx context.Context, key Key) (Meta, error) {
	entry, err := s.kv.Get(ctx, key.kvKey())
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Meta{}, fmt.Errorf("checkpoint %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("read checkpoint %s metadata: %w", key, err)
	}
	return decodeMeta(key, entry.Value(), entry.Revision())
}

// Load implements Store.
func (s *JetStream) Load(ctx context.Context, key Key) (*diff.Snapshot, Meta, error) {
	if err := key.Validate(); err != nil {
		return nil, Meta{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	defer func() {
		s.metrics.loadDuration.WithLabelValues(string(key.Entity)).Observe(time.Since(start).Seconds())
	}()

	snap, meta, err := s.load(ctx, key)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			s.metrics.corrupt.WithLabelValues(string(key.Entity)).Inc()
		}
		return nil, Meta{Key: key}, err
	}
	if snap != nil {
		s.metrics.observe(meta)
	}
	return snap, meta, nil
}

func (s *JetStream) load(ctx context.Context, key Key) (*diff.Snapshot, Meta, error) {
	for attempt := 1; ; attempt++ {
		meta, err := s.meta(ctx, key)
		if errors.Is(err, ErrNotFound) {
			return nil, Meta{Key: key}, nil
		}
		if err != nil {
			return nil, Meta{}, err
		}
		if meta.Object == "" {
			return nil, meta, nil
		}
		if meta.FormatVersion != diff.FormatVersion {
			return nil, Meta{}, &CorruptError{Key: key, Object: meta.Object, Err: fmt.Errorf(
				"metadata names format version %d, this build reads version %d: %w", meta.FormatVersion, diff.FormatVersion, diff.ErrUnknownFormat)}
		}

		obj, err := s.objects.Get(ctx, meta.Object)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			// A save may have replaced and deleted the object between the two reads: read the
			// metadata again before calling the checkpoint broken.
			if cur, merr := s.meta(ctx, key); attempt < 3 && merr == nil && cur.revision != meta.revision {
				continue
			}
			return nil, Meta{}, &CorruptError{Key: key, Object: meta.Object, Err: err}
		}
		if err != nil {
			return nil, Meta{}, fmt.Errorf("load checkpoint %s: get object %q: %w", key, meta.Object, err)
		}
		snap, content, err := readObject(obj)
		obj.Close()
		if err != nil {
			if content || errors.Is(err, jetstream.ErrDigestMismatch) {
				return nil, Meta{}, &CorruptError{Key: key, Object: meta.Object, Err: err}
			}
			return nil, Meta{}, fmt.Errorf("load checkpoint %s: read object %q: %w", key, meta.Object, err)
		}
		if err := checkSnapshot(key, snap); err != nil {
			return nil, Meta{}, &CorruptError{Key: key, Object: meta.Object, Err: err}
		}
		return snap, meta, nil
	}
}

// Save implements Store.
func (s *JetStream) Save(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error) {
	key := base.Key
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	if err := checkSnapshot(key, snap); err != nil {
		return Meta{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	defer func() {
		s.metrics.saveDuration.WithLabelValues(string(key.Entity)).Observe(time.Since(start).Seconds())
	}()

	name := key.objectPrefix() + nuid.Next()
	size, err := s.putObject(ctx, key, name, snap)
	if err != nil {
		return Meta{}, err
	}
	next := savedMeta(base, snap, name, size, s.now())
	next, err = s.commit(ctx, base, next)
	if err != nil {
		// NB: after an error other than a conflict the swap may have happened all the same, and
		// deleting the object would then break the checkpoint: delete it only once the metadata
		// shows it is not current.
		if !errors.Is(err, ErrConflict) {
			cur, merr := s.meta(ctx, key)
			if merr != nil {
				s.log.Warn("Leaving a snapshot object whose commit is uncertain", zap.String("checkpoint", key.String()), zap.String("object", name), zap.Error(merr))
				return Meta{}, err
			}
			if cur.Object == name {
				return s.saved(ctx, base, cur), nil
			}
		}
		s.deleteObject(ctx, name)
		return Meta{}, err
	}
	return s.saved(ctx, base, next), nil
}

// saved finishes a save that committed next: it deletes the superseded object and updates the
// metrics.
func (s *JetStream) saved(ctx context.Context, base, next Meta) Meta {
	if base.Object != "" && base.Object != next.Object {
		s.deleteObject(ctx, base.Object)
	}
	s.metrics.savedBytes.WithLabelValues(string(next.Key.Entity)).Add(float64(next.StoredBytes))
	s.metrics.observe(next)
	s.log.Debug("Saved checkpoint", zap.String("checkpoint", next.Key.String()), zap.String("object", next.Object),
		zap.Int("records", next.Records), zap.Int64("stored_bytes", next.StoredBytes))
	return next
}

// putObject compresses snap into a new object, streaming: the encoder writes into a pipe that
// the object store reads in chunks. It returns the object's size.
func (s *JetStream) putObject(ctx context.Context, key Key, name string, snap *diff.Snapshot) (int64, error) {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := writeObject(pw, snap, s.level)
		pw.CloseWithError(err)
		done <- err
	}()
	info, err := s.objects.Put(ctx, jetstream.ObjectMeta{
		Name:        name,
		Description: "tisync snapshot of " + key.String(),
		Metadata: map[string]string{
			"organization_id": key.OrganizationID,
			"task_id":         key.TaskID,
			"entity":          string(key.Entity),
			"format_version":  strconv.Itoa(diff.FormatVersion),
			"records":         strconv.Itoa(snap.Len()),
		},
	}, pr)
	pr.CloseWithError(io.ErrClosedPipe) // stops the encoder if Put returned before reading everything
	werr := <-done
	if err != nil {
		return 0, fmt.Errorf("save checkpoint %s: put object: %w", key, err)
	}
	if werr != nil {
		s.deleteObject(ctx, name)
		return 0, fmt.Errorf("save checkpoint %s: encode snapshot: %w", key, werr)
	}
	return int64(info.Size), nil
}

// deleteObject deletes an object that no metadata points to, on a context that outlives the
// caller's cancellation. A failure leaves an orphan, which is logged and counted.
func (s *JetStream) deleteObject(ctx context.Context, name string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.objects.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		s.metrics.cleanupFailure.Inc()
		s.log.Warn("Leaving an unreferenced snapshot object for RemoveOrphans", zap.String("object", name), zap.Error(err))
	}
}

// commit stores next as the metadata if the stored metadata is still at base's revision.
func (s *JetStream) commit(ctx context.Context, base, next Meta) (Meta, error) {
	key := next.Key
	data := encodeMeta(next)
	var rev uint64
	var err error
	if base.revision == 0 {
		rev, err = s.kv.Create(ctx, key.kvKey(), data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			err = ErrConflict
		}
	} else {
		rev, err = s.kv.Update(ctx, key.kvKey(), data, base.revision)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			err = ErrConflict
		}
	}
	if errors.Is(err, ErrConflict) {
		s.metrics.conflicts.WithLabelValues(string(key.Entity)).Inc()
		return Meta{}, fmt.Errorf("checkpoint %s: %w", key, ErrConflict)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("write checkpoint %s metadata: %w", key, err)
	}
	next.revision = rev
	return next, nil
}

// Prepare implements Store.
func (s *JetStream) Prepare(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error) {
	key := base.Key
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	if err := checkSnapshot(key, snap); err != nil {
		return Meta{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	start := time.Now()
	defer func() {
		s.metrics.saveDuration.WithLabelValues(string(key.Entity)).Observe(time.Since(start).Seconds())
	}()

	name := key.objectPrefix() + nuid.Next()
	size, err := s.putObject(ctx, key, name, snap)
	if err != nil {
		return Meta{}, err
	}
	next, err := s.commit(ctx, base, preparedMeta(base, snap, name, size, s.now()))
	if err != nil {
		// As in Save, delete the object only once the metadata shows it is not pending.
		if !errors.Is(err, ErrConflict) {
			cur, merr := s.meta(ctx, key)
			if merr != nil {
				s.log.Warn("Leaving a snapshot object whose commit is uncertain", zap.String("checkpoint", key.String()), zap.String("object", name), zap.Error(merr))
				return Meta{}, err
			}
			if cur.Pending == name {
				return cur, nil
			}
		}
		s.deleteObject(ctx, name)
		return Meta{}, err
	}
	if base.Pending != "" && base.Pending != name {
		s.deleteObject(ctx, base.Pending)
	}
	return next, nil
}

// Commit implements Store.
func (s *JetStream) Commit(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error) {
	key := base.Key
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	if base.Pending == "" {
		return Meta{}, fmt.Errorf("commit checkpoint %s: nothing pending", key)
	}
	if err := checkSnapshot(key, snap); err != nil {
		return Meta{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	next, err := s.commit(ctx, base, committedMeta(base, snap, s.now()))
	if err != nil {
		return Meta{}, err
	}
	return s.saved(ctx, base, next), nil
}

// LoadPending implements Store.
func (s *JetStream) LoadPending(ctx context.Context, meta Meta) (*diff.Snapshot, error) {
	key := meta.Key
	if meta.Pending == "" {
		return nil, fmt.Errorf("checkpoint %s: nothing pending", key)
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	obj, err := s.objects.Get(ctx, meta.Pending)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, &CorruptError{Key: key, Object: meta.Pending, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("load pending checkpoint %s: get object %q: %w", key, meta.Pending, err)
	}
	snap, content, err := readObject(obj)
	obj.Close()
	if err != nil {
		if content || errors.Is(err, jetstream.ErrDigestMismatch) {
			return nil, &CorruptError{Key: key, Object: meta.Pending, Err: err}
		}
		return nil, fmt.Errorf("load pending checkpoint %s: read object %q: %w", key, meta.Pending, err)
	}
	if err := checkSnapshot(key, snap); err != nil {
		return nil, &CorruptError{Key: key, Object: meta.Pending, Err: err}
	}
	return snap, nil
}

// MarkScanned implements Store.
func (s *JetStream) MarkScanned(ctx context.Context, base Meta, at time.Time) (Meta, error) {
	if err := base.Key.Validate(); err != nil {
		return Meta{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	next := base
	if at.After(next.LastCompleteScan) {
		next.LastCompleteScan = at.UTC()
	}
	return s.commit(ctx, base, next)
}

// Reserve implements Store.
func (s *JetStream) Reserve(ctx context.Context, base Meta, hw diff.HighWater) (Meta, error) {
	if err := base.Key.Validate(); err != nil {
		return Meta{}, err
	}
	next := base
	next.HighWater = base.HighWater.Max(hw)
	if next.HighWater == base.HighWater && base.revision != 0 {
		return base, nil
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return s.commit(ctx, base, next)
}

// Reset implements Store.
func (s *JetStream) Reset(ctx context.Context, key Key) (Meta, error) {
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return s.update(ctx, key, true, func(m Meta) Meta { return resetMeta(m, s.now()) })
}

// RequestResync implements Store.
func (s *JetStream) RequestResync(ctx context.Context, key Key) (Meta, error) {
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	return s.update(ctx, key, false, func(m Meta) Meta {
		m.ResyncRequested = true
		return m
	})
}

// update applies an operator's change to the current metadata, retrying when a poll wrote in
// between. With repair set, unreadable metadata is replaced instead of reported.
func (s *JetStream) update(ctx context.Context, key Key, repair bool, change func(Meta) Meta) (Meta, error) {
	for attempt := 1; ; attempt++ {
		entry, err := s.kv.Get(ctx, key.kvKey())
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return Meta{}, fmt.Errorf("checkpoint %s: %w", key, ErrNotFound)
		}
		if err != nil {
			return Meta{}, fmt.Errorf("read checkpoint %s metadata: %w", key, err)
		}
		cur, err := decodeMeta(key, entry.Value(), entry.Revision())
		if err != nil {
			if !repair {
				return Meta{}, err
			}
			cur = s.recoverMeta(ctx, key, entry.Revision(), err)
		}
		next, err := s.commit(ctx, cur, change(cur))
		if errors.Is(err, ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return Meta{}, err
		}
		if cur.Object != "" && cur.Object != next.Object {
			s.deleteObject(ctx, cur.Object)
		}
		if cur.Pending != "" && cur.Pending != next.Pending {
			s.deleteObject(ctx, cur.Pending)
		}
		s.metrics.observe(next)
		return next, nil
	}
}

// recoverMeta rebuilds what it can of unreadable metadata from the newest readable older value in
// the key's history, so that a reset keeps the high-water marks.
func (s *JetStream) recoverMeta(ctx context.Context, key Key, revision uint64, cause error) Meta {
	m := Meta{Key: key, revision: revision}
	history, err := s.kv.History(ctx, key.kvKey())
	if err == nil {
		for _, e := range slices.Backward(history) {
			if old, err := decodeMeta(key, e.Value(), e.Revision()); err == nil {
				m.HighWater, m.RevisionFloor = old.HighWater, old.RevisionFloor
				s.log.Warn("Recovered high-water marks of unreadable checkpoint metadata from its history",
					zap.String("checkpoint", key.String()), zap.Uint64("from_revision", e.Revision()),
					zap.Uint64("revision_high_water", m.HighWater.Revision), zap.Error(cause))
				return m
			}
		}
	}
	// NOTE: with no readable history the marks start from zero, so a revision may repeat for a
	// record. Its event ids still differ unless the content is the same.
	s.log.Warn("Resetting unreadable checkpoint metadata without high-water marks",
		zap.String("checkpoint", key.String()), zap.Error(cause))
	return m
}

// RemoveOrphans deletes the snapshot objects that no metadata points to and that are older than
// Config.OrphanAge: those left by a crash between writing an object and committing the metadata,
// or by a failed delete. Objects of checkpoints whose metadata is unreadable are kept, because
// nothing shows which of them is current. It returns the number of objects deleted.
func (s *JetStream) RemoveOrphans(ctx context.Context) (int, error) {
	ctx, cancel := s.withTimeout(ctx)
	defer cancel()
	metas, err := s.List(ctx)
	if err != nil {
		return 0, err
	}
	current := map[string]bool{}
	var unreadable []string
	for _, m := range metas {
		if m.Unreadable != "" {
			unreadable = append(unreadable, m.Key.objectPrefix())
		}
		current[m.Object] = true
		current[m.Pending] = true
	}
	objs, err := s.objects.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list snapshot objects: %w", err)
	}
	cutoff := s.now().Add(-s.cfg.OrphanAge)
	removed := 0
	for _, o := range objs {
		if current[o.Name] || o.ModTime.After(cutoff) || slices.ContainsFunc(unreadable, func(p string) bool { return strings.HasPrefix(o.Name, p) }) {
			continue
		}
		if err := s.objects.Delete(ctx, o.Name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			return removed, fmt.Errorf("delete orphan snapshot object %q: %w", o.Name, err)
		}
		removed++
		s.metrics.orphans.Inc()
		s.log.Info("Removed orphan snapshot object", zap.String("object", o.Name), zap.Time("modified", o.ModTime))
	}
	return removed, nil
}

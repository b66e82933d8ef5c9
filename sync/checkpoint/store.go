package checkpoint

import (
	"context"
	"time"

	"github.com/tisync/tisync/sync/diff"
)

// Store keeps checkpoints: per task and entity, the snapshot of the last scan and its metadata.
// Writes are atomic per checkpoint and use compare-and-swap on the metadata, so two workers racing
// on one checkpoint never leave a mixed state: one wins and the other gets ErrConflict. Readers
// always go through the metadata. Implementations are safe for concurrent use.
//
// A poll uses a Store like this:
//
//	snap, meta, err := store.Load(ctx, key)           // *CorruptError: report and skip the task
//	if meta.Pending != "" { ... finish the interrupted poll: LoadPending, republish, Commit ... }
//	opts := meta.ScanOptions(snap); opts.ObservedAt = start
//	... scan, res, err := scan.Finish(...)
//	if res.Len() > 0 {
//		meta, err = store.Prepare(ctx, meta, res.Next)   // before publishing
//		... publish every change and wait for every ack ...
//		meta, err = store.Commit(ctx, meta, res.Next)
//	} else if res.Modified() { meta, err = store.Save(ctx, meta, res.Next) } else if res.Kind == diff.Complete { meta, err = store.MarkScanned(ctx, meta, start) }
type Store interface {
	// List returns the metadata of every checkpoint, sorted by key. Checkpoints whose metadata
	// cannot be read are returned with only their Key set, so that they can be reset.
	List(ctx context.Context) ([]Meta, error)

	// Meta returns the metadata of one checkpoint. It returns ErrNotFound for a checkpoint that was
	// never stored and a *CorruptError for unreadable metadata.
	Meta(ctx context.Context, key Key) (Meta, error)

	// Load returns the current snapshot and its metadata. The snapshot is nil when none is stored
	// (never saved, or reset); the metadata of a checkpoint never stored has only its Key set. Load
	// returns a *CorruptError when the snapshot or the metadata cannot be read, never an empty
	// snapshot in its place.
	Load(ctx context.Context, key Key) (*diff.Snapshot, Meta, error)

	// Save stores snap as the checkpoint's snapshot, provided the metadata is still as base (the
	// metadata returned by the Load, Reserve or MarkScanned the snapshot builds on). It returns the
	// new metadata. It returns an error wrapping ErrConflict when the metadata changed in the
	// meantime; the stored checkpoint is then unchanged.
	Save(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error)

	// MarkScanned records that a complete scan started at the given time found nothing that needs
	// a new snapshot. It returns ErrConflict like Save.
	MarkScanned(ctx context.Context, base Meta, at time.Time) (Meta, error)

	// Prepare writes snap as the checkpoint's pending snapshot before the events of the scan that
	// built it are published, and raises the high-water marks to snap's. The current snapshot stays
	// current until Commit, but a crash in between leaves Meta.Pending set: the events may have
	// reached subscribers, so the next poll must not diff against the current snapshot alone. It
	// republishes the changes from the current to the pending snapshot (same ids, so JetStream
	// drops those already stored), commits, and only then scans. A pending snapshot of an earlier
	// Prepare is replaced. Prepare returns ErrConflict like Save.
	Prepare(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error)

	// Commit makes the pending snapshot current once every event derived from it was acknowledged.
	// snap is the snapshot passed to Prepare, for its counts. It returns ErrConflict like Save.
	Commit(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error)

	// LoadPending returns the pending snapshot that meta names. It returns a *CorruptError when the
	// object cannot be read.
	LoadPending(ctx context.Context, meta Meta) (*diff.Snapshot, error)

	// Reserve raises the high-water marks to at least hw before the events of a scan are
	// published, so that a reset after a crash cannot hand out the same revisions again. It
	// returns ErrConflict like Save.
	Reserve(ctx context.Context, base Meta, hw diff.HighWater) (Meta, error)

	// Reset drops the checkpoint's snapshot and keeps its high-water marks, raising the revision
	// floor to the revision mark: the next scan is a full snapshot load whose revisions start
	// above every revision handed out before. Reset works on unreadable checkpoints too. It
	// returns ErrNotFound for a checkpoint that was never stored.
	Reset(ctx context.Context, key Key) (Meta, error)

	// RequestResync requests that the next scan emit every record as a snapshot while keeping the
	// stored snapshot, so deletions are still detected. It returns ErrNotFound for a checkpoint that was
	// never stored.
	RequestResync(ctx context.Context, key Key) (Meta, error)
}

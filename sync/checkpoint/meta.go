package checkpoint

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/tisync/tisync/sync/diff"
)

// metaVersion is the version of the metadata's JSON encoding.
const metaVersion = 1

// Meta is the small metadata of a checkpoint, stored apart from the snapshot: where the current
// snapshot is, what it holds, and the high-water marks that survive a reset.
type Meta struct {
	Key Key `json:"key"`
	// Object is the name of the current snapshot object. It is empty when none is stored, which is
	// the case after a reset, so the next scan is a full snapshot load.
	Object string `json:"object,omitempty"`
	// FormatVersion is the snapshot format version of Object; zero without an object.
	FormatVersion int `json:"format_version"`
	// Records and Tombstones count the live and deleted records of the snapshot.
	Records    int `json:"records"`
	Tombstones int `json:"tombstones"`
	// RecordBytes is the size of the snapshot's normalized records; StoredBytes the size of the
	// compressed object.
	RecordBytes int64 `json:"record_bytes"`
	StoredBytes int64 `json:"stored_bytes"`
	// SavedAt is when the snapshot object was stored.
	SavedAt time.Time `json:"saved_at,omitzero"`
	// LastCompleteScan is when the last complete scan started; zero before the first one.
	LastCompleteScan time.Time `json:"last_complete_scan,omitzero"`
	// RevisionFloor is the revision high-water mark at the last reset: records of a snapshot load
	// after the reset start above it. Pass it as diff.Options.RevisionFloor.
	RevisionFloor uint64 `json:"revision_floor"`
	// HighWater holds the largest revision and version ever assigned or reserved. It only grows,
	// and a reset keeps it.
	HighWater diff.HighWater `json:"high_water"`
	// ResyncRequested is a request that the next scan emit every record as a snapshot
	// (diff.Options.Resync). Storing a snapshot built by a complete resync clears it.
	ResyncRequested bool `json:"resync_requested,omitempty"`
	// ResetAt is when the checkpoint was last reset; zero if never.
	ResetAt time.Time `json:"reset_at,omitzero"`
	// Pending names the snapshot object that Prepare wrote and Commit has not made current yet: a
	// poll stopped between the two, after publishing some or all of its events. The next poll
	// finishes that poll before it scans (see Store.Prepare). Empty otherwise.
	Pending string `json:"pending,omitempty"`
	// PendingBytes is the size of the pending object; PendingSince is when Prepare wrote it.
	PendingBytes int64     `json:"pending_bytes,omitempty"`
	PendingSince time.Time `json:"pending_since,omitzero"`

	// Unreadable is set only by List, for a checkpoint whose metadata cannot be decoded: it holds
	// the reason, and every other field but Key is zero. Reset repairs such a checkpoint.
	Unreadable string `json:"-"`

	// revision is the key-value revision the metadata was read at, for compare-and-swap; zero when
	// the checkpoint was never stored.
	revision uint64
}

// Stored reports whether the metadata was read from the store, as opposed to the empty metadata
// Load returns for a checkpoint that was never stored.
func (m Meta) Stored() bool { return m.revision != 0 }

// StoreRevision returns the revision of the stored metadata this Meta was read or written at. Every
// write changes it, so a poller that keeps the last snapshot in memory instead of loading it again
// can compare it with the StoreRevision that Store.Meta returns before reusing the snapshot.
func (m Meta) StoreRevision() uint64 { return m.revision }

// ScanOptions returns the options a scan based on this metadata and the snapshot Load returned
// with it needs; the caller adds ObservedAt.
func (m Meta) ScanOptions(prev *diff.Snapshot) diff.Options {
	return diff.Options{
		OrganizationID: m.Key.OrganizationID,
		TaskID:         m.Key.TaskID,
		Entity:         m.Key.Entity,
		Prev:           prev,
		RevisionFloor:  m.RevisionFloor,
		HighWater:      m.HighWater,
		Resync:         m.ResyncRequested,
	}
}

type metaJSON struct {
	Version int `json:"meta_version"`
	Meta
}

func encodeMeta(m Meta) []byte {
	b, err := json.Marshal(metaJSON{Version: metaVersion, Meta: m})
	if err != nil {
		// Meta has only strings, numbers, booleans and times, which json.Marshal always encodes.
		panic(fmt.Sprintf("encode checkpoint metadata: %v", err))
	}
	return b
}

func decodeMeta(key Key, b []byte, revision uint64) (Meta, error) {
	var mj metaJSON
	if err := json.Unmarshal(b, &mj); err != nil {
		return Meta{}, &CorruptError{Key: key, Err: fmt.Errorf("decode metadata: %w", err)}
	}
	if mj.Version != metaVersion {
		return Meta{}, &CorruptError{Key: key, Err: fmt.Errorf("metadata version %d, this build reads version %d", mj.Version, metaVersion)}
	}
	if mj.Meta.Key != key {
		return Meta{}, &CorruptError{Key: key, Err: fmt.Errorf("metadata names checkpoint %s", mj.Meta.Key)}
	}
	m := mj.Meta
	m.revision = revision
	return m, nil
}

// savedMeta returns the metadata after snap was stored as object.
func savedMeta(base Meta, snap *diff.Snapshot, object string, size int64, now time.Time) Meta {
	m := base
	m.Object = object
	m.FormatVersion = diff.FormatVersion
	m.Records = snap.Len()
	m.Tombstones = snap.Tombstones()
	m.RecordBytes = snap.RecordBytes()
	m.StoredBytes = size
	m.SavedAt = now.UTC()
	if t := snap.LastComplete(); !t.IsZero() && t.After(m.LastCompleteScan) {
		m.LastCompleteScan = t.UTC()
	}
	m.RevisionFloor = snap.RevisionFloor()
	m.HighWater = m.HighWater.Max(snap.HighWater())
	if snap.ResyncCompleted() {
		m.ResyncRequested = false
	}
	return m
}

// preparedMeta returns the metadata after snap was written as the pending object name: the current
// snapshot stays, and the high-water marks cover the revisions and versions the scan handed out.
func preparedMeta(base Meta, snap *diff.Snapshot, name string, size int64, now time.Time) Meta {
	m := base
	m.Pending = name
	m.PendingBytes = size
	m.PendingSince = now.UTC()
	m.HighWater = m.HighWater.Max(snap.HighWater())
	return m
}

// committedMeta returns the metadata after the pending snapshot snap became current.
func committedMeta(base Meta, snap *diff.Snapshot, now time.Time) Meta {
	m := savedMeta(base, snap, base.Pending, base.PendingBytes, now)
	m.Pending, m.PendingBytes, m.PendingSince = "", 0, time.Time{}
	return m
}

// resetMeta returns the metadata after a reset: no snapshot, marks kept, floor raised to the
// revision mark.
func resetMeta(m Meta, now time.Time) Meta {
	return Meta{
		Key:           m.Key,
		RevisionFloor: m.HighWater.Revision,
		HighWater:     m.HighWater,
		ResetAt:       now.UTC(),
		revision:      m.revision,
	}
}

// checkSnapshot returns an error unless snap belongs to key.
func checkSnapshot(key Key, snap *diff.Snapshot) error {
	if snap == nil {
		return fmt.Errorf("checkpoint %s: nil snapshot", key)
	}
	got := Key{OrganizationID: snap.OrganizationID(), TaskID: snap.TaskID(), Entity: snap.Entity()}
	if got != key {
		return fmt.Errorf("snapshot of %s stored as checkpoint %s: %w", got, key, ErrInvalidKey)
	}
	return nil
}

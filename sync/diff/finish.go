package diff

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"iter"
	"slices"
	"time"

	"github.com/tisync/tisync/schema"
)

// Change is one change a scan found, with everything an event needs.
type Change struct {
	OrganizationID string
	// TaskID is the task the record belongs to; for a task it is the record's own id.
	TaskID   string
	Entity   schema.Entity
	EntityID string
	Op       schema.Op
	// Revision is the record's revision after the change.
	Revision uint64
	// Version is the event version (Unix microseconds): the same for every change of one scan,
	// and larger than any version the record had before.
	Version uint64
	// ObservedAt is when the scan started.
	ObservedAt time.Time
	// ContentHash is the hash of After, or of Before for a delete.
	ContentHash uint64
	// ChangedFields lists the top-level members that differ, sorted; empty unless Op is updated.
	ChangedFields []string
	// Before is the normalized record before the change; nil for snapshot and created.
	Before json.RawMessage
	// After is the normalized record after the change; nil for deleted.
	After json.RawMessage
	// EventID is schema.EventID of the change.
	EventID string
}

// Data returns the event payload of the change.
func (c Change) Data() schema.Data {
	fields := c.ChangedFields
	if fields == nil {
		fields = []string{}
	}
	return schema.Data{
		OrganizationID: c.OrganizationID,
		TaskID:         c.TaskID,
		Entity:         c.Entity,
		EntityID:       c.EntityID,
		Op:             c.Op,
		Revision:       c.Revision,
		Version:        c.Version,
		ObservedAt:     c.ObservedAt,
		ContentHash:    schema.FormatHash(c.ContentHash),
		ChangedFields:  fields,
		Before:         c.Before,
		After:          c.After,
	}
}

// Subject returns the NATS subject of the change's event.
func (c Change) Subject() string {
	return schema.Subject(c.OrganizationID, c.TaskID, c.Entity, c.Op)
}

// change is the compact form of a Change that a Result keeps until it is read.
type change struct {
	revision  uint64
	hash      uint64
	id        ref
	before    ref
	after     ref
	beforeLen uint32
	afterLen  uint32
	fields    int32 // index into Result.fields, or -1
	idLen     uint8
	op        uint8
}

var ops = [...]schema.Op{schema.OpSnapshot, schema.OpCreated, schema.OpUpdated, schema.OpDeleted}

const (
	opSnapshot = iota
	opCreated
	opUpdated
	opDeleted
)

// Result is the outcome of a finished scan: the changes, in entity id order, and the next snapshot.
// The changes are kept in compact form and built one at a time by Change and All, so a full load
// of a million records costs about 60 bytes per change until they are read. A Result is safe for
// concurrent reads.
type Result struct {
	// Counts summarize the scan.
	Counts Counts
	// Kind is the kind Finish was called with.
	Kind ScanKind
	// Next is the snapshot to store once JetStream has acknowledged every change, and never before.
	Next *Snapshot

	opts     Options
	version  uint64
	changes  []change
	fields   [][]string
	chunks   [][]byte
	modified bool
}

// Len returns the number of changes.
func (r *Result) Len() int { return len(r.changes) }

// Version returns the version of the scan's events, or zero when there are none.
func (r *Result) Version() uint64 { return r.version }

// HighWater returns the high-water mark after the scan. Raise the checkpoint's mark to it before
// publishing, so that a reset after a crash cannot hand out the same revisions again.
func (r *Result) HighWater() HighWater { return r.Next.high }

// Modified reports whether Next differs from the previous snapshot in anything a checkpoint stores:
// records, hashes, revisions, tombstones, or the end of the initial load. When it reports false,
// storing Next can be skipped.
func (r *Result) Modified() bool { return r.modified }

// Change returns change i, 0 <= i < Len(). Before and After share the snapshots' memory and must
// not be modified.
func (r *Result) Change(i int) Change {
	c := &r.changes[i]
	id := string(r.bytesAt(c.id, int(c.idLen)))
	task := r.opts.TaskID
	if r.opts.Entity == schema.EntityTask {
		task = id
	}
	out := Change{
		OrganizationID: r.opts.OrganizationID,
		TaskID:         task,
		Entity:         r.opts.Entity,
		EntityID:       id,
		Op:             ops[c.op],
		Revision:       c.revision,
		Version:        r.version,
		ObservedAt:     r.opts.ObservedAt,
		ContentHash:    c.hash,
		EventID:        schema.EventID(r.opts.OrganizationID, task, r.opts.Entity, id, c.revision, c.hash),
	}
	if c.beforeLen > 0 {
		out.Before = r.bytesAt(c.before, int(c.beforeLen))
	}
	if c.afterLen > 0 {
		out.After = r.bytesAt(c.after, int(c.afterLen))
	}
	if c.fields >= 0 {
		out.ChangedFields = r.fields[c.fields]
	}
	return out
}

// All returns the changes in order.
func (r *Result) All() iter.Seq[Change] {
	return func(yield func(Change) bool) {
		for i := range r.changes {
			if !yield(r.Change(i)) {
				return
			}
		}
	}
}

func (r *Result) bytesAt(x ref, n int) []byte {
	off := x.offset()
	return r.chunks[x.chunk()][off : off+n : off+n]
}

// Finish ends the scan and computes its changes and the next snapshot. For a complete scan,
// confirmedDeleted lists the ids from Missing that a point lookup confirmed gone; each becomes a
// deleted change and a tombstone. Missing records that are neither added again nor confirmed are
// kept unchanged.
//
// Finish returns an error wrapping ErrPartialDelete for deletions passed with a partial scan,
// ErrNotMissing for an id that is not a missing record of this scan, and ErrScanFinished when
// called twice. After an error about its arguments the scan is still open.
func (s *Scan) Finish(kind ScanKind, confirmedDeleted []string) (*Result, error) {
	if s.finished {
		return nil, ErrScanFinished
	}
	if kind != Complete && kind != Partial {
		return nil, fmt.Errorf("scan kind %d: expected Complete or Partial: %w", int(kind), ErrInvalidOptions)
	}
	if kind == Partial && len(confirmedDeleted) > 0 {
		return nil, fmt.Errorf("%d confirmed deletions: %w", len(confirmedDeleted), ErrPartialDelete)
	}
	deleted := make([]int, 0, len(confirmedDeleted))
	for _, id := range confirmedDeleted {
		i := -1
		if s.prev != nil {
			i = s.prev.find(id)
		}
		if i < 0 || s.prev.entries[i].tombstone() || s.state[i] != stateUnseen {
			return nil, fmt.Errorf("%s %q: %w", s.opts.Entity, id, ErrNotMissing)
		}
		deleted = append(deleted, i)
	}
	for _, i := range deleted {
		s.state[i] = stateDeleted
	}
	s.finished = true
	return s.build(kind), nil
}

// build lays out the next snapshot's entries and derives one change per record that changed.
// After a complete scan the entries follow the order in which the scan first received each
// record, followed by the previous records it did not receive. After a partial scan they keep the
// previous order, followed by the new records. The changes are then sorted by entity id.
func (s *Scan) build(kind ScanKind) *Result {
	o := s.opts
	next := &Snapshot{organizationID: o.OrganizationID, taskID: o.TaskID, entity: o.Entity, floor: o.RevisionFloor}
	var chunks [][]byte
	res := &Result{Kind: kind, Next: next, opts: o}
	prevLen := 0
	if s.prev != nil {
		prevLen = len(s.prev.entries)
		chunks = append(chunks, s.prev.chunks...)
		next.floor = s.prev.floor
		next.high = s.prev.high
		next.lastComplete = s.prev.lastComplete
	} else {
		res.modified = true
	}
	chunks = append(chunks, s.arena.chunks...)
	res.chunks = chunks
	next.chunks = chunks
	next.high = next.high.Max(o.HighWater)
	if kind == Complete {
		if next.lastComplete.IsZero() {
			res.modified = true
		}
		next.lastComplete = o.ObservedAt
		next.resyncCompleted = o.Resync
		res.modified = res.modified || o.Resync
	}

	next.entries = make([]entry, 0, prevLen+len(s.order))
	counts := s.counts
	if kind == Complete {
		for _, x := range s.order {
			if x&newBit != 0 {
				s.mergeNew(res, int(x&^newBit))
			} else {
				s.mergePrev(res, int(x), kind, &counts)
			}
		}
		for i := range prevLen {
			if st := s.state[i]; st == stateUnseen || st == stateDeleted {
				s.mergePrev(res, i, kind, &counts)
			}
		}
	} else {
		for i := range prevLen {
			s.mergePrev(res, i, kind, &counts)
		}
		for _, x := range s.order {
			if x&newBit != 0 {
				s.mergeNew(res, int(x&^newBit))
			}
		}
	}
	res.sortChanges()

	for i := range next.entries {
		e := &next.entries[i]
		if !e.tombstone() {
			next.records++
			next.recordBytes += int64(e.recLen)
		}
		next.high.Revision = max(next.high.Revision, e.revision)
	}
	if len(res.changes) > 0 {
		res.modified = true
		observed := uint64(max(o.ObservedAt.UnixMicro(), 0))
		res.version = max(observed, next.high.Version+1)
		next.high.Version = res.version
	}
	for _, c := range res.changes {
		switch c.op {
		case opSnapshot:
			counts.Snapshot++
		case opCreated:
			counts.Created++
		case opUpdated:
			counts.Updated++
		case opDeleted:
			counts.Deleted++
		}
	}
	counts.Records = next.records
	res.Counts = counts
	next.compact()
	return res
}

// mergeNew adds recs[k], a record new to the lineage, to the next snapshot.
func (s *Scan) mergeNew(res *Result, k int) {
	r := &s.recs[k]
	op := uint8(opCreated)
	if s.initial || s.opts.Resync {
		op = opSnapshot
	}
	rev := res.Next.floor + 1
	res.Next.entries = append(res.Next.entries, entry{rawHash: r.rawHash, hash: r.hash, revision: rev, ref: r.ref, recLen: r.recLen, idLen: r.idLen})
	res.addChange(change{op: op, revision: rev, hash: r.hash, id: r.ref, idLen: r.idLen, after: r.ref + ref(r.idLen), afterLen: r.recLen, fields: -1})
}

// mergePrev carries previous entry pi into the next snapshot according to what the scan saw.
func (s *Scan) mergePrev(res *Result, pi int, kind ScanKind, counts *Counts) {
	next := res.Next
	e := s.prev.entries[pi]
	st := s.state[pi]
	switch {
	case st == stateUnseen:
		if kind == Complete && !e.tombstone() {
			counts.Missing++
		}
		next.entries = append(next.entries, e)
	case st == stateKept:
		counts.Unchanged++
		next.entries = append(next.entries, e)
	case st == stateHeld:
		next.entries = append(next.entries, e)
	case st == stateDeleted:
		counts.Missing++
		rev := e.revision + 1
		next.entries = append(next.entries, entry{hash: e.hash, revision: rev, ref: e.ref, idLen: e.idLen, flags: flagTombstone})
		res.addChange(change{op: opDeleted, revision: rev, hash: e.hash, id: e.ref, idLen: e.idLen, before: e.ref + ref(e.idLen), beforeLen: e.recLen, fields: -1})
	default:
		r := &s.recs[st-stateRec]
		n := entry{rawHash: r.rawHash, hash: r.hash, revision: e.revision, ref: r.ref, recLen: r.recLen, idLen: r.idLen}
		c := change{hash: r.hash, id: r.ref, idLen: r.idLen, after: r.ref + ref(r.idLen), afterLen: r.recLen, fields: -1}
		switch {
		case e.tombstone():
			// A deleted record that came back continues its own revisions.
			c.op = opCreated
			if s.initial || s.opts.Resync {
				c.op = opSnapshot
			}
			n.revision = max(e.revision, next.floor) + 1
		case s.opts.Resync:
			c.op = opSnapshot
			n.revision = e.revision + 1
		case r.hash != e.hash:
			// NOTE: the revision follows the previous snapshot, so that a change detected again
			// after a crash between publishing and saving gets the same event id. If the record
			// changed once more before that new scan, its revision is reused with other content,
			// and only the content hash keeps the two event ids apart.
			c.op = opUpdated
			n.revision = e.revision + 1
			c.before, c.beforeLen = e.ref+ref(e.idLen), e.recLen
			before := entryRecord(s.prev.chunks, &e)
			after := s.bytesAt(r.ref+ref(r.idLen), int(r.recLen))
			fields, err := ChangedFields(before, after)
			if err != nil {
				// NOTE: both records come from a Normalizer, so this only happens with a snapshot
				// whose records were damaged without failing the checksum. The change still goes out.
				fields = []string{}
			}
			c.fields = int32(len(res.fields))
			res.fields = append(res.fields, fields)
		default:
			// Same content, other raw bytes: store the new raw hash so the next scan skips it.
			counts.Unchanged++
			res.modified = true
			next.entries = append(next.entries, n)
			return
		}
		c.revision = n.revision
		next.entries = append(next.entries, n)
		res.addChange(c)
	}
}

func (r *Result) addChange(c change) { r.changes = append(r.changes, c) }

// sortChanges sorts the changes by entity id. The sort compares the first eight id bytes as an
// integer first, which settles nearly every comparison of TestInvite's random ids without reading
// the id bytes again.
func (r *Result) sortChanges() {
	type key struct {
		prefix uint64
		pos    int32
	}
	keys := make([]key, len(r.changes))
	for i := range r.changes {
		var p [8]byte
		copy(p[:], r.bytesAt(r.changes[i].id, int(r.changes[i].idLen)))
		keys[i] = key{binary.BigEndian.Uint64(p[:]), int32(i)}
	}
	id := func(k key) []byte {
		c := &r.changes[k.pos]
		return r.bytesAt(c.id, int(c.idLen))
	}
	slices.SortFunc(keys, func(a, b key) int {
		if a.prefix != b.prefix {
			if a.prefix < b.prefix {
				return -1
			}
			return 1
		}
		return bytes.Compare(id(a), id(b))
	})
	sorted := make([]change, len(r.changes))
	for i, k := range keys {
		sorted[i] = r.changes[k.pos]
	}
	r.changes = sorted
}

// compact copies the live bytes into one new chunk when the chunks hold more than twice as much,
// plus 8 MiB, as the entries use. Snapshots that share chunks with their predecessors otherwise keep
// the bytes of superseded records alive.
func (s *Snapshot) compact() {
	var live, total int64
	for i := range s.entries {
		live += int64(s.entries[i].idLen) + int64(s.entries[i].recLen)
	}
	for _, c := range s.chunks {
		total += int64(len(c))
	}
	if total <= 2*live+8<<20 {
		return
	}
	buf := make([]byte, 0, live)
	for i := range s.entries {
		e := &s.entries[i]
		off := len(buf)
		buf = append(buf, entryID(s.chunks, e)...)
		buf = append(buf, entryRecord(s.chunks, e)...)
		e.ref = makeRef(0, off)
	}
	s.chunks = [][]byte{buf}
}

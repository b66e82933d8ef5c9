package diff

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/tisync/tisync/schema"
)

// ScanKind is the extent of a scan: whether it read every record of the task.
type ScanKind int

const (
	// Complete is a scan that read every page without error and whose page totals stayed
	// consistent. Only a complete scan reports missing records and deletes.
	Complete ScanKind = iota + 1
	// Partial is a scan that failed midway or covered only part of the records, such as a
	// time-window search of test sessions. It updates the records it saw and keeps all others.
	Partial
)

// String returns "complete" or "partial".
func (k ScanKind) String() string {
	switch k {
	case Complete:
		return "complete"
	case Partial:
		return "partial"
	}
	return fmt.Sprintf("ScanKind(%d)", int(k))
}

// Options configure a Scan.
type Options struct {
	// OrganizationID is the TestInvite organization; it must pass schema.ValidID.
	OrganizationID string
	// TaskID is the task whose records are scanned; it must pass schema.ValidID. For EntityTask it
	// may be empty, meaning a scan of the organization's task list; when set, every task record
	// must have this id.
	TaskID string
	// Entity is the kind of record scanned.
	Entity schema.Entity
	// Prev is the snapshot of the previous scan, or nil for the first scan after an empty or reset
	// checkpoint. It must belong to the same organization, task and entity.
	Prev *Snapshot
	// RevisionFloor is used only when Prev is nil: records then start at revision
	// RevisionFloor+1. Pass the checkpoint's revision floor, which a reset sets to the revision
	// high-water mark, so that revisions never repeat for a record.
	RevisionFloor uint64
	// HighWater is the checkpoint's high-water mark. Its Version keeps event versions growing
	// when the clock goes back; its Revision only raises the result's mark.
	HighWater HighWater
	// Resync emits every record the scan receives as op snapshot, unchanged ones included.
	Resync bool
	// ObservedAt is when the scan started. Events carry it, and their version is its Unix
	// microseconds unless the high-water mark is already higher.
	ObservedAt time.Time
}

func (o Options) validate() error {
	if !schema.ValidID(o.OrganizationID) {
		return fmt.Errorf("organization id %q: %w", o.OrganizationID, ErrInvalidOptions)
	}
	if !o.Entity.Valid() {
		return fmt.Errorf("entity %q: expected task, ticket or test_session: %w", o.Entity, ErrInvalidOptions)
	}
	if !schema.ValidID(o.TaskID) && !(o.TaskID == "" && o.Entity == schema.EntityTask) {
		return fmt.Errorf("task id %q: %w", o.TaskID, ErrInvalidOptions)
	}
	if o.ObservedAt.IsZero() {
		return fmt.Errorf("observed at: zero time, expected the scan start: %w", ErrInvalidOptions)
	}
	if p := o.Prev; p != nil && (p.organizationID != o.OrganizationID || p.taskID != o.TaskID || p.entity != o.Entity) {
		return fmt.Errorf("snapshot of %s/%s/%s, scan of %s/%s/%s: %w",
			p.organizationID, p.taskID, p.entity, o.OrganizationID, o.TaskID, o.Entity, ErrSnapshotMismatch)
	}
	return nil
}

// Scan compares the records of one scan of one entity of one task with the previous snapshot.
// Records are added one by one as pages arrive; Finish then returns the changes and the next
// snapshot. A Scan is not safe for concurrent use.
//
// Memory: a scan holds 8 bytes per record (its state and its place in the scan order), the
// normalized bytes of the records that changed or are new, and a small index entry per such
// record. Records whose raw bytes hash the same as last time are neither parsed nor copied.
type Scan struct {
	opts    Options
	prev    *Snapshot
	initial bool

	state []uint32 // per previous entry: stateUnseen, stateKept, stateHeld, stateDeleted or stateRec+index into recs
	recs  []rec
	// order lists the records in the order they were first seen: previous entry indexes, and
	// indexes into recs with newBit set for records new to the lineage.
	order []uint32
	// cursor is the previous entry expected next: the one after the last record found.
	cursor   int
	newIndex table // ids that the previous snapshot does not hold, to positions in recs
	arena    arena
	norm     Normalizer
	quoted   []byte

	counts   Counts
	finished bool
}

const (
	stateUnseen  = 0
	stateKept    = 1 // seen with the same raw bytes as last time
	stateHeld    = 2 // seen only in records that Add rejected: kept as it was
	stateDeleted = 3 // confirmed deleted (set by Finish)
	stateRec     = 4

	newBit = 1 << 31
)

// rec is a record seen by the scan that needs a new entry: changed, new, re-sent with other raw
// bytes, or re-emitted by a resync. Its bytes are in the scan's arena, or in the previous
// snapshot when the content did not change.
type rec struct {
	rawHash uint64
	hash    uint64
	ref     ref
	recLen  uint32
	idLen   uint8
	prev    int32 // index of the previous entry with this id (live or tombstone), or -1
}

// Counts summarize a scan.
type Counts struct {
	// Added is the number of records Add accepted, duplicates included.
	Added int
	// Duplicates is the number of accepted records whose id had been accepted before in the same
	// scan; the last copy wins.
	Duplicates int
	// Invalid is the number of records Add rejected.
	Invalid int
	// Normalized is the number of records that were parsed and normalized because their raw bytes
	// differed from last time (or were new).
	Normalized int
	// Unchanged, Snapshot, Created, Updated and Deleted count the outcome per distinct record.
	Unchanged int
	Snapshot  int
	Created   int
	Updated   int
	Deleted   int
	// Missing is the number of previous records a complete scan did not see, confirmed deletions
	// included; zero for a partial scan.
	Missing int
	// Records is the number of live records in the next snapshot.
	Records int
}

// NewScan starts a scan. It returns an error wrapping ErrInvalidOptions or ErrSnapshotMismatch
// when the options are invalid.
func NewScan(opts Options) (*Scan, error) {
	if err := opts.validate(); err != nil {
		return nil, err
	}
	s := &Scan{
		opts:    opts,
		prev:    opts.Prev,
		initial: opts.Prev == nil || opts.Prev.lastComplete.IsZero(),
	}
	if s.prev != nil {
		s.state = make([]uint32, len(s.prev.entries))
		s.order = make([]uint32, 0, len(s.prev.entries))
		s.arena.base = len(s.prev.chunks)
	}
	s.newIndex.init(0)
	return s, nil
}

// bytesAt returns n bytes at r in the previous snapshot's chunks followed by the arena's.
func (s *Scan) bytesAt(r ref, n int) []byte {
	c, off := r.chunk(), r.offset()
	if c < s.arena.base {
		return s.prev.chunks[c][off : off+n]
	}
	return s.arena.chunks[c-s.arena.base][off : off+n]
}

func (s *Scan) recID(r *rec) []byte { return s.bytesAt(r.ref, int(r.idLen)) }

// Add adds one record of the scan: its id and its raw JSON exactly as TestInvite sent it. A record
// whose id was added before in this scan replaces the earlier copy.
//
// Add returns a *RecordError, wrapping ErrInvalidID, ErrInvalidJSON, ErrNotObject, ErrTooLarge,
// ErrIDMismatch or ErrTaskMismatch, for a record it rejects. The scan then goes on without it,
// and a record of that id in the previous snapshot is kept unchanged. It returns ErrScanFinished
// after Finish. Add does not retain raw.
func (s *Scan) Add(id string, raw []byte) error {
	if s.finished {
		return ErrScanFinished
	}
	if !schema.ValidID(id) {
		s.counts.Invalid++
		return &RecordError{Entity: s.opts.Entity, ID: id, Err: ErrInvalidID}
	}
	rawHash := xxh3.Hash(raw)
	if s.prev != nil {
		// Records mostly arrive in the order of the previous scan, so the entry after the last
		// one found is tried before the hash index.
		i := s.cursor
		if i >= len(s.prev.entries) || !s.prev.idAt(i, id) {
			i = s.prev.find(id)
		}
		if i >= 0 {
			s.cursor = i + 1
			return s.addKnown(i, id, raw, rawHash)
		}
	}
	return s.addNew(id, raw, rawHash)
}

// addKnown adds a record whose id the previous snapshot holds, live or as a tombstone.
func (s *Scan) addKnown(i int, id string, raw []byte, rawHash uint64) error {
	e := &s.prev.entries[i]
	st := s.state[i]
	dup := st == stateKept || st >= stateRec
	if st == stateUnseen {
		s.order = append(s.order, uint32(i))
	}

	// Fast path: the same raw bytes as last time mean the same record, already validated and
	// normalized under this id.
	if !e.tombstone() && e.rawHash == rawHash {
		s.accept(dup)
		if !s.opts.Resync {
			s.state[i] = stateKept
			return nil
		}
		s.setRec(i, rec{rawHash: rawHash, hash: e.hash, ref: e.ref, recLen: e.recLen, idLen: e.idLen, prev: int32(i)})
		return nil
	}

	canon, hash, err := s.normalize(id, raw)
	if err != nil {
		s.counts.Invalid++
		if st == stateUnseen {
			s.state[i] = stateHeld
		}
		return err
	}
	s.accept(dup)
	r := rec{rawHash: rawHash, hash: hash, idLen: uint8(len(id)), prev: int32(i)}
	if !e.tombstone() && hash == e.hash {
		// Same content in other raw bytes (reordered members, say): keep the stored bytes.
		r.ref, r.recLen = e.ref, e.recLen
	} else {
		r.ref, r.recLen = s.arena.append(id, canon), uint32(len(canon))
	}
	s.setRec(i, r)
	return nil
}

func (s *Scan) accept(dup bool) {
	s.counts.Added++
	if dup {
		s.counts.Duplicates++
	}
}

// setRec records r for the previous entry i, replacing an earlier copy from the same scan.
func (s *Scan) setRec(i int, r rec) {
	if st := s.state[i]; st >= stateRec {
		s.recs[st-stateRec] = r
		return
	}
	s.recs = append(s.recs, r)
	s.state[i] = stateRec + uint32(len(s.recs)-1)
}

// addNew adds a record whose id the previous snapshot does not hold.
func (s *Scan) addNew(id string, raw []byte, rawHash uint64) error {
	h := xxh3.HashString(id)
	k := s.newIndex.find(h, func(k int) bool { return string(s.recID(&s.recs[k])) == id })
	if k >= 0 && s.recs[k].rawHash == rawHash {
		s.accept(true) // an identical copy
		return nil
	}
	canon, hash, err := s.normalize(id, raw)
	if err != nil {
		s.counts.Invalid++
		return err
	}
	s.accept(k >= 0)
	r := rec{rawHash: rawHash, hash: hash, ref: s.arena.append(id, canon), recLen: uint32(len(canon)), idLen: uint8(len(id)), prev: -1}
	if k >= 0 {
		s.recs[k] = r
		return nil
	}
	s.recs = append(s.recs, r)
	s.order = append(s.order, uint32(len(s.recs)-1)|newBit)
	if 2*(s.newIndex.n+1) > len(s.newIndex.slots) {
		s.growNewIndex()
	}
	s.newIndex.insert(h, len(s.recs)-1)
	return nil
}

func (s *Scan) growNewIndex() {
	s.newIndex.init(2 * (s.newIndex.n + 1))
	for k := range s.recs {
		if s.recs[k].prev < 0 {
			s.newIndex.insert(xxh3.Hash(s.recID(&s.recs[k])), k)
		}
	}
}

// normalize checks and normalizes one record. The returned bytes are valid until the next call.
func (s *Scan) normalize(id string, raw []byte) ([]byte, uint64, error) {
	fail := func(err error) ([]byte, uint64, error) {
		return nil, 0, &RecordError{Entity: s.opts.Entity, ID: id, Err: err}
	}
	if err := s.norm.run(s.opts.Entity, raw); err != nil {
		return fail(err)
	}
	s.counts.Normalized++
	field := IDField(s.opts.Entity)
	if !s.norm.hasID {
		return fail(fmt.Errorf("no %s member: %w", field, ErrIDMismatch))
	}
	s.quoted = append(append(append(s.quoted[:0], '"'), id...), '"')
	if !bytes.Equal(s.norm.idValue, s.quoted) {
		return fail(fmt.Errorf("%s is %s: %w", field, clip(s.norm.idValue), ErrIDMismatch))
	}
	if s.opts.TaskID != "" {
		if s.opts.Entity == schema.EntityTask && id != s.opts.TaskID {
			return fail(fmt.Errorf("task %q scanned as task %q: %w", id, s.opts.TaskID, ErrTaskMismatch))
		}
		if s.opts.Entity != schema.EntityTask && s.norm.hasTask {
			s.quoted = append(append(append(s.quoted[:0], '"'), s.opts.TaskID...), '"')
			if !bytes.Equal(s.norm.taskValue, s.quoted) {
				return fail(fmt.Errorf("taskId is %s, scanned task is %q: %w", clip(s.norm.taskValue), s.opts.TaskID, ErrTaskMismatch))
			}
		}
	}
	return s.norm.out, Hash(s.norm.out), nil
}

// clip shortens a value for an error message.
func clip(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// Missing returns, sorted, the ids of the previous snapshot's live records that the scan has
// not seen so far. For a complete scan the caller confirms each with a point lookup: it adds the
// records found again with Add and passes the ones confirmed gone to Finish. Missing may be called
// more than once; it returns nil when there is no previous snapshot.
func (s *Scan) Missing() []string {
	if s.prev == nil {
		return nil
	}
	var ids []string
	for i := range s.prev.entries {
		e := &s.prev.entries[i]
		if !e.tombstone() && s.state[i] == stateUnseen {
			ids = append(ids, string(entryID(s.prev.chunks, e)))
		}
	}
	slices.Sort(ids)
	return ids
}

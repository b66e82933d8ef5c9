package diff

import (
	"encoding/json"
	"iter"
	"sync"
	"time"

	"github.com/zeebo/xxh3"

	"github.com/tisync/tisync/schema"
)

// HighWater holds the largest revision and version assigned so far to any record of one task and
// entity. The checkpoint keeps it across resets, so that revisions never repeat for a record and
// versions keep growing when the clock goes back.
type HighWater struct {
	// Revision is the largest revision of any record.
	Revision uint64 `json:"revision"`
	// Version is the largest event version (Unix microseconds) of any record.
	Version uint64 `json:"version"`
}

// Max returns the larger of each mark of h and o.
func (h HighWater) Max(o HighWater) HighWater {
	return HighWater{Revision: max(h.Revision, o.Revision), Version: max(h.Version, o.Version)}
}

// Snapshot is the state of one entity of one task as the last scan found it. It holds, for each
// record, its id, normalized bytes, content hash, the hash of the raw bytes it came from and its
// revision, plus tombstones that keep the revision of deleted records. A Snapshot is immutable and safe for concurrent use.
//
// The records live in a few large byte chunks and are indexed by a slice of fixed-size entries,
// so that a million records cost a handful of allocations and nothing for the garbage collector to
// scan. The entries keep the order in which the last complete scan received the records: the next
// scan, which usually receives them in the same order, then reads the snapshot sequentially
// instead of jumping around in it. A hash index finds the records that arrive out of order. A
// snapshot built by a scan shares the chunks of the previous one for the records that did not
// change.
type Snapshot struct {
	organizationID string
	taskID         string
	entity         schema.Entity

	entries []entry // in scan order, tombstones included
	chunks  [][]byte

	records     int   // live records
	recordBytes int64 // normalized bytes of the live records
	floor       uint64
	high        HighWater
	// lastComplete is when the last complete scan that built this lineage of snapshots started;
	// zero until the first complete scan, which ends the initial load.
	lastComplete time.Time
	// resyncCompleted is true when a complete scan with Options.Resync built this snapshot. It is
	// not encoded.
	resyncCompleted bool

	indexOnce sync.Once
	index     table
}

// entry is one record or tombstone of a snapshot. The id bytes start at ref and the normalized
// record follows them directly.
type entry struct {
	rawHash  uint64
	hash     uint64
	revision uint64
	ref      ref
	recLen   uint32
	idLen    uint8
	flags    uint8
}

const flagTombstone = 1

// ref locates bytes in a snapshot's chunks: the chunk index in the high 24 bits and the offset
// inside the chunk in the low 40.
type ref uint64

const refShift = 40

func makeRef(chunk, off int) ref { return ref(uint64(chunk)<<refShift | uint64(off)) }

func (r ref) chunk() int  { return int(r >> refShift) }
func (r ref) offset() int { return int(r & (1<<refShift - 1)) }

func (e *entry) tombstone() bool { return e.flags&flagTombstone != 0 }

func entryID(chunks [][]byte, e *entry) []byte {
	c, off := e.ref.chunk(), e.ref.offset()
	return chunks[c][off : off+int(e.idLen)]
}

func entryRecord(chunks [][]byte, e *entry) []byte {
	c, off := e.ref.chunk(), e.ref.offset()+int(e.idLen)
	return chunks[c][off : off+int(e.recLen) : off+int(e.recLen)]
}

// OrganizationID returns the organization the snapshot belongs to.
func (s *Snapshot) OrganizationID() string { return s.organizationID }

// TaskID returns the task the snapshot belongs to; empty for a scan of an organization's task list.
func (s *Snapshot) TaskID() string { return s.taskID }

// Entity returns the entity of the snapshot's records.
func (s *Snapshot) Entity() schema.Entity { return s.entity }

// Len returns the number of live records, tombstones not included.
func (s *Snapshot) Len() int { return s.records }

// Tombstones returns the number of deleted records whose revision the snapshot keeps.
func (s *Snapshot) Tombstones() int { return len(s.entries) - s.records }

// RecordBytes returns the total size of the live normalized records.
func (s *Snapshot) RecordBytes() int64 { return s.recordBytes }

// HighWater returns the largest revision and version assigned in the snapshot's lineage.
func (s *Snapshot) HighWater() HighWater { return s.high }

// RevisionFloor returns the revision above which records new to the lineage start: zero for a
// lineage that began with an empty checkpoint, the revision high-water mark at the time of the
// reset otherwise.
func (s *Snapshot) RevisionFloor() uint64 { return s.floor }

// LastComplete returns when the last complete scan of the lineage started, or the zero time if no
// complete scan has finished yet (the initial load is then still going on).
func (s *Snapshot) LastComplete() time.Time { return s.lastComplete }

// ResyncCompleted reports whether a complete scan with Options.Resync built this snapshot, so a
// pending resync request can be cleared when it is stored. Decoded snapshots report false.
func (s *Snapshot) ResyncCompleted() bool { return s.resyncCompleted }

// Record is one live record of a snapshot.
type Record struct {
	ID string
	// Revision is the record's revision in the snapshot.
	Revision uint64
	// ContentHash is the hash of Data.
	ContentHash uint64
	// Data is the normalized record. It shares the snapshot's memory and must not be modified.
	Data json.RawMessage
}

func (s *Snapshot) record(e *entry) Record {
	return Record{
		ID:          string(entryID(s.chunks, e)),
		Revision:    e.revision,
		ContentHash: e.hash,
		Data:        entryRecord(s.chunks, e),
	}
}

// Records returns the live records in the order the last complete scan received them.
func (s *Snapshot) Records() iter.Seq[Record] {
	return func(yield func(Record) bool) {
		for i := range s.entries {
			e := &s.entries[i]
			if e.tombstone() {
				continue
			}
			if !yield(s.record(e)) {
				return
			}
		}
	}
}

// Lookup returns the live record with the given id.
func (s *Snapshot) Lookup(id string) (Record, bool) {
	i := s.find(id)
	if i < 0 || s.entries[i].tombstone() {
		return Record{}, false
	}
	return s.record(&s.entries[i]), true
}

// find returns the index of the entry with the given id, tombstones included, or -1.
func (s *Snapshot) find(id string) int {
	s.indexOnce.Do(s.buildIndex)
	return s.index.find(xxh3.HashString(id), func(i int) bool {
		return string(entryID(s.chunks, &s.entries[i])) == id
	})
}

func (s *Snapshot) buildIndex() {
	s.index.init(len(s.entries))
	for i := range s.entries {
		s.index.insert(xxh3.Hash(entryID(s.chunks, &s.entries[i])), i)
	}
}

// table is an open-addressing hash index from record ids to positions. A slot contains the high 32
// bits of the id hash and the position plus one, so that a probe rarely touches the id bytes of a
// record that does not match. An empty slot is zero.
type table struct {
	slots []uint64
	mask  uint64
	n     int
}

func (t *table) init(n int) {
	size := 16
	for size < 2*n {
		size <<= 1
	}
	t.slots = make([]uint64, size)
	t.mask = uint64(size - 1)
	t.n = 0
}

func (t *table) find(h uint64, eq func(i int) bool) int {
	if len(t.slots) == 0 {
		return -1
	}
	tag := h >> 32
	for p := h & t.mask; ; p = (p + 1) & t.mask {
		s := t.slots[p]
		if s == 0 {
			return -1
		}
		if s>>32 == tag && eq(int(uint32(s))-1) {
			return int(uint32(s)) - 1
		}
	}
}

// insert adds position i under hash h. The caller ensures the id is not present yet.
func (t *table) insert(h uint64, i int) {
	tag := h >> 32
	for p := h & t.mask; ; p = (p + 1) & t.mask {
		if t.slots[p] == 0 {
			t.slots[p] = tag<<32 | uint64(uint32(i+1))
			t.n++
			return
		}
	}
}

// arena appends id and record bytes into chunks that it never moves, so refs stay valid.
// Chunks grow from 64 KiB to 4 MiB; a record larger than that gets a chunk of its own size.
type arena struct {
	base   int // index the first chunk of this arena has in the snapshot's chunk list
	chunks [][]byte
	size   int
}

const (
	minChunk = 64 << 10
	maxChunk = 4 << 20
)

// append copies id and then rec into the arena and returns where they start.
func (a *arena) append(id string, rec []byte) ref {
	n := len(id) + len(rec)
	if len(a.chunks) == 0 || cap(a.chunks[len(a.chunks)-1])-len(a.chunks[len(a.chunks)-1]) < n {
		a.size = min(max(a.size*2, minChunk), maxChunk)
		a.chunks = append(a.chunks, make([]byte, 0, max(a.size, n)))
	}
	last := len(a.chunks) - 1
	c := a.chunks[last]
	off := len(c)
	c = append(c, id...)
	c = append(c, rec...)
	a.chunks[last] = c
	return makeRef(a.base+last, off)
}

// idAt reports whether entry i holds id.
func (s *Snapshot) idAt(i int, id string) bool {
	e := &s.entries[i]
	return int(e.idLen) == len(id) && string(entryID(s.chunks, e)) == id
}

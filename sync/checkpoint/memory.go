package checkpoint

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/tisync/tisync/sync/diff"
)

// Memory is a Store in memory for unit tests of the components that use a Store. It follows the
// JetStream store's contract, compare-and-swap and encoded objects included, so a test gets the
// same conflicts and the same snapshot round trip. It is safe for concurrent use.
type Memory struct {
	mu       sync.Mutex
	metas    map[Key]memoryMeta
	objects  map[string][]byte
	revision uint64
	seq      int
	now      func() time.Time
}

type memoryMeta struct {
	value    []byte
	revision uint64
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory(opts ...Option) *Memory {
	return &Memory{metas: map[Key]memoryMeta{}, objects: map[string][]byte{}, now: buildOptions(opts).now}
}

// List implements Store.
func (m *Memory) List(ctx context.Context) ([]Meta, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var metas []Meta
	for key, mm := range m.metas {
		meta, err := decodeMeta(key, mm.value, mm.revision)
		if err != nil {
			meta = Meta{Key: key, Unreadable: err.Error(), revision: mm.revision}
		}
		metas = append(metas, meta)
	}
	slices.SortFunc(metas, func(a, b Meta) int { return strings.Compare(a.Key.String(), b.Key.String()) })
	return metas, nil
}

// Meta implements Store.
func (m *Memory) Meta(ctx context.Context, key Key) (Meta, error) {
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.meta(key)
}

func (m *Memory) meta(key Key) (Meta, error) {
	mm, ok := m.metas[key]
	if !ok {
		return Meta{}, fmt.Errorf("checkpoint %s: %w", key, ErrNotFound)
	}
	return decodeMeta(key, mm.value, mm.revision)
}

// Load implements Store.
func (m *Memory) Load(ctx context.Context, key Key) (*diff.Snapshot, Meta, error) {
	if err := key.Validate(); err != nil {
		return nil, Meta{}, err
	}
	m.mu.Lock()
	meta, err := m.meta(key)
	data, found := m.objects[meta.Object]
	m.mu.Unlock()
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, Meta{Key: key}, nil
	case err != nil:
		return nil, Meta{Key: key}, err
	case meta.Object == "":
		return nil, meta, nil
	case !found:
		return nil, Meta{Key: key}, &CorruptError{Key: key, Object: meta.Object, Err: errors.New("object not found")}
	}
	snap, _, err := readObject(bytes.NewReader(data))
	if err == nil {
		err = checkSnapshot(key, snap)
	}
	if err != nil {
		return nil, Meta{Key: key}, &CorruptError{Key: key, Object: meta.Object, Err: err}
	}
	return snap, meta, nil
}

// Save implements Store.
func (m *Memory) Save(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error) {
	if err := base.Key.Validate(); err != nil {
		return Meta{}, err
	}
	if err := checkSnapshot(base.Key, snap); err != nil {
		return Meta{}, err
	}
	var buf bytes.Buffer
	if err := writeObject(&buf, snap, zstd.SpeedFastest); err != nil {
		return Meta{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	name := base.Key.objectPrefix() + strconv.Itoa(m.seq)
	next, err := m.commit(base, savedMeta(base, snap, name, int64(buf.Len()), m.now()))
	if err != nil {
		return Meta{}, err
	}
	m.objects[name] = buf.Bytes()
	delete(m.objects, base.Object)
	return next, nil
}

// commit stores next if the stored metadata is still at base's revision. The caller holds m.mu.
func (m *Memory) commit(base, next Meta) (Meta, error) {
	if m.metas[next.Key].revision != base.revision {
		return Meta{}, fmt.Errorf("checkpoint %s: %w", next.Key, ErrConflict)
	}
	m.revision++
	next.revision = m.revision
	m.metas[next.Key] = memoryMeta{value: encodeMeta(next), revision: m.revision}
	return next, nil
}

// Prepare implements Store.
func (m *Memory) Prepare(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error) {
	if err := base.Key.Validate(); err != nil {
		return Meta{}, err
	}
	if err := checkSnapshot(base.Key, snap); err != nil {
		return Meta{}, err
	}
	var buf bytes.Buffer
	if err := writeObject(&buf, snap, zstd.SpeedFastest); err != nil {
		return Meta{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.seq++
	name := base.Key.objectPrefix() + strconv.Itoa(m.seq)
	next, err := m.commit(base, preparedMeta(base, snap, name, int64(buf.Len()), m.now()))
	if err != nil {
		return Meta{}, err
	}
	m.objects[name] = buf.Bytes()
	if base.Pending != "" {
		delete(m.objects, base.Pending)
	}
	return next, nil
}

// Commit implements Store.
func (m *Memory) Commit(ctx context.Context, base Meta, snap *diff.Snapshot) (Meta, error) {
	if err := base.Key.Validate(); err != nil {
		return Meta{}, err
	}
	if base.Pending == "" {
		return Meta{}, fmt.Errorf("commit checkpoint %s: nothing pending", base.Key)
	}
	if err := checkSnapshot(base.Key, snap); err != nil {
		return Meta{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	next, err := m.commit(base, committedMeta(base, snap, m.now()))
	if err != nil {
		return Meta{}, err
	}
	if base.Object != "" {
		delete(m.objects, base.Object)
	}
	return next, nil
}

// LoadPending implements Store.
func (m *Memory) LoadPending(ctx context.Context, meta Meta) (*diff.Snapshot, error) {
	if meta.Pending == "" {
		return nil, fmt.Errorf("checkpoint %s: nothing pending", meta.Key)
	}
	m.mu.Lock()
	data, found := m.objects[meta.Pending]
	m.mu.Unlock()
	if !found {
		return nil, &CorruptError{Key: meta.Key, Object: meta.Pending, Err: errors.New("object not found")}
	}
	snap, _, err := readObject(bytes.NewReader(data))
	if err == nil {
		err = checkSnapshot(meta.Key, snap)
	}
	if err != nil {
		return nil, &CorruptError{Key: meta.Key, Object: meta.Pending, Err: err}
	}
	return snap, nil
}

// MarkScanned implements Store.
func (m *Memory) MarkScanned(ctx context.Context, base Meta, at time.Time) (Meta, error) {
	if err := base.Key.Validate(); err != nil {
		return Meta{}, err
	}
	next := base
	if at.After(next.LastCompleteScan) {
		next.LastCompleteScan = at.UTC()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commit(base, next)
}

// Reserve implements Store.
func (m *Memory) Reserve(ctx context.Context, base Meta, hw diff.HighWater) (Meta, error) {
	if err := base.Key.Validate(); err != nil {
		return Meta{}, err
	}
	next := base
	next.HighWater = base.HighWater.Max(hw)
	if next.HighWater == base.HighWater && base.revision != 0 {
		return base, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commit(base, next)
}

// Reset implements Store. Unreadable metadata is replaced with empty high-water marks.
func (m *Memory) Reset(ctx context.Context, key Key) (Meta, error) {
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mm, ok := m.metas[key]
	if !ok {
		return Meta{}, fmt.Errorf("checkpoint %s: %w", key, ErrNotFound)
	}
	cur, err := decodeMeta(key, mm.value, mm.revision)
	if err != nil {
		cur = Meta{Key: key, revision: mm.revision}
	}
	next, err := m.commit(cur, resetMeta(cur, m.now()))
	if err != nil {
		return Meta{}, err
	}
	delete(m.objects, cur.Object)
	delete(m.objects, cur.Pending)
	return next, nil
}

// RequestResync implements Store.
func (m *Memory) RequestResync(ctx context.Context, key Key) (Meta, error) {
	if err := key.Validate(); err != nil {
		return Meta{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.meta(key)
	if err != nil {
		return Meta{}, err
	}
	next := cur
	next.ResyncRequested = true
	return m.commit(cur, next)
}

// Damage flips a byte in the middle of the checkpoint's snapshot object, so that tests can see how
// a component handles an unreadable checkpoint. It returns ErrNotFound when no object is stored.
func (m *Memory) Damage(key Key) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	meta, err := m.meta(key)
	if err != nil {
		return err
	}
	data, ok := m.objects[meta.Object]
	if !ok {
		return fmt.Errorf("checkpoint %s has no snapshot object: %w", key, ErrNotFound)
	}
	data = bytes.Clone(data)
	data[len(data)/2] ^= 0xff
	m.objects[meta.Object] = data
	return nil
}

package publish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/tisync/tisync/schema"
)

// Leaser hands out per-task leases stored in a JetStream key-value bucket whose entries expire after
// the lease TTL. A lease is one key per organization and task. Its holder renews it every TTL/3, so
// a process that dies frees its tasks after at most one TTL. Leaser is safe for concurrent use.
type Leaser struct {
	kv    jetstream.KeyValue
	ttl   time.Duration
	owner string
	log   *zap.Logger
	now   func() time.Time
}

// leaseValue is the JSON value of a lease key.
type leaseValue struct {
	Owner      string    `json:"owner"`
	AcquiredAt time.Time `json:"acquired_at"`
}

// NewLeaser creates or updates the lease bucket and returns a Leaser whose leases name owner as
// their holder. An empty owner becomes the host name and process id. A Leaser takes over a lease
// held under its own owner name, so a daemon that keeps its owner name across restarts resumes its
// tasks at once. Two live processes must therefore never share an owner name.
func NewLeaser(ctx context.Context, js jetstream.JetStream, cfg LeaseConfig, owner string, log *zap.Logger) (*Leaser, error) {
	if log == nil {
		log = zap.NewNop()
	}
	if owner == "" {
		host, _ := os.Hostname()
		owner = fmt.Sprintf("%s/%d", host, os.Getpid())
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      cfg.Bucket,
		Description: "tisync task leases: which process polls which task",
		TTL:         cfg.TTL,
		History:     1,
		Replicas:    cfg.Replicas,
		Storage:     jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("create lease bucket %s: %w", cfg.Bucket, err)
	}
	return &Leaser{kv: kv, ttl: cfg.TTL, owner: owner, log: log, now: time.Now}, nil
}

// Owner returns the holder name this Leaser writes into its leases.
func (l *Leaser) Owner() string { return l.owner }

// LeaseKey returns the key of the lease on one task. An empty taskID names the organization's task
// list, whose key ends in "_tasks": an underscore never occurs in a TestInvite id.
func LeaseKey(organizationID, taskID string) string {
	if taskID == "" {
		return organizationID + "._tasks"
	}
	return organizationID + "." + taskID
}

// Lease is a held lease on one task. It renews itself in the background until Release; Done is
// closed when the lease is lost or released.
type Lease struct {
	leaser *Leaser
	key    string

	mu       sync.Mutex
	revision uint64
	err      error

	cancel context.CancelFunc
	done   chan struct{}
	ended  chan struct{}
}

// Acquire takes the lease on a task, or on the organization's task list when taskID is empty. It
// returns a *LeaseHeldError (matching ErrLeaseHeld) when another holder has it.
func (l *Leaser) Acquire(ctx context.Context, organizationID, taskID string) (*Lease, error) {
	if !schema.ValidID(organizationID) || (taskID != "" && !schema.ValidID(taskID)) {
		return nil, fmt.Errorf("lease: invalid organization %q or task %q: expected ASCII letters and digits", organizationID, taskID)
	}
	key := LeaseKey(organizationID, taskID)
	value, err := json.Marshal(leaseValue{Owner: l.owner, AcquiredAt: l.now().UTC()})
	if err != nil {
		return nil, err
	}
	revision, err := l.kv.Create(ctx, key, value)
	if errors.Is(err, jetstream.ErrKeyExists) {
		revision, err = l.takeOver(ctx, key, value)
	}
	var held *LeaseHeldError
	if errors.As(err, &held) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("acquire lease %s: %w", key, err)
	}

	renewCtx, cancel := context.WithCancel(context.Background())
	lease := &Lease{leaser: l, key: key, revision: revision, cancel: cancel, done: make(chan struct{}), ended: make(chan struct{})}
	go lease.renew(renewCtx, value)
	return lease, nil
}

// takeOver takes a lease that an earlier run of the same owner left behind, for example a daemon
// restarted after a crash, instead of waiting for its TTL. It returns a *LeaseHeldError when
// another owner holds the lease.
func (l *Leaser) takeOver(ctx context.Context, key string, value []byte) (uint64, error) {
	entry, err := l.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// The lease expired between Create and Get: try once more.
		revision, err := l.kv.Create(ctx, key, value)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, l.heldError(ctx, key)
		}
		return revision, err
	}
	if err != nil {
		return 0, err
	}
	var held leaseValue
	if json.Unmarshal(entry.Value(), &held) != nil || held.Owner != l.owner {
		return 0, l.heldError(ctx, key)
	}
	revision, err := l.kv.Update(ctx, key, value, entry.Revision())
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists) {
		return 0, l.heldError(ctx, key)
	}
	if err == nil {
		l.log.Info("took over the lease of an earlier run", zap.String("lease", key), zap.Time("held_since", held.AcquiredAt))
	}
	return revision, err
}

func (l *Leaser) heldError(ctx context.Context, key string) error {
	held := &LeaseHeldError{Key: key, Holder: "unknown"}
	entry, err := l.kv.Get(ctx, key)
	if err == nil {
		var v leaseValue
		if json.Unmarshal(entry.Value(), &v) == nil {
			held.Holder, held.Since = v.Owner, v.AcquiredAt
		}
	}
	return held
}

// renew updates the lease every TTL/3 until it is released or lost. A lease counts as lost when an
// update finds another revision (someone took it over after it expired) or when no update succeeded
// for a whole TTL.
func (lease *Lease) renew(ctx context.Context, value []byte) {
	defer close(lease.ended)
	l := lease.leaser
	interval := l.ttl / 3
	lastRenewed := l.now()
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		lease.mu.Lock()
		revision := lease.revision
		lease.mu.Unlock()

		opCtx, cancel := context.WithTimeout(ctx, interval)
		next, err := l.kv.Update(opCtx, lease.key, value, revision)
		cancel()
		switch {
		case err == nil:
			lease.mu.Lock()
			lease.revision = next
			lease.mu.Unlock()
			lastRenewed = l.now()
		case errors.Is(err, jetstream.ErrKeyRevisionMismatch), errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyNotFound):
			lease.lose(fmt.Errorf("%w: %s was taken over or expired: %v", ErrLeaseLost, lease.key, err))
			return
		case ctx.Err() != nil:
			return
		default:
			if l.now().Sub(lastRenewed) >= l.ttl {
				lease.lose(fmt.Errorf("%w: %s not renewed for %s: %v", ErrLeaseLost, lease.key, l.ttl, err))
				return
			}
			l.log.Warn("lease renewal failed; retrying", zap.String("lease", lease.key), zap.Error(err))
		}
	}
}

func (lease *Lease) lose(err error) {
	lease.mu.Lock()
	defer lease.mu.Unlock()
	if lease.err == nil {
		lease.err = err
		close(lease.done)
		lease.leaser.log.Error("task lease lost; the running poll stops without storing its checkpoint", zap.String("lease", lease.key), zap.Error(err))
	}
}

// Key returns the lease's key.
func (lease *Lease) Key() string { return lease.key }

// Done is closed when the lease is lost or released.
func (lease *Lease) Done() <-chan struct{} { return lease.done }

// Err returns nil while the lease is held, an error wrapping ErrLeaseLost after it was lost, and
// context.Canceled after Release.
func (lease *Lease) Err() error {
	lease.mu.Lock()
	defer lease.mu.Unlock()
	return lease.err
}

// Check returns Err, so that a poll can verify the lease right before it stores a checkpoint.
func (lease *Lease) Check() error { return lease.Err() }

// Release stops the renewal and deletes the lease if this holder still has it, so that another
// process can take the task at once instead of after the TTL.
func (lease *Lease) Release(ctx context.Context) error {
	lease.cancel()
	<-lease.ended

	lease.mu.Lock()
	lost := lease.err != nil
	if !lost {
		lease.err = context.Canceled
		close(lease.done)
	}
	revision := lease.revision
	lease.mu.Unlock()
	if lost {
		return nil
	}
	err := lease.leaser.kv.Delete(ctx, lease.key, jetstream.LastRevision(revision))
	if err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("release lease %s: %w", lease.key, err)
	}
	return nil
}

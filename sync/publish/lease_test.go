package publish

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestLeaseExcludesSecondHolder(t *testing.T) {
	_, nc := runServer(t)
	ctx := testContext(t)
	js, _ := jetstream.New(nc)
	cfg := DefaultConfig().Lease

	first, err := NewLeaser(ctx, js, cfg, "worker-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	second, err := NewLeaser(ctx, js, cfg, "worker-b", nil)
	if err != nil {
		t.Fatal(err)
	}

	lease, err := first.Acquire(ctx, "org1", "task1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = second.Acquire(ctx, "org1", "task1")
	var held *LeaseHeldError
	if !errors.As(err, &held) || !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second acquire: err = %v, want *LeaseHeldError", err)
	}
	if held.Holder != "worker-a" {
		t.Errorf("holder = %q, want worker-a", held.Holder)
	}

	// Another task is free.
	other, err := second.Acquire(ctx, "org1", "task2")
	if err != nil {
		t.Fatalf("acquire another task: %v", err)
	}
	defer other.Release(ctx)

	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(lease.Err(), context.Canceled) {
		t.Errorf("Err after release = %v", lease.Err())
	}
	again, err := second.Acquire(ctx, "org1", "task1")
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	if err := again.Check(); err != nil {
		t.Errorf("Check on a held lease = %v", err)
	}
	again.Release(ctx)
}

func TestLeaseExpiresAndIsLost(t *testing.T) {
	_, nc := runServer(t)
	ctx := testContext(t)
	js, _ := jetstream.New(nc)
	cfg := LeaseConfig{Bucket: "leases_ttl", TTL: time.Second, Replicas: 1}

	crashed, err := NewLeaser(ctx, js, cfg, "worker-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	survivor, err := NewLeaser(ctx, js, cfg, "worker-b", nil)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := crashed.Acquire(ctx, "org1", "task1")
	if err != nil {
		t.Fatal(err)
	}
	// The holder stops renewing, as a frozen or crashed process does.
	lease.cancel()
	<-lease.ended

	var taken *Lease
	deadline := time.Now().Add(10 * time.Second)
	for taken == nil {
		taken, err = survivor.Acquire(ctx, "org1", "task1")
		if err != nil && !errors.Is(err, ErrLeaseHeld) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("lease did not expire within 10s of a 1s TTL")
		}
		if taken == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	defer taken.Release(ctx)

	// The first holder, renewing again, finds the lease taken and reports it lost.
	ctx2, cancel := context.WithCancel(context.Background())
	defer cancel()
	lease.ended = make(chan struct{})
	lease.cancel = cancel
	go lease.renew(ctx2, []byte(`{}`))
	select {
	case <-lease.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("lost lease not reported within 10s")
	}
	if !errors.Is(lease.Err(), ErrLeaseLost) {
		t.Errorf("Err = %v, want ErrLeaseLost", lease.Err())
	}
}

func TestLeaseTakenOverBySameOwner(t *testing.T) {
	_, nc := runServer(t)
	ctx := testContext(t)
	js, _ := jetstream.New(nc)
	cfg := DefaultConfig().Lease

	crashed, err := NewLeaser(ctx, js, cfg, "host/instance-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	lease, err := crashed.Acquire(ctx, "org1", "task1")
	if err != nil {
		t.Fatal(err)
	}
	// The process dies: the renewals stop and nothing is released.
	lease.cancel()
	<-lease.ended

	restarted, err := NewLeaser(ctx, js, cfg, "host/instance-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := restarted.Acquire(ctx, "org1", "task1")
	if err != nil {
		t.Fatalf("restarted owner could not take over its lease: %v", err)
	}
	defer resumed.Release(ctx)

	other, err := NewLeaser(ctx, js, cfg, "host/instance-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Acquire(ctx, "org1", "task1"); !errors.Is(err, ErrLeaseHeld) {
		t.Errorf("another owner: err = %v, want ErrLeaseHeld", err)
	}
}

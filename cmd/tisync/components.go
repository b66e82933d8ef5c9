package main

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tisync/tisync/cmd/tisync/internal/natsconn"
	"github.com/tisync/tisync/sync/checkpoint"
	"github.com/tisync/tisync/sync/poll"
	"github.com/tisync/tisync/sync/publish"
	"github.com/tisync/tisync/sync/testinvite"
)

// syncSide holds the components of the sync side: the API client, the checkpoint store, the
// publisher and the leases, wired into a poller.
type syncSide struct {
	client *testinvite.Client
	store  *checkpoint.JetStream
	pub    *publish.Publisher
	leaser *publish.Leaser
	poller *poll.Poller
}

// newSyncSide provisions the stream and the buckets and builds the poller. It does not start any
// schedule. owner names the holder of the task leases; empty uses host name and process id. A dry
// run creates no stream and takes no leases.
func (a *app) newSyncSide(ctx context.Context, conn *natsconn.Conn, owner string, dryRun bool) (*syncSide, error) {
	cfg := a.cfg
	log := a.log
	if !dryRun {
		if _, err := publish.EnsureStream(ctx, conn.JS, cfg.Publish.Stream, log.Named("publish")); err != nil {
			return nil, fmt.Errorf("stream: %w", err)
		}
	}
	s := &syncSide{}
	var err error
	s.client, err = testinvite.New(cfg.TestInvite, log, a.registry)
	if err != nil {
		return nil, err
	}
	s.store, err = checkpoint.NewJetStream(ctx, conn.JS, cfg.Checkpoint, log, a.registry)
	if err != nil {
		return nil, err
	}
	s.pub, err = publish.NewPublisher(conn.NC, cfg.Publish, log.Named("publish"), a.registry)
	if err != nil {
		return nil, err
	}
	deps := poll.Deps{
		Client:     s.client,
		Store:      s.store,
		Publisher:  s.pub,
		Logger:     log.Named("poll"),
		Registerer: a.registry,
	}
	if !dryRun {
		s.leaser, err = publish.NewLeaser(ctx, conn.JS, cfg.Publish.Lease, owner, log.Named("lease"))
		if err != nil {
			return nil, err
		}
		deps.Leaser = s.leaser
	}
	s.poller, err = poll.NewPoller(cfg.Poll, deps)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newCheckpointStore opens the checkpoint store alone, for the checkpoint and status commands.
func (a *app) newCheckpointStore(ctx context.Context, js jetstream.JetStream) (*checkpoint.JetStream, error) {
	return checkpoint.NewJetStream(ctx, js, a.cfg.Checkpoint, a.log, nil)
}

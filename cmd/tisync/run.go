package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tisync/tisync/cmd/tisync/internal/natsconn"
	"github.com/tisync/tisync/cmd/tisync/internal/opsserver"
	"github.com/tisync/tisync/sync/poll"
)

func (a *app) runCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: NATS (embedded or external), the pollers and the sink",
		Long: `run starts the configured components and runs until SIGINT or SIGTERM: the pollers unless
poll.enabled is false, and the ClickHouse sink unless sink.enabled is false. With no nats.url it
starts an embedded NATS server with JetStream, its store under data_dir; with a URL it connects to
that server. On a signal it stops scheduling polls, lets running polls finish within two thirds of
shutdown_timeout (an abandoned poll commits no checkpoint), flushes the sink's batch and drains
the NATS connection, all within shutdown_timeout, and exits with 0, or with 1 when something did
not stop in time. A second signal ends the process at once.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.load(); err != nil {
				return err
			}
			return a.run(cmd.Context())
		},
	}
}

func (a *app) syncCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "sync",
		Short: "Run only the pollers: TestInvite to NATS JetStream",
		Long: `sync runs the pollers without the ClickHouse sink, like run with sink.enabled set to false.
Use it to split the daemon into a sync process and a sink process that share a NATS server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.forceSyncOnly = true
			if err := a.load(); err != nil {
				return err
			}
			if !a.cfg.Poll.Enabled {
				return &usageError{fmt.Errorf("sync runs the pollers, but poll.enabled is false")}
			}
			return a.run(cmd.Context())
		},
	}
}

// component is one long-running part of the daemon. run returns after ctx is done and the
// component's goroutines have ended.
type component struct {
	name string
	run  func(ctx context.Context) error
}

func (a *app) run(ctx context.Context) error {
	log := a.log
	cfg := a.cfg
	fields := []zap.Field{
		zap.String("version", buildVersion()),
		zap.String("config", a.configSummaryPath()),
		zap.String("data_dir", cfg.DataDir),
		zap.Bool("nats_embedded", cfg.NATS.IsEmbedded()),
		zap.String("stream", cfg.Publish.Stream.Name),
		zap.Bool("poll", cfg.Poll.Enabled),
		zap.Bool("sink", cfg.Sink.Enabled && !a.forceSyncOnly),
		zap.String("http_listen", cfg.HTTP.Listen),
		zap.Duration("shutdown_timeout", cfg.ShutdownTimeout),
	}
	if cfg.Poll.Enabled {
		fields = append(fields,
			zap.String("organization", cfg.TestInvite.OrganizationID),
			zap.String("testinvite_url", cfg.TestInvite.BaseURL),
			zap.String("auth_scheme", cfg.TestInvite.Auth.Scheme))
	}
	if cfg.Sink.Enabled && !a.forceSyncOnly {
		fields = append(fields,
			zap.Strings("clickhouse", cfg.ClickHouse.Addresses),
			zap.String("clickhouse_database", cfg.ClickHouse.Database))
	}
	log.Info("tisync starting", fields...)

	conn, err := natsconn.Connect(ctx, cfg.NATS, log)
	if err != nil {
		return err
	}
	// One deadline bounds the whole stop: the components and then the NATS drain share
	// shutdown_timeout, counted from the signal.
	var deadline atomic.Int64
	deadline.Store(time.Now().Add(cfg.ShutdownTimeout).UnixNano())
	stopWatch := context.AfterFunc(ctx, func() { deadline.Store(time.Now().Add(cfg.ShutdownTimeout).UnixNano()) })
	defer stopWatch()
	err = a.runWithNATS(ctx, conn)

	// The NATS connection closes last, after every component has stopped, so that the final
	// publishes and acks of a graceful stop still reach the server. It gets what is left of the
	// deadline, and at least two seconds.
	closeCtx, cancel := context.WithDeadline(context.Background(), maxTime(time.Unix(0, deadline.Load()), time.Now().Add(2*time.Second)))
	defer cancel()
	if cerr := conn.Close(closeCtx); cerr != nil {
		log.Warn("close NATS", zap.Error(cerr))
	}
	if err != nil {
		return err
	}
	log.Info("tisync stopped")
	return nil
}

func (a *app) runWithNATS(ctx context.Context, conn *natsconn.Conn) error {
	if _, err := conn.JS.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream is not available on the NATS server: %w", err)
	}
	var components []component
	var ops *opsserver.Server
	if a.cfg.HTTP.Enabled() {
		ops = opsserver.New(a.cfg.HTTP, a.registry, a.log.Named("http"))
		ops.AddCheck(opsserver.Check{Name: "nats", Fn: func(context.Context) error {
			if !conn.NC.IsConnected() {
				return fmt.Errorf("NATS connection is %s", conn.NC.Status())
			}
			return nil
		}})
		components = append(components, component{name: "http", run: ops.Run})
	}
	if a.cfg.Poll.Enabled {
		owner, release, err := a.instanceOwner()
		if err != nil {
			return err
		}
		defer release()
		side, err := a.newSyncSide(ctx, conn, owner, false)
		if err != nil {
			return err
		}
		// Running polls get two thirds of the shutdown timeout to finish; the rest is for the
		// sink's last batch and the NATS drain.
		scheduler := poll.NewScheduler(side.poller, a.cfg.ShutdownTimeout*2/3)
		if ops != nil {
			ops.AddCheck(opsserver.Check{Name: "scheduler", Fn: func(context.Context) error {
				if !scheduler.Running() {
					return errors.New("poll scheduler is not running")
				}
				return nil
			}})
		}
		components = append(components, component{name: "poll", run: scheduler.Run})
	}
	if a.cfg.Sink.Enabled && !a.forceSyncOnly {
		sink, ch, err := a.sinkComponent(conn)
		if err != nil {
			return err
		}
		if ops != nil {
			ops.AddCheck(opsserver.Check{Name: "clickhouse", Fn: func(ctx context.Context) error {
				_, err := ch.Ping(ctx)
				return err
			}})
		}
		components = append(components, sink)
	}
	a.log.Info("tisync ready", zap.String("nats_mode", conn.Mode()), zap.Int("components", len(components)))
	return runComponents(ctx, a.log, a.cfg.ShutdownTimeout, components)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (a *app) configSummaryPath() string {
	if a.configPath != "" {
		return a.configPath
	}
	if p := lookupEnv(a.environ, "TISYNC_CONFIG"); p != "" {
		return p
	}
	return "(defaults)"
}

// runComponents runs every component until ctx is done or one of them fails, then stops the others
// and waits for them up to shutdownTimeout. It returns the first failure, or an error when the
// components do not stop in time.
func runComponents(ctx context.Context, log *zap.Logger, shutdownTimeout time.Duration, components []component) error {
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, c := range components {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.run(runCtx)
			if err != nil && !errors.Is(err, context.Canceled) {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: %w", c.name, err)
				}
				mu.Unlock()
				log.Error("component stopped with an error", zap.String("component", c.name), zap.Error(err))
				cancel()
				return
			}
			log.Debug("component stopped", zap.String("component", c.name))
		}()
	}

	<-runCtx.Done()
	if ctx.Err() != nil {
		log.Info("tisync stopping", zap.Duration("deadline", shutdownTimeout))
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		return fmt.Errorf("components did not stop within shutdown_timeout %s", shutdownTimeout)
	}
	mu.Lock()
	defer mu.Unlock()
	return firstErr
}

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/tisync/tisync/cmd/tisync/internal/natsconn"
	"github.com/tisync/tisync/sink/clickhouse"
	"github.com/tisync/tisync/sink/consume"
)

func (a *app) sinkCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "sink",
		Short: "Run only the ClickHouse sink: NATS JetStream to ClickHouse",
		Long: `sink runs the ClickHouse sink without the pollers, like run with poll.enabled set to false. Use
it to split the daemon into a sync process and a sink process that share a NATS server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.pollOff = true
			if err := a.load(); err != nil {
				return err
			}
			if !a.cfg.Sink.Enabled {
				return &usageError{errors.New("sink runs the ClickHouse sink, but sink.enabled is false")}
			}
			return a.run(cmd.Context())
		},
	}
}

// sinkComponent returns the sink as a daemon component: it applies pending migrations first when
// sink.auto_migrate is set, retrying while ClickHouse is unreachable, and then consumes events.
func (a *app) sinkComponent(conn *natsconn.Conn) (component, *clickhouse.Client, error) {
	log := a.log.Named("sink")
	ch, err := clickhouse.New(a.cfg.ClickHouse, a.log, a.registry)
	if err != nil {
		return component{}, nil, err
	}
	// The sink's last batch must fit in the bound of the whole stop.
	sinkCfg := a.cfg.Sink.Config
	sinkCfg.ShutdownTimeout = min(sinkCfg.ShutdownTimeout, a.cfg.ShutdownTimeout*2/3)
	consumer, err := consume.New(sinkCfg, conn.JS, ch, a.log, a.registry)
	if err != nil {
		ch.Close()
		return component{}, nil, err
	}
	run := func(ctx context.Context) error {
		defer ch.Close()
		if a.cfg.Sink.AutoMigrate {
			if err := migrateWithRetry(ctx, ch, log); err != nil {
				return err
			}
		}
		return consumer.Run(ctx)
	}
	return component{name: "sink", run: run}, ch, nil
}

// migrateWithRetry applies pending migrations, retrying with backoff while ClickHouse is down. A
// checksum mismatch or a failing statement is not retried.
func migrateWithRetry(ctx context.Context, ch *clickhouse.Client, log *zap.Logger) error {
	backoff := time.Second
	for attempt := 1; ; attempt++ {
		if _, err := ch.Ping(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("ClickHouse unreachable; retrying before migrations", zap.Int("attempt", attempt), zap.Duration("backoff", backoff), zap.Error(err))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		// The client logs each migration it applies.
		if _, err := ch.Migrate(ctx); err != nil {
			return fmt.Errorf("migrate ClickHouse: %w", err)
		}
		return nil
	}
}

func (a *app) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending ClickHouse migrations",
		Long: `migrate creates the database when missing and applies the pending schema migrations in order:
the tables tasks, tickets, test_sessions and change_events and the analytics views. It is safe when
several processes run it at once: a lock in ClickHouse lets one apply each migration. A migration
whose file changed after it was applied is an error that names the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClickHouse(func(ch *clickhouse.Client) error {
				applied, err := ch.Migrate(cmd.Context())
				for _, m := range applied {
					fmt.Fprintf(a.stdout, "applied %04d %s\n", m.Version, m.Name)
				}
				if err != nil {
					return err
				}
				if len(applied) == 0 {
					fmt.Fprintln(a.stdout, "no pending migrations")
				}
				return nil
			})
		},
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List the migrations and whether each is applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withClickHouse(func(ch *clickhouse.Client) error {
				states, err := ch.MigrationStatus(cmd.Context())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tNAME\tSTATE\tAPPLIED AT")
				mismatch := 0
				for _, m := range states {
					state, at := "pending", ""
					switch {
					case m.Applied && m.Mismatch():
						state = "applied, file changed since"
						mismatch++
					case m.Applied && m.File == "":
						state = "applied by a newer build"
					case m.Applied:
						state = "applied"
					}
					if m.Applied {
						at = m.AppliedAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%04d\t%s\t%s\t%s\n", m.Version, m.Name, state, at)
				}
				tw.Flush()
				if mismatch > 0 {
					return fmt.Errorf("%d applied migrations differ from this build's files", mismatch)
				}
				return nil
			})
		},
	})
	return cmd
}

// withClickHouse loads the configuration and runs fn with a ClickHouse client.
func (a *app) withClickHouse(fn func(ch *clickhouse.Client) error) error {
	if err := a.loadWithoutPoll(); err != nil {
		return err
	}
	ch, err := clickhouse.New(a.cfg.ClickHouse, a.log, nil)
	if err != nil {
		return err
	}
	defer ch.Close()
	err = fn(ch)
	var netErr *net.OpError
	if errors.As(err, &netErr) {
		return fmt.Errorf("%w; check clickhouse.addresses (%s) and that the server runs", err, strings.Join(a.cfg.ClickHouse.Addresses, ", "))
	}
	return err
}

func (a *app) dlqCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, inspect and replay the events the sink could not write",
		Long: `The sink copies each message it cannot decode or insert to the dead-letter stream
(sink.dead_letter_stream), with the reason and the original headers, and goes on with the others.
Fix the cause, then replay: the event goes back to its original subject with its original id.`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List the dead letters: sequence, time, subject, reason",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return a.withDeadLetters(cmd.Context(), func(q *consume.DeadLetterQueue) error {
					letters, err := q.List(cmd.Context())
					if err != nil {
						return err
					}
					if len(letters) == 0 {
						fmt.Fprintln(a.stdout, "no dead letters")
						return nil
					}
					tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
					fmt.Fprintln(tw, "SEQ\tTIME\tSUBJECT\tEVENT ID\tREASON")
					for _, d := range letters {
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s: %s\n", d.Sequence, d.Time.UTC().Format(time.RFC3339), d.Subject, eventOrMsgID(d), d.ReasonKind, oneLine(d.Reason, 100))
					}
					return tw.Flush()
				})
			},
		},
		&cobra.Command{
			Use:   "show SEQ",
			Short: "Show one dead letter: headers, reason and body",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				seq, err := parseSeq(args[0])
				if err != nil {
					return err
				}
				return a.withDeadLetters(cmd.Context(), func(q *consume.DeadLetterQueue) error {
					d, err := q.Show(cmd.Context(), seq)
					if err != nil {
						return err
					}
					tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
					fmt.Fprintf(tw, "sequence\t%d\n", d.Sequence)
					fmt.Fprintf(tw, "time\t%s\n", d.Time.UTC().Format(time.RFC3339))
					fmt.Fprintf(tw, "subject\t%s\n", d.Subject)
					fmt.Fprintf(tw, "origin\t%s sequence %d, delivered %d times\n", d.Stream, d.StreamSequence, d.Deliveries)
					fmt.Fprintf(tw, "event id\t%s\n", eventOrMsgID(d))
					fmt.Fprintf(tw, "reason\t%s: %s\n", d.ReasonKind, d.Reason)
					names := make([]string, 0, len(d.Header))
					for name := range d.Header {
						names = append(names, name)
					}
					sort.Strings(names)
					for _, name := range names {
						fmt.Fprintf(tw, "header %s\t%s\n", name, strings.Join(d.Header.Values(name), ", "))
					}
					tw.Flush()
					fmt.Fprintf(a.stdout, "body:\n%s\n", d.Data)
					return nil
				})
			},
		},
		a.dlqReplayCommand(),
	)
	return cmd
}

func (a *app) dlqReplayCommand() *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "replay SEQ... | replay --all",
		Short: "Republish dead letters to their original subjects, then remove them",
		Long: `replay republishes each dead letter to its original subject and removes it from the
dead-letter stream only after JetStream acknowledged the publish. The event body, and so its
CloudEvents id, is unchanged; the Nats-Msg-Id gets a ".replay.<sequence>" suffix so that the event
stream's duplicate window, which still holds the original id, does not drop the copy. Replaying one
dead letter twice is dropped as a duplicate.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return &usageError{errors.New("name the sequences to replay, or use --all")}
			}
			seqs := make([]uint64, 0, len(args))
			for _, arg := range args {
				seq, err := parseSeq(arg)
				if err != nil {
					return err
				}
				seqs = append(seqs, seq)
			}
			return a.withDeadLetters(cmd.Context(), func(q *consume.DeadLetterQueue) error {
				if all {
					res, err := q.ReplayAll(cmd.Context())
					fmt.Fprintf(a.stdout, "replayed %d dead letters, %d failed\n", res.Replayed, len(res.Failed))
					for seq, ferr := range res.Failed {
						fmt.Fprintf(a.stdout, "  %d: %v\n", seq, ferr)
					}
					if err == nil && len(res.Failed) > 0 {
						err = fmt.Errorf("%d dead letters could not be replayed", len(res.Failed))
					}
					return err
				}
				failed := 0
				for _, seq := range seqs {
					if err := q.Replay(cmd.Context(), seq); err != nil {
						failed++
						fmt.Fprintf(a.stdout, "%d: %v\n", seq, err)
						continue
					}
					fmt.Fprintf(a.stdout, "%d: replayed\n", seq)
				}
				if failed > 0 {
					return fmt.Errorf("%d of %d dead letters could not be replayed", failed, len(seqs))
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "replay every dead letter")
	return cmd
}

// withDeadLetters connects to NATS and runs fn with the dead-letter queue.
func (a *app) withDeadLetters(ctx context.Context, fn func(q *consume.DeadLetterQueue) error) error {
	if err := a.loadWithoutPoll(); err != nil {
		return err
	}
	conn, err := natsconn.ConnectClient(ctx, a.cfg.NATS, a.log)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	q := consume.NewDeadLetterQueue(conn.JS, a.cfg.Sink.Config)
	if err := q.Ensure(ctx); err != nil {
		return err
	}
	return fn(q)
}

func parseSeq(s string) (uint64, error) {
	seq, err := strconv.ParseUint(s, 10, 64)
	if err != nil || seq == 0 {
		return 0, &usageError{fmt.Errorf("sequence %q is invalid: expected a positive number from `tisync dlq list`", s)}
	}
	return seq, nil
}

// eventOrMsgID names a dead letter: its event id, or its Nats-Msg-Id when the body is not an event.
func eventOrMsgID(d consume.DeadLetter) string {
	switch {
	case d.EventID != "":
		return d.EventID
	case d.MsgID != "":
		return d.MsgID + " (message id)"
	}
	return "-"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max-3] + "..."
	}
	return s
}

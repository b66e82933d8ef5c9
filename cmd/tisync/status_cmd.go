package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/tisync/tisync/cmd/tisync/internal/natsconn"
	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/checkpoint"
)

// statusReport is the report of `tisync status`; its JSON form is the --json output.
type statusReport struct {
	OrganizationID string          `json:"organization_id"`
	GeneratedAt    time.Time       `json:"generated_at"`
	Window         string          `json:"recent_window"`
	FreshnessBound string          `json:"freshness_bound"`
	Checkpoints    []statusEntry   `json:"checkpoints"`
	Stream         *streamStatus   `json:"stream,omitempty"`
	Consumer       *consumerStatus `json:"consumer,omitempty"`
	DeadLetters    *int            `json:"dead_letters,omitempty"`
	Problems       []string        `json:"problems,omitempty"`
}

type statusEntry struct {
	TaskID           string     `json:"task_id"`
	Entity           string     `json:"entity"`
	Records          int        `json:"records"`
	LastCompleteScan *time.Time `json:"last_complete_scan,omitempty"`
	AgeSeconds       *float64   `json:"age_seconds,omitempty"`
	// RecentChanges counts the events of the checkpoint in the stream during the recent window.
	RecentChanges *uint64 `json:"recent_changes,omitempty"`
	State         string  `json:"state"`
}

type streamStatus struct {
	Name      string    `json:"name"`
	Events    uint64    `json:"events"`
	Bytes     uint64    `json:"bytes"`
	LastEvent time.Time `json:"last_event"`
}

type consumerStatus struct {
	Name         string     `json:"name"`
	Pending      uint64     `json:"pending"`
	AckPending   int        `json:"ack_pending"`
	Redelivered  int        `json:"redelivered"`
	LastActive   *time.Time `json:"last_active,omitempty"`
	DeliveredSeq uint64     `json:"delivered_stream_sequence"`
}

func (a *app) statusCommand() *cobra.Command {
	var (
		asJSON bool
		window time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show per task and entity the last complete scan, records, recent changes and lag",
		Long: `status prints, for each task and entity of the organization: the records tracked, the last
complete scan and its age (stale past poll.freshness_bound), and the events of the recent window;
then the stream, the sink consumer's lag and the dead letters. It reads NATS only, so it works
while the daemon runs (through its embedded server at nats.embedded.listen) and while it does not.
With --json it prints the same as one JSON document. The exit code is 1 when a checkpoint is stale
or unreadable, or dead letters wait, so that scripts can alert on it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.loadWithoutPoll(); err != nil {
				return err
			}
			ctx := cmd.Context()
			conn, err := natsconn.ConnectClient(ctx, a.cfg.NATS, a.log)
			if err != nil {
				return err
			}
			defer func() {
				closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = conn.Close(closeCtx)
			}()
			report, err := a.buildStatus(ctx, conn.JS, window)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(report); err != nil {
					return err
				}
			} else {
				writeStatus(a.stdout, report)
			}
			switch n := len(report.Problems); {
			case n == 1:
				return fmt.Errorf("1 problem: %s", report.Problems[0])
			case n > 1:
				return fmt.Errorf("%d problems, the first: %s", n, report.Problems[0])
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON document instead of tables")
	cmd.Flags().DurationVar(&window, "window", time.Hour, "how far back recent changes are counted")
	return cmd
}

func (a *app) buildStatus(ctx context.Context, js jetstream.JetStream, window time.Duration) (statusReport, error) {
	now := time.Now().UTC()
	org := a.cfg.TestInvite.OrganizationID
	report := statusReport{
		OrganizationID: org,
		GeneratedAt:    now,
		Window:         window.String(),
		FreshnessBound: a.cfg.Poll.FreshnessBound.String(),
	}

	store, err := a.newCheckpointStore(ctx, js)
	if err != nil {
		return report, err
	}
	metas, err := store.List(ctx)
	if err != nil {
		return report, fmt.Errorf("list checkpoints: %w", err)
	}
	for _, m := range metas {
		if org != "" && m.Key.OrganizationID != org {
			continue
		}
		report.Checkpoints = append(report.Checkpoints, a.statusEntry(m, now, &report))
	}

	stream, err := js.Stream(ctx, a.cfg.Publish.Stream.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		report.Problems = append(report.Problems, fmt.Sprintf("stream %s does not exist yet: no poll has run", a.cfg.Publish.Stream.Name))
	case err != nil:
		return report, fmt.Errorf("stream %s: %w", a.cfg.Publish.Stream.Name, err)
	default:
		info, err := stream.Info(ctx)
		if err != nil {
			return report, fmt.Errorf("stream %s: %w", a.cfg.Publish.Stream.Name, err)
		}
		report.Stream = &streamStatus{Name: info.Config.Name, Events: info.State.Msgs, Bytes: info.State.Bytes, LastEvent: info.State.LastTime}
		countRecent(ctx, stream, report.Checkpoints, org, now.Add(-window))
		report.Consumer = consumerState(ctx, stream, a.cfg.Sink.Consumer)
	}

	if dlq, err := js.Stream(ctx, a.cfg.Sink.DeadLetterStream); err == nil {
		if info, err := dlq.Info(ctx); err == nil {
			n := int(info.State.Msgs)
			report.DeadLetters = &n
			if n > 0 {
				report.Problems = append(report.Problems, fmt.Sprintf("%d dead letters wait in %s: see tisync dlq list", n, a.cfg.Sink.DeadLetterStream))
			}
		}
	}
	return report, nil
}

func (a *app) statusEntry(m checkpoint.Meta, now time.Time, report *statusReport) statusEntry {
	e := statusEntry{TaskID: m.Key.TaskID, Entity: string(m.Key.Entity), Records: m.Records, State: "ok"}
	if e.TaskID == "" {
		e.TaskID = "_tasks"
	}
	if !m.LastCompleteScan.IsZero() {
		last := m.LastCompleteScan.UTC()
		age := now.Sub(last).Seconds()
		e.LastCompleteScan, e.AgeSeconds = &last, &age
	}
	bound := a.cfg.Poll.FreshnessBound
	switch {
	case m.Unreadable != "":
		e.State = "unreadable: " + m.Key.ResetCommand()
		report.Problems = append(report.Problems, fmt.Sprintf("checkpoint %s is unreadable: %s", m.Key, m.Unreadable))
	case m.Pending != "":
		e.State = "interrupted poll: the next poll finishes it"
	case m.Object == "" && !m.ResetAt.IsZero():
		e.State = "reset: next poll loads a full snapshot"
	case m.LastCompleteScan.IsZero():
		e.State = "initial load"
	case bound > 0 && now.Sub(m.LastCompleteScan) > bound:
		e.State = "stale"
		report.Problems = append(report.Problems, fmt.Sprintf("checkpoint %s is stale: last complete scan %s ago, bound %s", m.Key, now.Sub(m.LastCompleteScan).Round(time.Second), bound))
	case m.ResyncRequested:
		e.State = "resync requested"
	}
	return e
}

// countRecent fills each entry's RecentChanges with the number of its events since since, read as
// the pending count of a short-lived consumer per entry, so that no event body is transferred.
func countRecent(ctx context.Context, stream jetstream.Stream, entries []statusEntry, org string, since time.Time) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range entries {
		e := &entries[i]
		filter := schema.SubjectRoot + "." + org + "." + e.TaskID + "." + e.Entity + ".*"
		if e.TaskID == "_tasks" {
			filter = schema.SubjectRoot + "." + org + ".*." + string(schema.EntityTask) + ".*"
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := stream.CreateConsumer(ctx, jetstream.ConsumerConfig{
				FilterSubject:     filter,
				DeliverPolicy:     jetstream.DeliverByStartTimePolicy,
				OptStartTime:      &since,
				AckPolicy:         jetstream.AckNonePolicy,
				InactiveThreshold: 10 * time.Second,
			})
			if err != nil {
				return
			}
			info := c.CachedInfo()
			n := info.NumPending
			e.RecentChanges = &n
			_ = stream.DeleteConsumer(context.WithoutCancel(ctx), info.Name)
		}()
	}
	wg.Wait()
}

func consumerState(ctx context.Context, stream jetstream.Stream, name string) *consumerStatus {
	c, err := stream.Consumer(ctx, name)
	if err != nil {
		return nil
	}
	info, err := c.Info(ctx)
	if err != nil {
		return nil
	}
	cs := &consumerStatus{
		Name:         info.Name,
		Pending:      info.NumPending,
		AckPending:   info.NumAckPending,
		Redelivered:  info.NumRedelivered,
		DeliveredSeq: info.Delivered.Stream,
	}
	if info.Delivered.Last != nil {
		last := info.Delivered.Last.UTC()
		cs.LastActive = &last
	}
	return cs
}

func writeStatus(w io.Writer, r statusReport) {
	fmt.Fprintf(w, "organization %s, %s\n\n", orDash(r.OrganizationID), r.GeneratedAt.Format(time.RFC3339))
	if len(r.Checkpoints) == 0 {
		fmt.Fprintln(w, "no checkpoints yet: the first poll of each task stores one")
	} else {
		entries := append([]statusEntry(nil), r.Checkpoints...)
		sort.Slice(entries, func(i, j int) bool {
			if entries[i].TaskID != entries[j].TaskID {
				return entries[i].TaskID < entries[j].TaskID
			}
			return entries[i].Entity < entries[j].Entity
		})
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "TASK\tENTITY\tRECORDS\tLAST COMPLETE SCAN\tAGE\tCHANGES (%s)\tSTATE\n", r.Window)
		for _, e := range entries {
			last, age, recent := "-", "-", "-"
			if e.LastCompleteScan != nil {
				last = e.LastCompleteScan.Format(time.RFC3339)
				age = (time.Duration(*e.AgeSeconds) * time.Second).Round(time.Second).String()
			}
			if e.RecentChanges != nil {
				recent = fmt.Sprint(*e.RecentChanges)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.TaskID, e.Entity, e.Records, last, age, recent, e.State)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if s := r.Stream; s != nil {
		fmt.Fprintf(w, "stream %s: %d events, %s, last event %s\n", s.Name, s.Events, humanBytes(s.Bytes), s.LastEvent.UTC().Format(time.RFC3339))
	}
	if c := r.Consumer; c != nil {
		active := "never"
		if c.LastActive != nil {
			active = c.LastActive.Format(time.RFC3339)
		}
		fmt.Fprintf(w, "consumer %s: %d pending, %d awaiting ack, %d redelivered, last delivery %s\n", c.Name, c.Pending, c.AckPending, c.Redelivered, active)
	} else if r.Stream != nil {
		fmt.Fprintln(w, "consumer: none yet (the sink has not started)")
	}
	if r.DeadLetters != nil {
		fmt.Fprintf(w, "dead letters: %d\n", *r.DeadLetters)
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "problem: %s\n", p)
	}
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

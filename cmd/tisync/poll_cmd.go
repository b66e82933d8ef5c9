package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tisync/tisync/cmd/tisync/internal/natsconn"
	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/diff"
	"github.com/tisync/tisync/sync/poll"
)

func (a *app) pollCommand() *cobra.Command {
	var (
		taskID     string
		entityName string
		dryRun     bool
		showImages bool
	)
	cmd := &cobra.Command{
		Use:   "poll --task ID [--entity ticket|test_session|all] [--dry-run] | poll --entity task",
		Short: "Poll one task now and print a summary",
		Long: `poll runs one poll now, outside the schedule: it scans every page, diffs against the
checkpoint, publishes the changes and stores the checkpoint, exactly as the daemon's scheduled polls
do. --entity all (the default) polls the task's tickets and then its test sessions; --entity task
polls the organization's task list and takes no --task.

With --dry-run it prints the changes it found, publishes nothing and changes no checkpoint or
stream (it creates the checkpoint buckets when they do not exist yet). It shows a progress bar on a
terminal and prints a summary: pages, records, created, updated, deleted, duration.

It takes the task's lease like the daemon, so it skips a task that a running daemon is polling.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entities, err := pollEntities(taskID, entityName)
			if err != nil {
				return &usageError{err}
			}
			if err := a.load(); err != nil {
				return err
			}
			if !a.cfg.Poll.Enabled {
				a.cfg.Poll.Enabled = true
				if err := a.cfg.Validate(); err != nil {
					return fmt.Errorf("invalid configuration:\n%w", err)
				}
			}
			return a.pollNow(cmd.Context(), taskID, entities, dryRun, showImages)
		},
	}
	cmd.Flags().StringVar(&taskID, "task", "", "id of the task to poll")
	cmd.Flags().StringVar(&entityName, "entity", "all", "what to poll: ticket, test_session, all (both), or task (the organization's task list)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print the changes; publish and store nothing")
	cmd.Flags().BoolVar(&showImages, "show-images", false, "with --dry-run, also print each change's before and after images")
	return cmd
}

func pollEntities(taskID, name string) ([]schema.Entity, error) {
	if name == "all" {
		if taskID == "" {
			return nil, errors.New("--task is required: name the task whose tickets and test sessions to poll, or use --entity task for the task list")
		}
		if !schema.ValidID(taskID) {
			return nil, fmt.Errorf("--task %q is invalid: expected a TestInvite task id of ASCII letters and digits", taskID)
		}
		return []schema.Entity{schema.EntityTicket, schema.EntityTestSession}, nil
	}
	e, err := schema.ParseEntity(name)
	if err != nil {
		return nil, fmt.Errorf("--entity %q is invalid: expected ticket, test_session, all or task", name)
	}
	switch {
	case e == schema.EntityTask && taskID != "":
		return nil, errors.New("--entity task polls the organization's whole task list: leave out --task")
	case e != schema.EntityTask && taskID == "":
		return nil, fmt.Errorf("--task is required with --entity %s", e)
	case taskID != "" && !schema.ValidID(taskID):
		return nil, fmt.Errorf("--task %q is invalid: expected a TestInvite task id of ASCII letters and digits", taskID)
	}
	return []schema.Entity{e}, nil
}

func (a *app) pollNow(ctx context.Context, taskID string, entities []schema.Entity, dryRun, showImages bool) error {
	conn, err := natsconn.ConnectClient(ctx, a.cfg.NATS, a.log)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = conn.Close(closeCtx)
	}()
	side, err := a.newSyncSide(ctx, conn, "", dryRun)
	if err != nil {
		return err
	}

	terminal := isTerminal(a.stderr)
	var failed error
	for _, e := range entities {
		req := poll.Request{TaskID: taskID, Entity: e, DryRun: dryRun}
		var bar *progressbar.ProgressBar
		if terminal {
			bar = newProgressBar(a.stderr, string(e))
			req.OnProgress = func(p poll.Progress) { updateBar(bar, p) }
		}
		if dryRun {
			req.OnChange = func(c diff.Change) { printChange(a.stdout, c, showImages) }
		}
		sum, err := side.poller.Poll(ctx, req)
		if bar != nil {
			_ = bar.Finish()
			fmt.Fprintln(a.stderr)
		}
		printSummary(a.stdout, sum, dryRun, err)
		if err != nil && failed == nil {
			failed = fmt.Errorf("poll %s: %w", sum.Key, err)
		}
	}
	return failed
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func newProgressBar(w io.Writer, entity string) *progressbar.ProgressBar {
	return progressbar.NewOptions(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("scanning "+entity),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("records"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionFullWidth(),
	)
}

func updateBar(bar *progressbar.ProgressBar, p poll.Progress) {
	if p.Changes > 0 {
		if bar.GetMax() != p.Changes {
			bar.Describe("publishing")
			bar.ChangeMax(p.Changes)
		}
		_ = bar.Set(p.Published)
		return
	}
	if p.Total > 0 && bar.GetMax() != p.Total {
		bar.ChangeMax(p.Total)
	}
	_ = bar.Set(p.Records)
}

func printChange(w io.Writer, c diff.Change, showImages bool) {
	line := fmt.Sprintf("%-8s %-12s %s  revision %d", c.Op, c.Entity, c.EntityID, c.Revision)
	if len(c.ChangedFields) > 0 {
		line += "  changed: " + strings.Join(c.ChangedFields, ",")
	}
	fmt.Fprintln(w, line)
	if showImages {
		if c.Before != nil {
			fmt.Fprintf(w, "  before: %s\n", c.Before)
		}
		if c.After != nil {
			fmt.Fprintf(w, "  after:  %s\n", c.After)
		}
	}
}

func printSummary(w io.Writer, s poll.Summary, dryRun bool, err error) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	title := "poll " + s.Key.String()
	if dryRun {
		title += " (dry run: nothing published or stored)"
	}
	fmt.Fprintln(tw, title)
	if s.Kind != 0 {
		fmt.Fprintf(tw, "  scan\t%s\n", s.Kind)
	}
	fmt.Fprintf(tw, "  pages\t%d\n", s.Stats.Pages)
	fmt.Fprintf(tw, "  records\t%d\n", s.Stats.Records)
	fmt.Fprintf(tw, "  snapshot\t%d\n", s.Counts.Snapshot)
	fmt.Fprintf(tw, "  created\t%d\n", s.Counts.Created)
	fmt.Fprintf(tw, "  updated\t%d\n", s.Counts.Updated)
	fmt.Fprintf(tw, "  deleted\t%d\n", s.Counts.Deleted)
	fmt.Fprintf(tw, "  unchanged\t%d\n", s.Counts.Unchanged)
	if s.Missing > 0 {
		fmt.Fprintf(tw, "  missing\t%d (found again %d, gone %d, lookup errors %d)\n", s.Missing, s.FoundAgain, s.Gone, s.LookupErrors)
	}
	if s.Counts.Invalid > 0 {
		fmt.Fprintf(tw, "  invalid records\t%d (skipped)\n", s.Counts.Invalid)
	}
	if s.Guard != nil {
		fmt.Fprintf(tw, "  mass-delete guard\ttripped: %v\n", s.Guard)
	}
	if !dryRun {
		fmt.Fprintf(tw, "  published\t%d (%d duplicates)\n", s.Published, s.Duplicates)
		fmt.Fprintf(tw, "  checkpoint\t%s\n", map[bool]string{true: "stored", false: "unchanged"}[s.Stored])
	}
	if s.ScanErr != nil {
		fmt.Fprintf(tw, "  scan error\t%v\n", s.ScanErr)
	}
	fmt.Fprintf(tw, "  duration\t%s\n", s.Duration.Round(time.Millisecond))
	if err != nil && s.ScanErr == nil {
		fmt.Fprintln(tw, "  result\tfailed (error below)")
	}
	tw.Flush()
}

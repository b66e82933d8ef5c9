package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tisync/tisync/cmd/tisync/internal/natsconn"
	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/checkpoint"
)

func (a *app) checkpointCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "checkpoint",
		Short: "List, inspect and reset the checkpoints the pollers diff against",
		Long: `A checkpoint is the snapshot of one entity of one task as the last scan saw it. The pollers
diff each new scan against it. These commands connect to NATS like the daemon: with an embedded
server they use the running daemon's server at nats.embedded.listen, or open the store themselves
when no daemon runs.`,
	}
	cmd.AddCommand(a.checkpointListCommand(), a.checkpointShowCommand(), a.checkpointResetCommand(false), a.checkpointResetCommand(true))
	return cmd
}

// withStore loads the configuration, connects to NATS and runs fn with the checkpoint store.
func (a *app) withStore(ctx context.Context, fn func(store *checkpoint.JetStream) error) error {
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
	store, err := a.newCheckpointStore(ctx, conn.JS)
	if err != nil {
		return err
	}
	return fn(store)
}

func (a *app) checkpointListCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List every checkpoint with its size, revision mark and last complete scan",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(store *checkpoint.JetStream) error {
				metas, err := store.List(cmd.Context())
				if err != nil {
					return err
				}
				if len(metas) == 0 {
					fmt.Fprintln(a.stdout, "no checkpoints yet: the first poll of each task stores one")
					return nil
				}
				return checkpoint.WriteList(a.stdout, metas)
			})
		},
	}
}

func (a *app) checkpointShowCommand() *cobra.Command {
	var samples int
	var organization string
	cmd := &cobra.Command{
		Use:   "show TASK",
		Short: "Show the checkpoints of one task: metadata, record counts and sample records",
		Long: `show prints, for each entity of the task, the checkpoint's metadata, how its records spread over
one telling field (loggedIn for tickets, status for test sessions) and a few records. Use "_tasks"
as TASK for the organization's task list.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(store *checkpoint.JetStream) error {
				keys, err := a.checkpointKeys(organization, args[0], "")
				if err != nil {
					return err
				}
				shown := 0
				for _, key := range keys {
					report, err := checkpoint.Show(cmd.Context(), store, key, samples)
					if errors.Is(err, checkpoint.ErrNotFound) {
						continue
					}
					if shown > 0 {
						fmt.Fprintln(a.stdout)
					}
					shown++
					if werr := checkpoint.WriteReport(a.stdout, report); werr != nil {
						return werr
					}
					if err != nil {
						fmt.Fprintf(a.stdout, "error\t%v\n", err)
					}
				}
				if shown == 0 {
					return fmt.Errorf("no checkpoint for task %s: it was never polled, or belongs to another organization (--organization)", args[0])
				}
				return nil
			})
		},
	}
	cmd.Flags().IntVar(&samples, "samples", 0, "number of sample records to print per entity; records hold candidates' personal data")
	cmd.Flags().StringVar(&organization, "organization", "", "organization id (default: testinvite.organization_id)")
	return cmd
}

func (a *app) checkpointResetCommand(resync bool) *cobra.Command {
	var entityName, organization string
	use, short, long := "reset TASK [--entity E]", "Drop a task's snapshots so that the next poll loads them in full", `reset drops the snapshot of each entity of the task (or of --entity only) and keeps the revision
and version marks: the next poll emits every record as a snapshot event, with revisions above every
revision used before, and cannot detect deletions that happened before it. It repairs unreadable
checkpoints too. Use "_tasks" as TASK for the organization's task list.`
	if resync {
		use, short, long = "resync TASK [--entity E]", "Make the next poll re-emit every record as a snapshot, keeping the snapshot", `resync asks the next poll of each entity of the task (or of --entity only) to emit every record
as a snapshot event, while keeping the stored snapshot, so that deletions are still detected. Use it
to refill a downstream store. Use "_tasks" as TASK for the organization's task list.`
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Long:  long,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(store *checkpoint.JetStream) error {
				keys, err := a.checkpointKeys(organization, args[0], entityName)
				if err != nil {
					return err
				}
				done := 0
				for _, key := range keys {
					var meta checkpoint.Meta
					if resync {
						meta, err = store.RequestResync(cmd.Context(), key)
					} else {
						meta, err = store.Reset(cmd.Context(), key)
					}
					if errors.Is(err, checkpoint.ErrNotFound) {
						continue
					}
					if err != nil {
						return fmt.Errorf("%s: %w", key, err)
					}
					done++
					if resync {
						fmt.Fprintf(a.stdout, "resync requested for %s: the next poll emits every record as a snapshot\n", key)
					} else {
						fmt.Fprintf(a.stdout, "reset %s: next scan loads a full snapshot; revisions continue above %d\n", key, meta.RevisionFloor)
					}
				}
				if done == 0 {
					return fmt.Errorf("no checkpoint for task %s: nothing to do", args[0])
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&entityName, "entity", "", "only this entity: ticket or test_session (default: every entity of the task)")
	cmd.Flags().StringVar(&organization, "organization", "", "organization id (default: testinvite.organization_id)")
	return cmd
}

// checkpointKeys returns the keys a checkpoint command works on: every entity of the task, or one.
func (a *app) checkpointKeys(organization, task, entityName string) ([]checkpoint.Key, error) {
	if organization == "" {
		organization = a.cfg.TestInvite.OrganizationID
	}
	if !schema.ValidID(organization) {
		return nil, &usageError{fmt.Errorf("organization %q is invalid: set testinvite.organization_id or --organization", organization)}
	}
	if task == "_tasks" {
		if entityName != "" && entityName != "task" {
			return nil, &usageError{errors.New("_tasks has only the task entity")}
		}
		return []checkpoint.Key{{OrganizationID: organization, Entity: schema.EntityTask}}, nil
	}
	if !schema.ValidID(task) {
		return nil, &usageError{fmt.Errorf("task %q is invalid: expected a TestInvite task id, or _tasks for the task list", task)}
	}
	entities := []schema.Entity{schema.EntityTicket, schema.EntityTestSession}
	if entityName != "" {
		e, err := schema.ParseEntity(entityName)
		if err != nil {
			return nil, &usageError{fmt.Errorf("--entity: %w", err)}
		}
		if e == schema.EntityTask {
			return nil, &usageError{errors.New("--entity task: tasks have one checkpoint for the whole organization; use _tasks as TASK")}
		}
		entities = []schema.Entity{e}
	}
	keys := make([]checkpoint.Key, 0, len(entities))
	for _, e := range entities {
		keys = append(keys, checkpoint.Key{OrganizationID: organization, TaskID: task, Entity: e})
	}
	return keys, nil
}

// Package poll runs tisync's pollers: cron schedules that scan every entity of every task through
// TestInvite's API, diff each scan against its checkpoint, publish the changes to JetStream and only
// then store the new checkpoint.
package poll

import (
	"errors"
	"fmt"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/tisync/tisync/schema"
)

// Config configures which tasks are polled, when, and how.
type Config struct {
	// Enabled runs the pollers in `tisync run`. Default: true.
	Enabled bool `yaml:"enabled"`
	// Tasks selects the tasks to poll.
	Tasks TasksConfig `yaml:"tasks"`
	// Schedules holds the cron schedule of each entity.
	Schedules Schedules `yaml:"schedules"`
	// Overrides replaces the ticket or test session schedule of single tasks. Default: none.
	Overrides []Override `yaml:"overrides"`
	// Concurrency caps the polls that run at once, over all tasks and entities. Default: 4.
	Concurrency int `yaml:"concurrency"`
	// Jitter delays each poll by a random duration up to this, so that tasks and workers do not all
	// hit the API at the same second. Default: 5s.
	Jitter time.Duration `yaml:"jitter"`
	// Timeout bounds one poll of one entity of one task; a poll that runs longer is abandoned
	// without storing its checkpoint. It must be shorter than the stream's duplicate window.
	// Default: 30m.
	Timeout time.Duration `yaml:"timeout"`
	// LookupConcurrency caps the point lookups that confirm missing records, per poll. Default: 4.
	LookupConcurrency int `yaml:"lookup_concurrency"`
	// MassDelete is the guard against deleting many records at once.
	MassDelete MassDeleteConfig `yaml:"mass_delete"`
	// FreshnessBound is the age of a task's last complete scan past which tisync logs a warning and
	// counts the checkpoint as stale. 0 turns the check off. Default: 30m.
	FreshnessBound time.Duration `yaml:"freshness_bound"`
	// RunOnStart polls every entity once at start-up instead of waiting for the first tick of its
	// schedule. Default: true.
	RunOnStart bool `yaml:"run_on_start"`
	// PublishChunk is how many events are built and published at a time, which bounds the memory
	// of a large initial load. Default: 5000.
	PublishChunk int `yaml:"publish_chunk"`
}

// TasksConfig selects the tasks to poll: a fixed list of ids, or every task the API lists,
// optionally filtered, found again at every cycle.
type TasksConfig struct {
	// IDs are the tasks to poll. Empty polls every task the API lists. Default: empty.
	IDs []string `yaml:"ids"`
	// Folder keeps the discovered tasks in one of these folders. Default: any.
	Folder []string `yaml:"folder"`
	// Labels keeps the discovered tasks that carry these labels. Default: any.
	Labels []string `yaml:"labels"`
	// Title keeps the discovered tasks whose title contains it, ignoring case. Default: any.
	Title string `yaml:"title"`
}

// Filtered reports whether discovery uses TestInvite's task search instead of the plain list.
func (t TasksConfig) Filtered() bool {
	return len(t.Folder) > 0 || len(t.Labels) > 0 || t.Title != ""
}

// Schedules are cron expressions (five fields, UTC, or descriptors such as @every 10m).
type Schedules struct {
	// Task is the schedule of the organization's task list. Default: "0 * * * *" (hourly).
	Task string `yaml:"task"`
	// Ticket is the schedule of every task's tickets. Default: "*/5 * * * *".
	Ticket string `yaml:"ticket"`
	// TestSession is the schedule of every task's test sessions. Default: "*/5 * * * *".
	TestSession string `yaml:"test_session"`
}

// Override replaces schedules for one task. An empty schedule keeps the default one.
type Override struct {
	TaskID      string `yaml:"task_id"`
	Ticket      string `yaml:"ticket"`
	TestSession string `yaml:"test_session"`
}

// MassDeleteConfig is the guard that stops a poll from deleting a large share of a task's records
// at once, which is more likely a fault of the API than a real mass deletion.
type MassDeleteConfig struct {
	// MaxShare is the largest share of the previous scan's records that one poll may delete, 0 to
	// 1. Past it, the poll emits no deletes, logs an error and counts a guard trip. Default: 0.2.
	MaxShare float64 `yaml:"max_share"`
	// MinDeletes is the number of deletes that is always allowed, whatever the share, so that small
	// tasks can lose a few records. Default: 10.
	MinDeletes int `yaml:"min_deletes"`
}

// DefaultConfig returns the settings used when the configuration leaves them unset.
func DefaultConfig() Config {
	return Config{
		Enabled: true,
		Schedules: Schedules{
			Task:        "0 * * * *",
			Ticket:      "*/5 * * * *",
			TestSession: "*/5 * * * *",
		},
		Concurrency:       4,
		Jitter:            5 * time.Second,
		Timeout:           30 * time.Minute,
		LookupConcurrency: 4,
		MassDelete:        MassDeleteConfig{MaxShare: 0.2, MinDeletes: 10},
		FreshnessBound:    30 * time.Minute,
		RunOnStart:        true,
		PublishChunk:      5000,
	}
}

// Schedule returns the schedule of entity e for one task, with its override applied.
func (c Config) Schedule(e schema.Entity, taskID string) string {
	for _, o := range c.Overrides {
		if o.TaskID != taskID {
			continue
		}
		switch {
		case e == schema.EntityTicket && o.Ticket != "":
			return o.Ticket
		case e == schema.EntityTestSession && o.TestSession != "":
			return o.TestSession
		}
	}
	switch e {
	case schema.EntityTask:
		return c.Schedules.Task
	case schema.EntityTicket:
		return c.Schedules.Ticket
	default:
		return c.Schedules.TestSession
	}
}

// Validate checks the settings, naming each bad one with its value and what is expected.
func (c Config) Validate() error {
	var errs []error
	for _, id := range c.Tasks.IDs {
		if !schema.ValidID(id) {
			errs = append(errs, fmt.Errorf("tasks.ids: %q is invalid: expected a TestInvite task id of ASCII letters and digits", id))
		}
	}
	if len(c.Tasks.IDs) > 0 && c.Tasks.Filtered() {
		errs = append(errs, errors.New("tasks: ids cannot be combined with folder, labels or title: expected either a list of task ids or a discovery filter"))
	}
	for name, spec := range map[string]string{"schedules.task": c.Schedules.Task, "schedules.ticket": c.Schedules.Ticket, "schedules.test_session": c.Schedules.TestSession} {
		if err := checkSchedule(spec); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	seen := map[string]bool{}
	for i, o := range c.Overrides {
		if !schema.ValidID(o.TaskID) {
			errs = append(errs, fmt.Errorf("overrides[%d].task_id: %q is invalid: expected a TestInvite task id", i, o.TaskID))
		}
		if seen[o.TaskID] {
			errs = append(errs, fmt.Errorf("overrides[%d].task_id: %q appears twice: expected one override per task", i, o.TaskID))
		}
		seen[o.TaskID] = true
		for name, spec := range map[string]string{"ticket": o.Ticket, "test_session": o.TestSession} {
			if spec == "" {
				continue
			}
			if err := checkSchedule(spec); err != nil {
				errs = append(errs, fmt.Errorf("overrides[%d].%s: %w", i, name, err))
			}
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("concurrency: %d is invalid: expected 1 to 256", c.Concurrency))
	}
	if c.Jitter < 0 {
		errs = append(errs, fmt.Errorf("jitter: %s is invalid: expected 0 or a positive duration", c.Jitter))
	}
	if c.Timeout < time.Second {
		errs = append(errs, fmt.Errorf("timeout: %s is invalid: expected at least 1s", c.Timeout))
	}
	if c.LookupConcurrency < 1 || c.LookupConcurrency > 64 {
		errs = append(errs, fmt.Errorf("lookup_concurrency: %d is invalid: expected 1 to 64", c.LookupConcurrency))
	}
	if c.MassDelete.MaxShare < 0 || c.MassDelete.MaxShare > 1 {
		errs = append(errs, fmt.Errorf("mass_delete.max_share: %g is invalid: expected 0 to 1, for example 0.2 for 20%%", c.MassDelete.MaxShare))
	}
	if c.MassDelete.MinDeletes < 0 {
		errs = append(errs, fmt.Errorf("mass_delete.min_deletes: %d is invalid: expected 0 or more", c.MassDelete.MinDeletes))
	}
	if c.FreshnessBound < 0 {
		errs = append(errs, fmt.Errorf("freshness_bound: %s is invalid: expected 0 (off) or a positive duration", c.FreshnessBound))
	}
	if c.PublishChunk < 1 {
		errs = append(errs, fmt.Errorf("publish_chunk: %d is invalid: expected 1 or more", c.PublishChunk))
	}
	return errors.Join(errs...)
}

func checkSchedule(spec string) error {
	if _, err := cron.ParseStandard(spec); err != nil {
		return fmt.Errorf("%q is invalid: %v: expected a cron expression such as */5 * * * * or @every 10m", spec, err)
	}
	return nil
}

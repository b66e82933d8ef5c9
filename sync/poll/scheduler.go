package poll

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/robfig/cron/v3"
	"go.uber.org/zap"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/diff"
	"github.com/tisync/tisync/sync/testinvite"
)

// discoveryMaxAge is how long a discovered task list is reused. Ticket and test session cycles
// usually fire in the same second and share one discovery.
const discoveryMaxAge = 5 * time.Second

// orphanSweepInterval is how often the scheduler removes unreferenced checkpoint objects.
const orphanSweepInterval = time.Hour

// Scheduler runs the polls on their cron schedules: the organization's task list, and the tickets
// and test sessions of every selected task. Build it with NewScheduler and call Run once.
type Scheduler struct {
	poller  *Poller
	cfg     Config
	log     *zap.Logger
	metrics *metrics
	grace   time.Duration

	sem       chan struct{}
	taskLocks sync.Map // task id → *sync.Mutex
	running   atomic.Bool

	mu           sync.Mutex
	tasks        []string
	discoveredAt time.Time
	known        map[string]bool
	staleWarned  map[string]time.Time

	randMu sync.Mutex
	rand   *rand.Rand
}

// NewScheduler returns a scheduler for the poller's organization. After Run's context is done, polls
// that are running may go on for grace before they are canceled; no new poll starts.
func NewScheduler(p *Poller, grace time.Duration) *Scheduler {
	return &Scheduler{
		poller:      p,
		cfg:         p.cfg,
		log:         p.log.Named("scheduler"),
		metrics:     p.metrics,
		grace:       grace,
		sem:         make(chan struct{}, p.cfg.Concurrency),
		known:       map[string]bool{},
		staleWarned: map[string]time.Time{},
		rand:        rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x7469737963)),
	}
}

// Running reports whether the scheduler has started and not yet stopped.
func (s *Scheduler) Running() bool { return s.running.Load() }

// Run schedules the polls and returns after ctx is done and every running poll has ended: finished,
// or canceled once the grace period passed, in which case it stores no checkpoint.
func (s *Scheduler) Run(ctx context.Context) error {
	// Polls run on workCtx, which outlives ctx by the grace period, so that a stop lets them
	// finish instead of throwing their work away.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	go func() {
		<-ctx.Done()
		t := time.NewTimer(s.grace)
		defer t.Stop()
		select {
		case <-t.C:
			cancelWork()
		case <-workCtx.Done():
		}
	}()

	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(cronLogger{log: s.log}))
	if err := s.addJobs(ctx, workCtx, c); err != nil {
		return err
	}
	c.Start()
	s.running.Store(true)
	s.metrics.schedulerAlive.Set(1)
	s.log.Info("scheduler started",
		zap.String("organization", s.poller.org),
		zap.Strings("task_ids", s.cfg.Tasks.IDs),
		zap.String("task_schedule", s.cfg.Schedules.Task),
		zap.String("ticket_schedule", s.cfg.Schedules.Ticket),
		zap.String("test_session_schedule", s.cfg.Schedules.TestSession),
		zap.Int("overrides", len(s.cfg.Overrides)),
		zap.Int("concurrency", s.cfg.Concurrency))

	var background sync.WaitGroup
	if s.cfg.RunOnStart {
		for _, e := range c.Entries() {
			background.Add(1)
			go func() {
				defer background.Done()
				e.WrappedJob.Run()
			}()
		}
	}
	background.Add(1)
	go func() {
		defer background.Done()
		s.maintain(ctx)
	}()

	<-ctx.Done()
	s.log.Info("scheduler stopping: no new polls start; running polls may finish", zap.Duration("grace", s.grace))
	stopped := c.Stop()
	<-stopped.Done()
	background.Wait()
	s.running.Store(false)
	s.metrics.schedulerAlive.Set(0)
	s.log.Info("scheduler stopped")
	return nil
}

// addJobs adds one cron job for the task list, one per entity for the tasks that keep the default
// schedule, and one per entity and override.
func (s *Scheduler) addJobs(stopCtx, workCtx context.Context, c *cron.Cron) error {
	add := func(spec string, entity schema.Entity, name string, run func()) error {
		chain := cron.NewChain(cron.Recover(cronLogger{log: s.log}), cron.SkipIfStillRunning(skipLogger{s: s, entity: entity, job: name}))
		if _, err := c.AddJob(spec, chain.Then(cron.FuncJob(run))); err != nil {
			return fmt.Errorf("schedule %s %q: %w", name, spec, err)
		}
		return nil
	}

	err := add(s.cfg.Schedules.Task, schema.EntityTask, "task list", func() {
		s.runPoll(stopCtx, workCtx, "", schema.EntityTask)
	})
	if err != nil {
		return err
	}
	overridden := map[schema.Entity]map[string]bool{schema.EntityTicket: {}, schema.EntityTestSession: {}}
	for _, o := range s.cfg.Overrides {
		for entity, spec := range map[schema.Entity]string{schema.EntityTicket: o.Ticket, schema.EntityTestSession: o.TestSession} {
			if spec == "" {
				continue
			}
			overridden[entity][o.TaskID] = true
			taskID := o.TaskID
			if err := add(spec, entity, string(entity)+" of "+taskID, func() { s.runPoll(stopCtx, workCtx, taskID, entity) }); err != nil {
				return err
			}
		}
	}
	for _, entity := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
		skip := overridden[entity]
		err := add(s.cfg.Schedule(entity, ""), entity, string(entity)+" cycle", func() {
			s.cycle(stopCtx, workCtx, entity, func(id string) bool { return !skip[id] })
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// cycle polls one entity of every selected task that include accepts, concurrency permitting, and
// waits for all of them.
func (s *Scheduler) cycle(stopCtx, workCtx context.Context, entity schema.Entity, include func(string) bool) {
	if stopCtx.Err() != nil {
		return
	}
	start := time.Now()
	tasks, err := s.selectedTasks(workCtx)
	if err != nil {
		s.log.Error("task discovery failed; this cycle polls no tasks", zap.String("entity", string(entity)), zap.Error(err))
		return
	}
	var (
		wg                      sync.WaitGroup
		ok, failed, skipped     atomic.Int64
		changes, partial, pages atomic.Int64
	)
	for _, taskID := range tasks {
		if !include(taskID) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sum, err, started := s.poll(stopCtx, workCtx, taskID, entity)
			switch {
			case !started || errors.Is(err, ErrSkipped):
				skipped.Add(1)
			case err != nil:
				failed.Add(1)
			default:
				ok.Add(1)
				changes.Add(int64(sum.Changes()))
				pages.Add(int64(sum.Stats.Pages))
				if sum.Kind == diff.Partial {
					partial.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	s.log.Info("cycle finished",
		zap.String("entity", string(entity)),
		zap.Int("tasks", len(tasks)),
		zap.Int64("complete", ok.Load()-partial.Load()),
		zap.Int64("partial", partial.Load()),
		zap.Int64("failed", failed.Load()),
		zap.Int64("skipped", skipped.Load()),
		zap.Int64("pages", pages.Load()),
		zap.Int64("changes", changes.Load()),
		zap.Duration("duration", time.Since(start)))
}

// runPoll runs one poll outside a cycle: the task list, or a task with its own schedule.
func (s *Scheduler) runPoll(stopCtx, workCtx context.Context, taskID string, entity schema.Entity) {
	_, _, _ = s.poll(stopCtx, workCtx, taskID, entity)
}

// poll waits for its jitter, a concurrency slot and the task's in-process lock, then polls. It does
// not start once stopCtx is done; started reports whether it ran.
func (s *Scheduler) poll(stopCtx, workCtx context.Context, taskID string, entity schema.Entity) (sum Summary, err error, started bool) {
	if err := sleepContext(stopCtx, s.jitter()); err != nil {
		return sum, nil, false
	}
	select {
	case s.sem <- struct{}{}:
	case <-stopCtx.Done():
		return sum, nil, false
	}
	defer func() { <-s.sem }()

	// One process polls one task's entities one after another: they share the task's lease.
	lock := s.taskLock(taskID)
	lock.Lock()
	defer lock.Unlock()
	if stopCtx.Err() != nil {
		return sum, nil, false
	}
	sum, err = s.poller.Poll(workCtx, Request{TaskID: taskID, Entity: entity})
	return sum, err, true
}

func (s *Scheduler) taskLock(taskID string) *sync.Mutex {
	l, _ := s.taskLocks.LoadOrStore(taskID, &sync.Mutex{})
	return l.(*sync.Mutex)
}

func (s *Scheduler) jitter() time.Duration {
	if s.cfg.Jitter <= 0 {
		return 0
	}
	s.randMu.Lock()
	defer s.randMu.Unlock()
	return time.Duration(s.rand.Int64N(int64(s.cfg.Jitter)))
}

// selectedTasks returns the tasks whose tickets and test sessions are polled: the configured ids,
// or the tasks the API lists, found again at most every discoveryMaxAge. New and vanished tasks are
// logged. When discovery fails, the last list is used.
func (s *Scheduler) selectedTasks(ctx context.Context) ([]string, error) {
	if len(s.cfg.Tasks.IDs) > 0 {
		s.metrics.tasksTracked.Set(float64(len(s.cfg.Tasks.IDs)))
		return s.cfg.Tasks.IDs, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tasks != nil && time.Since(s.discoveredAt) < discoveryMaxAge {
		return s.tasks, nil
	}

	ids, err := s.discover(ctx)
	if err != nil {
		if s.tasks != nil {
			s.log.Warn("task discovery failed; polling the tasks found last time", zap.Int("tasks", len(s.tasks)), zap.Error(err))
			return s.tasks, nil
		}
		return nil, err
	}
	current := make(map[string]bool, len(ids))
	for _, id := range ids {
		current[id] = true
		if !s.known[id] {
			if s.tasks != nil {
				s.log.Info("task discovered", zap.String("task", id))
			}
			s.metrics.tasksAppeared.Inc()
		}
	}
	for id := range s.known {
		if !current[id] {
			s.log.Warn("task vanished from the task list; its tickets and test sessions are no longer polled", zap.String("task", id))
			s.metrics.tasksVanished.Inc()
			for _, e := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
				s.metrics.checkpointAge.DeleteLabelValues(id, string(e))
				s.metrics.lastSuccess.DeleteLabelValues(id, string(e))
			}
		}
	}
	if s.tasks == nil {
		s.log.Info("tasks discovered", zap.Int("tasks", len(ids)))
	}
	s.known = current
	s.tasks = ids
	s.discoveredAt = time.Now()
	s.metrics.tasksTracked.Set(float64(len(ids)))
	return ids, nil
}

// discover lists the ids of the organization's tasks, filtered as configured.
func (s *Scheduler) discover(ctx context.Context) ([]string, error) {
	client := s.poller.client
	var ids []string
	collect := func(t testinvite.Task) { ids = append(ids, t.ID) }
	var scanner *testinvite.Scanner[testinvite.Task]
	if f := s.cfg.Tasks; f.Filtered() {
		scanner = client.FilterTasks(testinvite.TaskFilter{Folder: f.Folder, Labels: f.Labels, Title: f.Title, Mode: testinvite.ModeBasic, RawOnly: true})
	} else {
		scanner = client.ListTasks(testinvite.TaskQuery{Mode: testinvite.ModeBasic, RawOnly: true})
	}
	for {
		page, err := scanner.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("discover tasks: %w", err)
		}
		for _, t := range page.Records {
			if schema.ValidID(t.ID) {
				collect(t)
			}
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// maintain runs the background chores until ctx is done: the freshness check every minute and the
// removal of orphaned checkpoint objects every hour.
func (s *Scheduler) maintain(ctx context.Context) {
	freshness := time.NewTicker(time.Minute)
	defer freshness.Stop()
	sweep := time.NewTicker(orphanSweepInterval)
	defer sweep.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-freshness.C:
			s.checkFreshness(ctx)
		case <-sweep.C:
			s.removeOrphans(ctx)
		}
	}
}

// checkFreshness sets the checkpoint age gauges from the stored metadata and warns about each task
// whose last complete scan is older than the freshness bound, at most once per bound.
func (s *Scheduler) checkFreshness(ctx context.Context) {
	metas, err := s.poller.store.List(ctx)
	if err != nil {
		s.log.Warn("freshness check: list checkpoints", zap.Error(err))
		return
	}
	now := time.Now()
	for _, m := range metas {
		if m.Key.OrganizationID != s.poller.org || m.LastCompleteScan.IsZero() {
			continue
		}
		task := taskLabel(m.Key.TaskID)
		if m.Key.TaskID != "" && len(s.cfg.Tasks.IDs) == 0 {
			s.mu.Lock()
			tracked := s.known[m.Key.TaskID]
			s.mu.Unlock()
			if !tracked {
				continue
			}
		}
		age := now.Sub(m.LastCompleteScan)
		s.metrics.checkpointAge.WithLabelValues(task, string(m.Key.Entity)).Set(age.Seconds())
		if s.cfg.FreshnessBound <= 0 || age <= s.cfg.FreshnessBound {
			continue
		}
		s.metrics.staleChecks.WithLabelValues(task, string(m.Key.Entity)).Inc()
		key := m.Key.String()
		if last, ok := s.staleWarned[key]; ok && now.Sub(last) < s.cfg.FreshnessBound {
			continue
		}
		s.staleWarned[key] = now
		s.log.Warn("checkpoint is stale: no complete scan within poll.freshness_bound",
			zap.String("task", task), zap.String("entity", string(m.Key.Entity)),
			zap.Time("last_complete_scan", m.LastCompleteScan), zap.Duration("age", age.Truncate(time.Second)),
			zap.Duration("bound", s.cfg.FreshnessBound))
	}
}

// orphanRemover is implemented by checkpoint stores that can leave unreferenced objects behind.
type orphanRemover interface {
	RemoveOrphans(ctx context.Context) (int, error)
}

func (s *Scheduler) removeOrphans(ctx context.Context) {
	r, ok := s.poller.store.(orphanRemover)
	if !ok {
		return
	}
	n, err := r.RemoveOrphans(ctx)
	if err != nil {
		s.log.Warn("remove orphaned checkpoint objects", zap.Error(err))
		return
	}
	if n > 0 {
		s.log.Info("removed orphaned checkpoint objects", zap.Int("objects", n))
	}
}

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// cronLogger sends robfig/cron's log lines to zap.
type cronLogger struct{ log *zap.Logger }

func (l cronLogger) Info(msg string, kv ...any) {
	l.log.Debug("cron: "+msg, zap.Any("details", kv))
}

func (l cronLogger) Error(err error, msg string, kv ...any) {
	l.log.Error("cron: "+msg, zap.Error(err), zap.Any("details", kv))
}

// skipLogger counts and logs the cycles that SkipIfStillRunning skips.
type skipLogger struct {
	s      *Scheduler
	entity schema.Entity
	job    string
}

func (l skipLogger) Info(msg string, kv ...any) {
	if msg == "skip" {
		l.s.metrics.cyclesSkipped.WithLabelValues(string(l.entity)).Inc()
		l.s.log.Warn("cycle skipped: the previous run is still going; consider a longer schedule or more concurrency", zap.String("job", l.job))
	}
}

func (l skipLogger) Error(err error, msg string, kv ...any) {
	l.s.log.Error("cron: "+msg, zap.String("job", l.job), zap.Error(err))
}

package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/checkpoint"
	"github.com/tisync/tisync/sync/diff"
	"github.com/tisync/tisync/sync/publish"
	"github.com/tisync/tisync/sync/testinvite"
)

// EventPublisher publishes events and returns once JetStream has acknowledged every one of them.
// *publish.Publisher implements it.
type EventPublisher interface {
	Publish(ctx context.Context, events []schema.Event, progress func(acked int)) (publish.Stats, error)
}

// Leaser hands out per-task leases. *publish.Leaser implements it.
type Leaser interface {
	Acquire(ctx context.Context, organizationID, taskID string) (*publish.Lease, error)
}

// Deps are the components a Poller works with. Leaser may be nil for a single worker that needs no
// leases; Logger and Registerer may be nil.
type Deps struct {
	Client     *testinvite.Client
	Store      checkpoint.Store
	Publisher  EventPublisher
	Leaser     Leaser
	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Option changes how a Poller is built.
type Option func(*Poller)

// WithClock sets the clock that stamps scans; the default is time.Now.
func WithClock(now func() time.Time) Option { return func(p *Poller) { p.now = now } }

// Poller runs single polls: one entity of one task, from the first page to the stored checkpoint.
// It is safe for concurrent use on different tasks.
type Poller struct {
	client  *testinvite.Client
	store   checkpoint.Store
	pub     EventPublisher
	leases  Leaser
	cfg     Config
	org     string
	log     *zap.Logger
	metrics *metrics
	now     func() time.Time

	// afterPublish, when set, runs after the events were acknowledged and before the checkpoint is
	// stored; an error aborts the poll there. Tests use it to crash at the worst moment.
	afterPublish func() error
}

// NewPoller returns a Poller for the organization of deps.Client.
func NewPoller(cfg Config, deps Deps, opts ...Option) (*Poller, error) {
	if deps.Client == nil || deps.Store == nil || deps.Publisher == nil {
		return nil, errors.New("poll: a client, a checkpoint store and a publisher are required")
	}
	log := deps.Logger
	if log == nil {
		log = zap.NewNop()
	}
	p := &Poller{
		client:  deps.Client,
		store:   deps.Store,
		pub:     deps.Publisher,
		leases:  deps.Leaser,
		cfg:     cfg,
		org:     deps.Client.OrganizationID(),
		log:     log,
		metrics: newMetrics(deps.Registerer),
		now:     time.Now,
	}
	for _, opt := range opts {
		opt(p)
	}
	return p, nil
}

// OrganizationID returns the organization the Poller polls.
func (p *Poller) OrganizationID() string { return p.org }

// Request names one poll.
type Request struct {
	// TaskID is the task to poll. It is empty for EntityTask, whose checkpoint covers the
	// organization's whole task list.
	TaskID string
	Entity schema.Entity
	// DryRun scans and diffs, then hands the changes to OnChange instead of publishing them, and
	// stores nothing.
	DryRun bool
	// OnProgress, if set, is called after each page and each published chunk.
	OnProgress func(Progress)
	// OnChange receives each change of a dry run, in entity id order.
	OnChange func(diff.Change)
}

// Progress reports how far a poll has come.
type Progress struct {
	// Pages and Records count what the scan has read so far; Total is the number of records the
	// API announced, or 0 when it announced none.
	Pages, Records, Total int
	// Published counts the events acknowledged so far, out of Changes.
	Published, Changes int
}

// Summary describes a finished poll.
type Summary struct {
	Key  checkpoint.Key
	Kind diff.ScanKind
	// Stats describes the API scan.
	Stats testinvite.ScanStats
	// ScanErr is the error that cut the scan short and made it partial, if any.
	ScanErr error
	// Counts are the diff's counts.
	Counts diff.Counts
	// Missing counts the records that the scan did not see and that were looked up one by one;
	// FoundAgain, Gone and LookupErrors split them by outcome.
	Missing, FoundAgain, Gone, LookupErrors int
	// Guard is set when the mass-delete guard withheld the deletes.
	Guard *MassDeleteError
	// Published and Duplicates count the events JetStream acknowledged, and those it had already.
	Published, Duplicates int
	// Recovered counts the events of an interrupted earlier poll that this poll republished before
	// it scanned; RecoveredDuplicates those JetStream had stored already.
	Recovered, RecoveredDuplicates int
	// Stored reports whether a new checkpoint was stored.
	Stored bool
	// Duration is the poll's wall time.
	Duration time.Duration
}

// Changes returns the number of changes the poll found.
func (s Summary) Changes() int {
	return s.Counts.Snapshot + s.Counts.Created + s.Counts.Updated + s.Counts.Deleted
}

// Poll runs one poll: it scans every page, diffs the records against the checkpoint, confirms
// missing records with point lookups, applies the mass-delete guard, publishes the changes, waits
// for every acknowledgement and only then stores the new checkpoint. An error at any step before
// the store leaves the previous checkpoint in place, and a rerun produces the same event ids.
//
// It returns an error wrapping ErrSkipped when another process holds the task's lease, and a
// *checkpoint.CorruptError when the checkpoint cannot be read.
func (p *Poller) Poll(ctx context.Context, req Request) (sum Summary, err error) {
	start := p.now()
	sum.Key = checkpoint.Key{OrganizationID: p.org, TaskID: req.TaskID, Entity: req.Entity}
	if err := p.checkRequest(req); err != nil {
		return sum, err
	}
	log := p.log.With(zap.String("task", taskLabel(req.TaskID)), zap.String("entity", string(req.Entity)))
	defer func() {
		sum.Duration = p.now().Sub(start)
		p.record(req, sum, err)
	}()

	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()

	// NB: the lease is held from before the checkpoint is read until after it is stored, so that
	// no other worker can base a scan on the same checkpoint in between.
	lease, err := p.acquire(ctx, req)
	if err != nil {
		return sum, err
	}
	if lease != nil {
		defer func() {
			releaseCtx, releaseCancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer releaseCancel()
			if rerr := lease.Release(releaseCtx); rerr != nil {
				log.Warn("release task lease", zap.Error(rerr))
			}
		}()
		go func() {
			select {
			case <-lease.Done():
				cancel()
			case <-ctx.Done():
			}
		}()
	}

	snap, meta, err := p.store.Load(ctx, sum.Key)
	if err != nil {
		return sum, fmt.Errorf("load checkpoint: %w", err)
	}
	if meta.Pending != "" {
		// NB: an earlier poll stopped after Prepare: some or all of its events may have reached
		// subscribers, so this scan must be compared with the snapshot they were derived from.
		snap, meta, err = p.finishPending(ctx, req, snap, meta, &sum, log)
		if err != nil {
			return sum, err
		}
	}
	// The scan is stamped now rather than at the start of the poll, so that its events order
	// after those a recovery above republished.
	observed := p.now().UTC()
	opts := meta.ScanOptions(snap)
	opts.ObservedAt = observed
	scan, err := diff.NewScan(opts)
	if err != nil {
		return sum, err
	}

	// A scan that ends with an API error is partial: it updates what it saw and deletes nothing.
	// Errors that no retry will fix, and a canceled poll, end the poll instead.
	sum.Stats, sum.ScanErr = p.scan(ctx, req, scan, &sum)
	if sum.ScanErr != nil {
		if ctx.Err() != nil || fatalScanError(sum.ScanErr) || sum.Stats.Pages == 0 {
			if lease != nil && lease.Err() != nil && !errors.Is(lease.Err(), context.Canceled) {
				return sum, lease.Err()
			}
			return sum, fmt.Errorf("scan: %w", sum.ScanErr)
		}
		log.Warn("scan ended early; treating it as partial: no deletes this time", zap.Int("pages", sum.Stats.Pages), zap.Error(sum.ScanErr))
	}
	kind := diff.Partial
	if sum.ScanErr == nil && sum.Stats.Exhaustive() {
		kind = diff.Complete
	} else if sum.ScanErr == nil {
		log.Info("scan pages disagreed (records added or removed during the scan); treating it as partial: no deletes this time",
			zap.Int("first_total", sum.Stats.FirstTotals.Items), zap.Int("last_total", sum.Stats.LastTotals.Items),
			zap.Int("records", sum.Stats.Records))
	}
	sum.Kind = kind

	var gone []string
	if kind == diff.Complete {
		previous := 0
		if snap != nil {
			previous = snap.Len()
		}
		gone, err = p.confirmMissing(ctx, req, scan, previous, &sum, log)
		if err != nil {
			return sum, err
		}
	}

	res, err := scan.Finish(kind, gone)
	if err != nil {
		return sum, fmt.Errorf("finish scan: %w", err)
	}
	sum.Counts = res.Counts

	if req.DryRun {
		if req.OnChange != nil {
			for c := range res.All() {
				req.OnChange(c)
			}
		}
		return sum, nil
	}

	if res.Len() > 0 {
		// NB: the next snapshot is stored as pending before anything is published, with the
		// high-water marks raised. After a crash in the middle, the next poll then finds which
		// events may have gone out, and no revision is handed out twice.
		meta, err = p.store.Prepare(ctx, meta, res.Next)
		if err != nil {
			return sum, fmt.Errorf("prepare checkpoint: %w", err)
		}
		if err := p.publish(ctx, req, res, &sum); err != nil {
			return sum, err
		}
	}
	if p.afterPublish != nil {
		if err := p.afterPublish(); err != nil {
			return sum, err
		}
	}

	// Invariant: the checkpoint advances only after JetStream acknowledged every event above.
	if lease != nil {
		if err := lease.Check(); err != nil {
			return sum, err
		}
	}
	switch {
	case res.Len() > 0:
		if _, err = p.store.Commit(ctx, meta, res.Next); err != nil {
			return sum, fmt.Errorf("commit checkpoint: %w", err)
		}
		sum.Stored = true
	case res.Modified():
		if _, err = p.store.Save(ctx, meta, res.Next); err != nil {
			return sum, fmt.Errorf("save checkpoint: %w", err)
		}
		sum.Stored = true
	case kind == diff.Complete:
		if _, err = p.store.MarkScanned(ctx, meta, observed); err != nil {
			return sum, fmt.Errorf("mark checkpoint scanned: %w", err)
		}
	}
	return sum, nil
}

// finishPending completes a poll that stopped between storing its pending snapshot and committing
// it. It republishes the changes from the current snapshot to the pending one. They get the same
// ids as the first time, because both scans start from the same snapshot, so JetStream drops those
// it stored already. Then it commits the pending snapshot and returns it as the base of this poll.
// A dry run only returns the pending snapshot.
func (p *Poller) finishPending(ctx context.Context, req Request, snap *diff.Snapshot, meta checkpoint.Meta, sum *Summary, log *zap.Logger) (*diff.Snapshot, checkpoint.Meta, error) {
	pending, err := p.store.LoadPending(ctx, meta)
	if err != nil {
		return nil, meta, fmt.Errorf("load pending checkpoint: %w", err)
	}
	if req.DryRun {
		return pending, meta, nil
	}
	opts := meta.ScanOptions(snap)
	opts.ObservedAt = p.now().UTC()
	scan, err := diff.NewScan(opts)
	if err != nil {
		return nil, meta, err
	}
	for r := range pending.Records() {
		if err := scan.Add(r.ID, r.Data); err != nil {
			return nil, meta, fmt.Errorf("replay pending checkpoint: %w", err)
		}
	}
	res, err := scan.Finish(diff.Complete, scan.Missing())
	if err != nil {
		return nil, meta, fmt.Errorf("replay pending checkpoint: %w", err)
	}
	var replay Summary
	if res.Len() > 0 {
		// NB: the republished events carry versions of this moment, above those of the first
		// attempt: the marks must cover them, so that the scan that follows orders after them.
		meta, err = p.store.Reserve(ctx, meta, res.HighWater())
		if err != nil {
			return nil, meta, fmt.Errorf("reserve versions of the interrupted poll: %w", err)
		}
		if err := p.publish(ctx, req, res, &replay); err != nil {
			return nil, meta, fmt.Errorf("republish the interrupted poll: %w", err)
		}
	}
	meta, err = p.store.Commit(ctx, meta, pending)
	if err != nil {
		return nil, meta, fmt.Errorf("commit the interrupted poll: %w", err)
	}
	sum.Recovered, sum.RecoveredDuplicates = replay.Published, replay.Duplicates
	log.Warn("finished an interrupted poll before scanning: republished its changes and committed its checkpoint",
		zap.Int("events", replay.Published), zap.Int("already_stored", replay.Duplicates))
	return pending, meta, nil
}

func (p *Poller) checkRequest(req Request) error {
	if !req.Entity.Valid() {
		return fmt.Errorf("poll: invalid entity %q: expected task, ticket or test_session", req.Entity)
	}
	if req.Entity == schema.EntityTask && req.TaskID != "" {
		return errors.New("poll: tasks are polled as the organization's task list: leave the task id empty for entity task")
	}
	if req.Entity != schema.EntityTask && !schema.ValidID(req.TaskID) {
		return fmt.Errorf("poll: invalid task id %q: expected a TestInvite task id of ASCII letters and digits", req.TaskID)
	}
	return nil
}

func (p *Poller) acquire(ctx context.Context, req Request) (*publish.Lease, error) {
	if req.DryRun || p.leases == nil {
		return nil, nil
	}
	lease, err := p.leases.Acquire(ctx, p.org, req.TaskID)
	if errors.Is(err, publish.ErrLeaseHeld) {
		return nil, fmt.Errorf("%w: %v", ErrSkipped, err)
	}
	if err != nil {
		return nil, err
	}
	return lease, nil
}

// fatalScanError reports whether a scan error ends the poll instead of making the scan partial:
// credentials, permissions, a task that does not exist, or a request the API rejects.
func fatalScanError(err error) bool {
	return errors.Is(err, testinvite.ErrUnauthorized) || errors.Is(err, testinvite.ErrForbidden) ||
		errors.Is(err, testinvite.ErrNotFound) || errors.Is(err, testinvite.ErrBadRequest) ||
		errors.Is(err, testinvite.ErrInvalidID)
}

// scan reads every page of the request's list into the diff scan.
func (p *Poller) scan(ctx context.Context, req Request, scan *diff.Scan, sum *Summary) (testinvite.ScanStats, error) {
	invalidLogged := 0
	add := func(id string, raw []byte) error {
		err := scan.Add(id, raw)
		var recErr *diff.RecordError
		if errors.As(err, &recErr) {
			if invalidLogged < 5 {
				p.log.Warn("invalid record skipped; the previous copy, if any, is kept",
					zap.String("task", taskLabel(req.TaskID)), zap.String("entity", string(req.Entity)), zap.Error(err))
			}
			invalidLogged++
			return nil
		}
		return err
	}
	progress := func(pages, records, total int) {
		if req.OnProgress != nil {
			req.OnProgress(Progress{Pages: pages, Records: records, Total: total})
		}
	}

	switch req.Entity {
	case schema.EntityTask:
		keep := p.taskScope()
		if f := p.cfg.Tasks; f.Filtered() {
			return scanRecords(ctx, p.client.FilterTasks(testinvite.TaskFilter{Folder: f.Folder, Labels: f.Labels, Title: f.Title, RawOnly: true}), keep, add, progress)
		}
		return scanRecords(ctx, p.client.ListTasks(testinvite.TaskQuery{RawOnly: true}), keep, add, progress)
	case schema.EntityTicket:
		return scanRecords(ctx, p.client.ListCandidates(req.TaskID, testinvite.CandidateQuery{RawOnly: true}), nil, add, progress)
	default:
		return scanRecords(ctx, p.client.ListTestInstances(req.TaskID, testinvite.TestInstanceQuery{RawOnly: true}), nil, add, progress)
	}
}

// taskScope returns the filter of the task list scan: the configured task ids, or nil for every
// task.
func (p *Poller) taskScope() func(id string) bool {
	if len(p.cfg.Tasks.IDs) == 0 {
		return nil
	}
	ids := make(map[string]bool, len(p.cfg.Tasks.IDs))
	for _, id := range p.cfg.Tasks.IDs {
		ids[id] = true
	}
	return func(id string) bool { return ids[id] }
}

// scanRecords feeds every record of every page to add, skipping those keep rejects.
func scanRecords[T testinvite.Record](ctx context.Context, s *testinvite.Scanner[T], keep func(string) bool,
	add func(id string, raw []byte) error, progress func(pages, records, total int)) (testinvite.ScanStats, error) {
	records := 0
	for {
		page, err := s.Next(ctx)
		if errors.Is(err, io.EOF) {
			return s.Stats(), nil
		}
		if err != nil {
			return s.Stats(), err
		}
		for _, r := range page.Records {
			id := r.RecordID()
			if keep != nil && !keep(id) {
				continue
			}
			if err := add(id, r.RawJSON()); err != nil {
				return s.Stats(), err
			}
			records++
		}
		stats := s.Stats()
		progress(stats.Pages, records, stats.FirstTotals.Items)
	}
}

// confirmMissing looks up each record the complete scan did not see and returns those that are
// gone. It applies the mass-delete guard before the lookups, so that an API returning empty
// lists costs no lookups, and again on the confirmed deletes.
func (p *Poller) confirmMissing(ctx context.Context, req Request, scan *diff.Scan, previous int, sum *Summary, log *zap.Logger) ([]string, error) {
	missing := scan.Missing()
	sum.Missing = len(missing)
	if len(missing) == 0 {
		return nil, nil
	}
	if guard := p.guard(len(missing), previous); guard != nil {
		sum.Guard = guard
		p.tripGuard(req, guard, log)
		return nil, nil
	}

	type outcome struct {
		id  string
		raw json.RawMessage
		err error
	}
	results := make([]outcome, len(missing))
	sem := make(chan struct{}, p.cfg.LookupConcurrency)
	var wg sync.WaitGroup
	for i, id := range missing {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			raw, err := p.lookup(ctx, req, id)
			results[i] = outcome{id: id, raw: raw, err: err}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	var gone []string
	for _, r := range results {
		switch {
		case r.err == nil:
			// Paging skipped the record, for example because another record was inserted before
			// it during the scan: it is seen after all.
			if err := scan.Add(r.id, r.raw); err != nil {
				var recErr *diff.RecordError
				if !errors.As(err, &recErr) {
					return nil, err
				}
			}
			sum.FoundAgain++
			p.metrics.lookups.WithLabelValues(string(req.Entity), "found").Inc()
		case errors.Is(r.err, testinvite.ErrNotFound):
			gone = append(gone, r.id)
			p.metrics.lookups.WithLabelValues(string(req.Entity), "gone").Inc()
		default:
			// An unconfirmed record is kept as it was; the next complete scan tries again.
			sum.LookupErrors++
			p.metrics.lookups.WithLabelValues(string(req.Entity), "error").Inc()
			if sum.LookupErrors <= 3 {
				log.Warn("lookup of a missing record failed; keeping it", zap.String("id", r.id), zap.Error(r.err))
			}
		}
	}
	sum.Gone = len(gone)
	if guard := p.guard(len(gone), previous); guard != nil {
		sum.Guard = guard
		p.tripGuard(req, guard, log)
		return nil, nil
	}
	return gone, nil
}

// guard returns a *MassDeleteError when deleting n of previous records passes the configured
// limits, or nil.
func (p *Poller) guard(n, previous int) *MassDeleteError {
	g := p.cfg.MassDelete
	if n <= g.MinDeletes {
		return nil
	}
	if previous > 0 && float64(n) <= g.MaxShare*float64(previous) {
		return nil
	}
	return &MassDeleteError{Missing: n, Previous: previous, MaxShare: g.MaxShare}
}

func (p *Poller) tripGuard(req Request, guard *MassDeleteError, log *zap.Logger) {
	p.metrics.guardTrips.WithLabelValues(string(req.Entity)).Inc()
	log.Error("mass-delete guard tripped: no deletes emitted, the missing records are kept; if the deletions are real, raise poll.mass_delete.max_share or poll.mass_delete.min_deletes for one poll",
		zap.Int("missing", guard.Missing), zap.Int("previous_records", guard.Previous), zap.Float64("max_share", guard.MaxShare))
}

// lookup fetches one record by id; an error wrapping testinvite.ErrNotFound means it is gone.
func (p *Poller) lookup(ctx context.Context, req Request, id string) (json.RawMessage, error) {
	switch req.Entity {
	case schema.EntityTask:
		t, err := p.client.GetTask(ctx, id)
		return t.Raw, err
	case schema.EntityTicket:
		c, err := p.client.GetCandidate(ctx, req.TaskID, id)
		return c.Raw, err
	default:
		ti, err := p.client.GetTestInstance(ctx, req.TaskID, id)
		return ti.Raw, err
	}
}

// publish publishes the result's changes in chunks of cfg.PublishChunk events.
func (p *Poller) publish(ctx context.Context, req Request, res *diff.Result, sum *Summary) error {
	total := res.Len()
	chunk := make([]schema.Event, 0, min(total, p.cfg.PublishChunk))
	for from := 0; from < total; from += p.cfg.PublishChunk {
		to := min(from+p.cfg.PublishChunk, total)
		chunk = chunk[:0]
		for i := from; i < to; i++ {
			chunk = append(chunk, Event(res.Change(i)))
		}
		done := sum.Published
		stats, err := p.pub.Publish(ctx, chunk, func(acked int) {
			if req.OnProgress != nil {
				req.OnProgress(Progress{Pages: sum.Stats.Pages, Records: sum.Stats.Records, Total: sum.Stats.FirstTotals.Items, Published: done + acked, Changes: total})
			}
		})
		sum.Published += stats.Published
		sum.Duplicates += stats.Duplicates
		if err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		for i := range chunk {
			p.metrics.changes.WithLabelValues(string(chunk[i].Data.Entity), string(chunk[i].Data.Op)).Inc()
		}
	}
	return nil
}

// Event returns the CloudEvents envelope of a change.
func Event(c diff.Change) schema.Event {
	return schema.Event{
		SpecVersion:     schema.SpecVersion,
		ID:              c.EventID,
		Source:          schema.Source(c.OrganizationID, c.TaskID),
		Type:            schema.EventType(c.Entity, c.Op),
		Subject:         c.EntityID,
		Time:            c.ObservedAt,
		DataContentType: schema.DataContentType,
		DataSchema:      schema.DataSchemaV1,
		Data:            c.Data(),
	}
}

// record updates the metrics and writes the summary line of a finished poll.
func (p *Poller) record(req Request, sum Summary, err error) {
	entity := string(req.Entity)
	task := taskLabel(req.TaskID)
	log := p.log.With(zap.String("task", task), zap.String("entity", entity))
	result := "ok"
	switch {
	case errors.Is(err, ErrSkipped):
		result = "skipped"
	case err != nil:
		result = "error"
	case sum.Kind == diff.Partial:
		result = "partial"
	}
	if req.DryRun {
		return
	}
	p.metrics.polls.WithLabelValues(entity, result).Inc()
	p.metrics.pages.WithLabelValues(entity).Add(float64(sum.Stats.Pages))
	p.metrics.records.WithLabelValues(entity).Add(float64(sum.Stats.Records))
	p.metrics.invalid.WithLabelValues(entity).Add(float64(sum.Counts.Invalid))
	if result == "skipped" {
		log.Debug("poll skipped", zap.Error(err))
		return
	}
	p.metrics.duration.WithLabelValues(entity).Observe(sum.Duration.Seconds())
	if err != nil {
		log.Error("poll failed; the checkpoint is unchanged and the next poll redoes the work",
			zap.Duration("duration", sum.Duration), zap.Int("pages", sum.Stats.Pages), zap.Error(err))
		return
	}
	now := p.now()
	p.metrics.lastSuccess.WithLabelValues(task, entity).Set(float64(now.Unix()))
	if sum.Kind == diff.Complete {
		p.metrics.checkpointAge.WithLabelValues(task, entity).Set(sum.Duration.Seconds())
	}
	log.Info("poll finished",
		zap.String("scan", sum.Kind.String()),
		zap.Int("pages", sum.Stats.Pages),
		zap.Int("records", sum.Stats.Records),
		zap.Int("snapshot", sum.Counts.Snapshot),
		zap.Int("created", sum.Counts.Created),
		zap.Int("updated", sum.Counts.Updated),
		zap.Int("deleted", sum.Counts.Deleted),
		zap.Int("found_again", sum.FoundAgain),
		zap.Int("published", sum.Published),
		zap.Int("duplicates", sum.Duplicates),
		zap.Int("recovered", sum.Recovered),
		zap.Int("recovered_duplicates", sum.RecoveredDuplicates),
		zap.Bool("guard_tripped", sum.Guard != nil),
		zap.Duration("duration", sum.Duration))
}

// taskLabel names a task in logs and metrics; the organization's task list has no task id.
func taskLabel(taskID string) string {
	if taskID == "" {
		return "_tasks"
	}
	return taskID
}

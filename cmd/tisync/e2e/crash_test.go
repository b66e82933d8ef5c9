package e2e

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// killMode names where a kill is aimed.
type killMode string

const (
	// killRandom kills after a random delay.
	killRandom killMode = "random"
	// killScan kills while the simulator serves page 2 or later of a list.
	killScan killMode = "scan"
	// killPublish kills after a random number of events of a poll reached the stream.
	killPublish killMode = "publish"
	// killCheckpoint kills while a poll stores its next checkpoint as a pending object, before it
	// publishes anything.
	killCheckpoint killMode = "checkpoint"
	// killPrepared kills right after a poll marked its next checkpoint pending: while it publishes,
	// before it commits.
	killPrepared killMode = "prepared"
	// killInsert kills while the proxy holds ClickHouse's reply to an insert of the sink: the header
	// block (before the rows are sent) or the end of the insert (after the rows are written).
	killInsert killMode = "insert"
)

// Phases of the pipeline that a kill can interrupt.
const (
	phaseScan    = "scan"
	phasePublish = "between publish and checkpoint"
	phaseInsert  = "insert"
)

// killRecord describes one kill.
type killRecord struct {
	mode    killMode
	trigger string
	at      time.Time
	// phases were in progress at the kill, as the simulator, the stream and the proxy saw them.
	phases []string
	// uncommitted are the checkpoints with published events and no stored checkpoint yet.
	uncommitted []string
	// tail is the last lines the run logged.
	tail []string
	err  error
}

// killer kills the daemon when an armed trigger fires.
type killer struct {
	s     *stack
	proxy *insertProxy
	watch *streamWatch
	armed atomic.Bool
	fired chan killRecord
}

// fire kills the daemon once per arming and reports what was in progress at that moment.
func (k *killer) fire(mode killMode, trigger string) {
	if !k.armed.CompareAndSwap(true, false) {
		return
	}
	rec := killRecord{mode: mode, trigger: trigger, at: time.Now()}
	if k.s.sim.scanning.Load() > 0 {
		rec.phases = append(rec.phases, phaseScan)
	}
	if u := k.watch.publishedUncommitted(); len(u) > 0 || k.watch.preparedNow() {
		rec.phases = append(rec.phases, phasePublish)
		rec.uncommitted = u
	}
	if k.proxy.inserting() {
		rec.phases = append(rec.phases, phaseInsert)
	}
	rec.tail = k.s.d.tail(3)
	rec.err = k.s.d.sigkill()
	k.fired <- rec
}

// arm sets the trigger of one kill.
func (k *killer) arm(mode killMode, rng *rand.Rand) {
	k.armed.Store(true)
	switch mode {
	case killScan:
		hook := func(r *http.Request) { k.fire(mode, "GET "+r.URL.Path+"?"+r.URL.RawQuery) }
		k.s.sim.pageHook.Store(&hook)
	case killPublish:
		target := int64(1 + rng.IntN(20))
		var seen atomic.Int64
		hook := func(kind, subject string) {
			if kind == "event" && seen.Add(1) == target {
				k.fire(mode, fmt.Sprintf("event %d after arming, on %s", target, subject))
			}
		}
		k.watch.hook.Store(&hook)
	case killPrepared:
		hook := func(kind, subject string) {
			if kind == "prepared" {
				k.fire(mode, "pending checkpoint metadata on "+subject)
			}
		}
		k.watch.hook.Store(&hook)
	case killCheckpoint:
		hook := func(kind, subject string) {
			if kind == "checkpoint" {
				k.fire(mode, "checkpoint object chunk on "+subject)
			}
		}
		k.watch.hook.Store(&hook)
	case killInsert:
		want := 1 + rng.IntN(2)
		hook := func(r insertReply) {
			if r.n == want {
				k.fire(mode, fmt.Sprintf("reply %d of ClickHouse to INSERT INTO %s", r.n, r.table))
			}
		}
		k.proxy.hook.Store(&hook)
	case killRandom:
		delay := 200*time.Millisecond + rand.N(2500*time.Millisecond)
		time.AfterFunc(delay, func() { k.fire(mode, "after "+delay.Round(time.Millisecond).String()) })
	}
}

// disarm removes every trigger.
func (k *killer) disarm() {
	k.armed.Store(false)
	k.s.sim.pageHook.Store(nil)
	k.watch.hook.Store(nil)
	k.proxy.hook.Store(nil)
}

// runCounters keeps, for each run of the daemon, the largest value seen of some counters.
type runCounters struct {
	mu     sync.Mutex
	values map[int]map[string]float64
}

// scrape samples the counters of the current run until ctx ends.
func (c *runCounters) scrape(ctx context.Context, d *daemon, names ...string) {
	for ctx.Err() == nil {
		run := d.run()
		reqCtx, cancel := context.WithTimeout(ctx, time.Second)
		m, err := d.metrics(reqCtx)
		cancel()
		// A scrape that overlapped a restart may have reached either run.
		if err == nil && d.run() == run {
			c.mu.Lock()
			if c.values[run] == nil {
				c.values[run] = map[string]float64{}
			}
			for _, name := range names {
				c.values[run][name] = max(c.values[run][name], m.sum(name))
			}
			c.mu.Unlock()
		}
		select {
		case <-ctx.Done():
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// total returns the sum over runs of a counter's largest value.
func (c *runCounters) total(name string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	sum := 0.0
	for _, v := range c.values {
		sum += v[name]
	}
	return sum
}

// get returns the largest value of a counter in one run.
func (c *runCounters) get(run int, name string) float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.values[run][name]
}

// TestCrashRecovery kills the daemon with SIGKILL twelve times while the organization keeps
// changing, restarting it after each kill. Triggers aim kills at a scan, at a poll between its
// pending checkpoint and its commit (while it publishes), and at a ClickHouse insert, besides kills
// after random delays. The final tables must equal the truth with no duplicate and no false delete,
// each phase must have been hit, and a later run must have finished an interrupted poll.
func TestCrashRecovery(t *testing.T) {
	t.Parallel()
	var proxy *insertProxy
	s := newStack(t, stackOptions{
		sim:      testinvitesim.Options{Seed: 23, Tasks: 4, CandidatesPerTask: 400},
		pageSize: 25,
		clickhouseAddr: func(server, database string) string {
			proxy = newInsertProxy(t, server, database, 20*time.Millisecond, "tasks", "tickets", "test_sessions", "change_events")
			return proxy.addr
		},
		settings: map[string]any{
			// A killed daemon leaves its task leases behind, and they block the next run's polls
			// until they expire: the test keeps them short.
			"publish": map[string]any{"lease": map[string]any{"ttl": "3s"}},
			// NOTE: a kill while the sink checks migrations at start-up leaves the migration lock
			// taken, and the next run's sink waits until its lease ends (10m by default), as
			// TestKillDuringMigrationCheck shows. The short lease keeps random kills from stalling
			// this test.
			"clickhouse": map[string]any{"migration_lock_lease": "5s"},
		},
	})
	s.d.start()
	nc, js := s.connect()
	k := &killer{s: s, proxy: proxy, watch: watchStream(t, nc), fired: make(chan killRecord, 1)}

	initial := readTruth(t, s.sim)
	s.wh.waitCaughtUp(t, initial.records, 90*time.Second)

	counters := &runCounters{values: map[int]map[string]float64{}}
	scrapeCtx, stopScrape := context.WithCancel(context.Background())
	scraped := make(chan struct{})
	go func() {
		defer close(scraped)
		counters.scrape(scrapeCtx, s.d, "tisync_publish_duplicates_total", "tisync_sink_redeliveries_total")
	}()
	defer func() { stopScrape(); <-scraped }()

	s.sim.SetChurnRate(25)
	plan := []killMode{
		killRandom, killScan, killCheckpoint, killInsert,
		killRandom, killPublish, killInsert, killPrepared,
		killRandom, killCheckpoint, killInsert, killPrepared,
	}
	rng := rand.New(rand.NewPCG(23, 0))
	var kills []killRecord
	for i, mode := range plan {
		if mode == killPrepared {
			// A burst of changes makes the next polls publish many events, so that the kill lands
			// while they are being published rather than after the quick commit that follows.
			s.sim.Churn(1500)
		}
		k.arm(mode, rng)
		var rec killRecord
		select {
		case rec = <-k.fired:
		case <-time.After(30 * time.Second):
			k.fire(mode, "the trigger did not fire within 30s")
			rec = <-k.fired
		}
		k.disarm()
		if rec.err != nil {
			t.Fatalf("kill %d: %v", i+1, rec.err)
		}
		kills = append(kills, rec)
		k.watch.forget()
		s.d.start()
	}

	final := s.settle(2 * time.Minute)
	stopScrape()
	<-scraped

	assertMatchesTruth(t, s.wh, final)
	dup := assertNoDuplicates(t, s.wh)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	changes, err := s.wh.changes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	assertTransitions(t, changes, []state{initial.records, final.records})
	assertNoFalseDeletes(t, changes, final)
	assertNoDeadLetters(t, js)

	// Report every kill with what it interrupted and what the next run saw.
	hits := map[string]int{}
	var report strings.Builder
	for i, rec := range kills {
		for _, p := range rec.phases {
			hits[p]++
		}
		next := i + 2 // run numbers start at 1 and the first kill ends run 1
		fmt.Fprintf(&report, "kill %d (%s): %s; in progress: %s; next run: %v duplicates published, %v redeliveries\n",
			i+1, rec.mode, rec.trigger, orNone(rec.phases), counters.get(next, "tisync_publish_duplicates_total"), counters.get(next, "tisync_sink_redeliveries_total"))
		for _, line := range rec.tail {
			fmt.Fprintf(&report, "    %s\n", trimLine(line, 220))
		}
	}
	t.Logf("kills:\n%s", report.String())

	for _, p := range []string{phaseScan, phasePublish, phaseInsert} {
		if hits[p] == 0 {
			t.Errorf("no kill landed in phase %q", p)
		}
	}
	duplicates := counters.total("tisync_publish_duplicates_total")
	for _, l := range s.d.logs(func(l logLine) bool { return l.msg == "poll finished" }) {
		duplicates = max(duplicates, l.num("duplicates"), l.num("recovered_duplicates"))
	}
	recoveries := s.d.logs(func(l logLine) bool {
		return l.msg == "finished an interrupted poll before scanning: republished its changes and committed its checkpoint"
	})
	if len(recoveries) == 0 {
		t.Error("no run finished an interrupted poll: no kill landed between a checkpoint's prepare and its commit")
	}
	if counters.total("tisync_sink_redeliveries_total") == 0 {
		t.Error("the sink never received a redelivered message: no kill interrupted it with messages unacknowledged")
	}
	rebuilt := len(s.d.logs(func(l logLine) bool { return strings.Contains(l.msg, "will rebuild") }))
	t.Logf("%d change events (%d rows before OPTIMIZE); duplicates published after kills: %v; redeliveries: %v; "+
		"stream states the embedded NATS server rebuilt from its blocks at start-up: %d; %d error lines",
		dup.idsBefore, dup.rowsBefore, counters.total("tisync_publish_duplicates_total"), counters.total("tisync_sink_redeliveries_total"),
		rebuilt, len(s.d.errorLines()))
}

// assertNoDeadLetters checks that the dead-letter stream, if the sink created it, is empty.
func assertNoDeadLetters(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	stream, err := js.Stream(ctx, "TESTINVITE_DLQ")
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		t.Errorf("%d events were dead-lettered", info.State.Msgs)
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "nothing observed"
	}
	return strings.Join(slices.Clone(s), ", ")
}

func trimLine(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// Names that the daemon uses by default.
const (
	streamName   = "TESTINVITE"
	consumerName = "tisync-clickhouse"
)

// stack is one end-to-end set-up: a simulator, a fresh ClickHouse database, and a daemon that polls
// the one and writes into the other.
type stack struct {
	t   testing.TB
	sim *simServer
	wh  *warehouse
	d   *daemon

	nc *nats.Conn
	js jetstream.JetStream
}

// stackOptions configure newStack.
type stackOptions struct {
	sim testinvitesim.Options
	// pageSize is testinvite.page_size.
	pageSize int
	// schedule is the cron schedule of all three entities. Default "@every 2s".
	schedule string
	// clickhouseAddr replaces the test server's address in clickhouse.addresses, for a proxy; it
	// receives the server's address and the test's database.
	clickhouseAddr func(server, database string) string
	// defaults keeps tisync's defaults for retries, timeouts and the sink, instead of the shorter
	// waits of fastSettings.
	defaults bool
	// settings are merged over the others.
	settings map[string]any
	// env adds variables to the daemon's environment.
	env []string
}

// newStack starts the simulator and prepares the daemon; it does not start the daemon.
func newStack(t testing.TB, o stackOptions) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test of the tisync daemon: skipped with -short")
	}
	wh, chCfg := newWarehouse(t)
	sim := startSim(t, o.sim)
	if o.schedule == "" {
		o.schedule = "@every 2s"
	}
	if o.pageSize == 0 {
		o.pageSize = 50
	}
	addr := wh.addr
	if o.clickhouseAddr != nil {
		addr = o.clickhouseAddr(addr, chCfg.Database)
	}
	settings := map[string]any{
		"testinvite": map[string]any{
			"base_url":        sim.URL,
			"organization_id": sim.OrganizationID(),
			"page_size":       o.pageSize,
		},
		"poll": map[string]any{
			"schedules": map[string]any{"task": o.schedule, "ticket": o.schedule, "test_session": o.schedule},
		},
		"clickhouse": map[string]any{
			"addresses": []string{addr},
			"database":  chCfg.Database,
		},
	}
	if !o.defaults {
		merge(settings, fastSettings())
	}
	merge(settings, o.settings)
	env := append(sim.daemonEnv(), o.env...)
	return &stack{t: t, sim: sim, wh: wh, d: newDaemon(t, settings, env...)}
}

// fastSettings shortens tisync's waits so that tests finish quickly: retries, timeouts, the sink's
// batch wait, ack wait and in-progress interval, and no client-side rate limit or jitter.
func fastSettings() map[string]any {
	return map[string]any{
		"testinvite": map[string]any{
			"request_timeout": "5s",
			"rate_limit":      map[string]any{"rps": 0},
			"retry": map[string]any{
				"max_attempts":    6,
				"initial_backoff": "20ms",
				"max_backoff":     "500ms",
				"max_elapsed":     "30s",
			},
		},
		"poll": map[string]any{
			"jitter":          "0s",
			"timeout":         "2m",
			"freshness_bound": "0s",
		},
		"sink": map[string]any{
			"batch_wait":           "200ms",
			"back_off":             []string{"1s", "2s"},
			"in_progress_interval": "300ms",
			"pending_interval":     "1s",
			"retry":                map[string]any{"initial_backoff": "100ms", "max_backoff": "1s"},
		},
		"clickhouse": map[string]any{
			"dial_timeout": "2s",
			"read_timeout": "30s",
		},
	}
}

// connect opens a NATS connection to the daemon's embedded server that reconnects across restarts.
func (s *stack) connect() (*nats.Conn, jetstream.JetStream) {
	s.t.Helper()
	if s.nc != nil {
		return s.nc, s.js
	}
	nc, err := nats.Connect("nats://"+s.d.natsAddr,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectBufSize(-1),
	)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	s.nc, s.js = nc, js
	return nc, js
}

// consumerInfo returns the sink's durable consumer.
func (s *stack) consumerInfo(ctx context.Context) (*jetstream.ConsumerInfo, error) {
	_, js := s.connect()
	cons, err := js.Consumer(ctx, streamName, consumerName)
	if err != nil {
		return nil, err
	}
	return cons.Info(ctx)
}

// waitDrained waits until the sink's consumer has no message left to deliver and none waiting for
// an acknowledgement.
func (s *stack) waitDrained(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		info, err := s.consumerInfo(ctx)
		cancel()
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 {
			return
		}
		if err != nil {
			last = err.Error()
		} else {
			last = fmt.Sprintf("%d pending, %d waiting for an ack, %d redelivered", info.NumPending, info.NumAckPending, info.NumRedelivered)
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("the sink did not drain the stream within %s: %s", timeout, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCompleteScans waits until the daemon has finished a complete scan of the task list and of
// the tickets and test sessions of every task that started after since.
func (s *stack) waitCompleteScans(since time.Time, tasks []string, timeout time.Duration) {
	s.t.Helper()
	want := map[string]bool{"_tasks/task": true}
	for _, task := range tasks {
		want[task+"/"+string(schema.EntityTicket)] = true
		want[task+"/"+string(schema.EntityTestSession)] = true
	}
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range s.d.logs(isCompleteScanSince(since)) {
			delete(want, l.str("task")+"/"+l.str("entity"))
		}
		if len(want) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var left []string
			for k := range want {
				left = append(left, k)
			}
			s.t.Fatalf("no complete scan started after %s within %s for %s", since.Format(time.RFC3339Nano), timeout, strings.Join(left, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// isCompleteScanSince matches the summary lines of polls that scanned every page without error and
// started after since.
func isCompleteScanSince(since time.Time) func(logLine) bool {
	return func(l logLine) bool {
		if l.msg != "poll finished" || l.str("scan") != "complete" {
			return false
		}
		// The log's timestamps have millisecond precision: allow for the rounding.
		started := l.time.Add(-l.duration("duration")).Add(-time.Millisecond)
		return started.After(since)
	}
}

// settle stops the churn and the faults and waits until the daemon has scanned everything once
// more and the sink has written every event. It returns the truth that the tables must equal.
func (s *stack) settle(timeout time.Duration) truth {
	s.t.Helper()
	s.sim.Freeze()
	s.sim.SetChurnRate(0)
	if err := s.sim.SetFaults(testinvitesim.Faults{}); err != nil {
		s.t.Fatal(err)
	}
	// A request that drew a drift fault just before the freeze may still change the state: settle
	// again until the state stays the same through a whole round of complete scans.
	for attempt := 0; ; attempt++ {
		since := time.Now()
		before := readTruth(s.t, s.sim)
		s.waitCompleteScans(since, before.tasks, timeout)
		after := readTruth(s.t, s.sim)
		if n, _ := stateDiff(after.records, before.records, 0); n == 0 {
			s.waitDrained(timeout)
			return after
		}
		if attempt == 3 {
			s.t.Fatal("the simulator's state keeps changing after churn and faults were stopped")
		}
	}
}

// waitCycles waits until the daemon has finished n more cycles of both tickets and test sessions.
func (s *stack) waitCycles(n int, timeout time.Duration) {
	s.t.Helper()
	from := s.d.lineCount()
	deadline := time.Now().Add(timeout)
	for {
		done := map[string]int{}
		for _, l := range s.d.logsFrom(from, func(l logLine) bool { return l.msg == "cycle finished" }) {
			done[l.str("entity")]++
		}
		if done[string(schema.EntityTicket)] >= n && done[string(schema.EntityTestSession)] >= n {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%d cycles did not finish within %s: %v", n, timeout, done)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package e2e

import (
	"context"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// memoryLimit is the Go memory limit of the daemon in BenchmarkMemoryMillion.
var memoryLimit = flag.String("e2e.gomemlimit", "", "GOMEMLIMIT of the daemon in BenchmarkMemoryMillion, such as 1500MiB; empty leaves it unset")

// The benchmarks measure the whole daemon once per run: run them with -benchtime 1x. Each reports
// its figures with b.ReportMetric and logs the details; BENCHMARKS.md records them.

// BenchmarkChangeLatency measures the time from a change in the simulator to its row in the
// tickets table, read through FINAL, with tickets and test sessions polled every 10 seconds. It
// edits the group of 120 different candidates, one every 0.4 to 1.2 seconds, with a unique group
// name, and polls ClickHouse every 100 ms for the rows that carry one.
func BenchmarkChangeLatency(b *testing.B) {
	const changes = 120
	s := newStack(b, stackOptions{
		sim:      testinvitesim.Options{Seed: 61, Tasks: 5, CandidatesPerTask: 1000},
		pageSize: 500,
		schedule: "@every 10s",
		defaults: true,
		settings: map[string]any{
			// As deploy/local/demo.yaml, with a 10-second interval for tickets and test sessions.
			"testinvite": map[string]any{"rate_limit": map[string]any{"rps": 200, "burst": 50}},
			"poll":       map[string]any{"jitter": "1s", "schedules": map[string]any{"task": "@every 1m"}},
		},
	})
	s.d.start()
	initial := readTruth(b, s.sim)
	s.wh.waitCaughtUp(b, initial.records, 5*time.Minute)
	s.waitDrained(5 * time.Minute)

	type target struct{ task, id string }
	var targets []target
	for _, task := range s.sim.TaskIDs() {
		ids, err := s.sim.CandidateIDs(task)
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			targets = append(targets, target{task, id})
		}
	}
	rng := rand.New(rand.NewPCG(61, 1))
	rng.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
	targets = targets[:changes]

	var mu sync.Mutex
	changedAt := map[string]time.Time{}
	seenAt := map[string]time.Time{}
	ctx, stop := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		query := "SELECT group_name FROM " + s.wh.db + ".tickets FINAL WHERE group_name LIKE 'latency-%'"
		for ctx.Err() == nil {
			rows, err := s.wh.conn.Query(ctx, query)
			now := time.Now()
			if err == nil {
				for rows.Next() {
					var group string
					if rows.Scan(&group) == nil {
						mu.Lock()
						if _, ok := seenAt[group]; !ok {
							seenAt[group] = now
						}
						mu.Unlock()
					}
				}
				rows.Close()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	defer func() { stop(); <-watched }()

	b.ResetTimer()
	for i, tg := range targets {
		group := fmt.Sprintf("latency-%03d", i)
		if err := s.sim.UpdateCandidate(tg.task, tg.id, testinvitesim.CandidateUpdate{Group: &group}); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		changedAt[group] = time.Now()
		mu.Unlock()
		time.Sleep(400*time.Millisecond + time.Duration(rng.Int64N(int64(800*time.Millisecond))))
	}
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(seenAt)
		mu.Unlock()
		if n == changes {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d changes reached ClickHouse within a minute of the last", n, changes)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()

	mu.Lock()
	latencies := make([]time.Duration, 0, changes)
	for group, at := range changedAt {
		latencies = append(latencies, seenAt[group].Sub(at))
	}
	mu.Unlock()
	slices.Sort(latencies)
	p50, p99 := percentile(latencies, 0.50), percentile(latencies, 0.99)
	b.ReportMetric(p50.Seconds(), "p50_s")
	b.ReportMetric(p99.Seconds(), "p99_s")
	b.ReportMetric(latencies[0].Seconds(), "min_s")
	b.ReportMetric(latencies[len(latencies)-1].Seconds(), "max_s")
	b.Logf("%d changes over %d records: min %s, p50 %s, p90 %s, p99 %s, max %s", changes, len(initial.records),
		latencies[0].Round(time.Millisecond), p50.Round(time.Millisecond), percentile(latencies, 0.9).Round(time.Millisecond),
		p99.Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
}

// percentile returns the nearest-rank percentile q (0 to 1) of sorted durations.
func percentile(sorted []time.Duration, q float64) time.Duration {
	rank := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(rank, 0), len(sorted)-1)]
}

// BenchmarkRequestsPerCycle counts the API requests of one poll cycle of an organization that does
// not change, for 10k, 50k and 200k records (a third tickets, two thirds test sessions, over four
// tasks), at the client's default page size of 100. Each task's list of tickets and of test sessions
// needs at least ceil(records / page size) pages. The sink is off: it sends no API request.
func BenchmarkRequestsPerCycle(b *testing.B) {
	for _, records := range []int{10_000, 50_000, 200_000} {
		b.Run(fmt.Sprintf("records=%d", records), func(b *testing.B) { benchmarkRequests(b, records) })
	}
}

func benchmarkRequests(b *testing.B, records int) {
	const pageSize = 100
	candidates := records / 3
	s := newStack(b, stackOptions{
		sim:      testinvitesim.Options{Seed: 71, Tasks: 4, Candidates: candidates, Sessions: records - candidates},
		pageSize: pageSize,
		schedule: "@every 20s",
		defaults: true,
		settings: map[string]any{
			"sink":       map[string]any{"enabled": false},
			"testinvite": map[string]any{"rate_limit": map[string]any{"rps": 0}},
			"poll":       map[string]any{"jitter": "0s"},
		},
	})
	s.d.start()
	// The first cycle loads everything; the second runs as every later one would. Counting starts
	// right after the second, so that the third is counted whole.
	s.waitCycles(2, 15*time.Minute)
	s.sim.ResetStats()
	s.waitCycles(1, 5*time.Minute)
	stats := s.sim.Stats()

	expected := 0
	for _, task := range s.sim.TaskIDs() {
		tickets, err := s.sim.CandidateIDs(task)
		if err != nil {
			b.Fatal(err)
		}
		sessions, err := s.sim.SessionIDs(task)
		if err != nil {
			b.Fatal(err)
		}
		expected += pages(len(tickets), pageSize) + pages(len(sessions), pageSize)
	}
	lists := stats.Route("GET /tasks/{taskId}/candidates") + stats.Route("GET /tasks/{taskId}/test-instances")
	b.ReportMetric(float64(lists), "list_requests/cycle")
	b.ReportMetric(float64(expected), "min_pages/cycle")
	b.ReportMetric(float64(stats.Total), "requests/cycle")
	var routes []string
	for route, n := range stats.Routes {
		if n > 0 {
			routes = append(routes, fmt.Sprintf("%s: %d", route, n))
		}
	}
	sort.Strings(routes)
	b.Logf("%d records: %d requests in one cycle (%s); sum of ceil(records/%d) over tasks and entities: %d",
		records, stats.Total, strings.Join(routes, ", "), pageSize, expected)
}

// pages returns the number of pages of n records, at least one.
func pages(n, size int) int {
	return max(1, (n+size-1)/size)
}

// BenchmarkRowsPerCycle counts the rows the sink inserts in one cycle against the number of records
// changed before it, in an organization of 30,004 records (4 tasks, 10,000 tickets, 20,000 test
// sessions) polled every 10 seconds. A tool that reloads everything at each cycle writes every
// record, 30,004 rows per cycle.
func BenchmarkRowsPerCycle(b *testing.B) {
	s := newStack(b, stackOptions{
		sim:      testinvitesim.Options{Seed: 81, Tasks: 4, CandidatesPerTask: 2500},
		pageSize: 100,
		schedule: "@every 10s",
		defaults: true,
		settings: map[string]any{
			"testinvite": map[string]any{"rate_limit": map[string]any{"rps": 0}},
			"poll":       map[string]any{"jitter": "0s"},
		},
	})
	s.d.start()
	initial := readTruth(b, s.sim)
	s.wh.waitCaughtUp(b, initial.records, 5*time.Minute)
	s.waitDrained(5 * time.Minute)

	var targets [][2]string
	for _, task := range s.sim.TaskIDs() {
		ids, err := s.sim.CandidateIDs(task)
		if err != nil {
			b.Fatal(err)
		}
		for _, id := range ids {
			targets = append(targets, [2]string{task, id})
		}
	}
	rng := rand.New(rand.NewPCG(81, 1))

	var lines []string
	for _, changes := range []int{0, 10, 100, 1000} {
		// Change the records right after a cycle, so that the next cycle finds all of them.
		s.waitCycles(1, 2*time.Minute)
		before := s.d.mustMetrics()
		rng.Shuffle(len(targets), func(i, j int) { targets[i], targets[j] = targets[j], targets[i] })
		for i, tg := range targets[:changes] {
			group := fmt.Sprintf("rows-%d-%d", changes, i)
			if err := s.sim.UpdateCandidate(tg[0], tg[1], testinvitesim.CandidateUpdate{Group: &group}); err != nil {
				b.Fatal(err)
			}
		}
		s.waitCycles(1, 2*time.Minute)
		s.waitDrained(2 * time.Minute)
		after := s.d.mustMetrics()
		rows := after.sum("tisync_clickhouse_rows_inserted_total") - before.sum("tisync_clickhouse_rows_inserted_total")
		events := after.sum("tisync_publish_events_total") - before.sum("tisync_publish_events_total")
		b.ReportMetric(rows, fmt.Sprintf("rows/cycle_at_%d_changes", changes))
		lines = append(lines, fmt.Sprintf("%d changes: %v events, %v rows (full reload: %d rows)", changes, events, rows, len(initial.records)))
	}
	b.Logf("%d records:\n%s", len(initial.records), strings.Join(lines, "\n"))
}

// BenchmarkMemoryMillion reads the daemon's resident memory (VmRSS, and its peak VmHWM, from
// /proc/PID/status) while it tracks one million records: 250,000 tickets and 750,000 test sessions
// over 5 tasks, read 1,000 per page. It reads them after the first cycle has loaded everything and
// the sink has written it, and again after a later cycle that finds no change. Between the two it
// resets VmHWM (writing 5 to /proc/PID/clear_refs), so that the second peak is the steady cycle's.
// It also reports the Go heap in use from /metrics. The flag -e2e.gomemlimit sets the daemon's
// GOMEMLIMIT.
func BenchmarkMemoryMillion(b *testing.B) {
	var env []string
	if *memoryLimit != "" {
		env = append(env, "GOMEMLIMIT="+*memoryLimit)
	}
	s := newStack(b, stackOptions{
		env:      env,
		sim:      testinvitesim.Options{Seed: 91, Tasks: 5, Candidates: 250_000, Sessions: 750_000},
		pageSize: 1000,
		schedule: "@every 1m",
		defaults: true,
		settings: map[string]any{
			"testinvite": map[string]any{"rate_limit": map[string]any{"rps": 0}},
			"poll":       map[string]any{"jitter": "0s"},
		},
	})
	start := time.Now()
	s.d.start()
	s.waitCycles(1, 30*time.Minute)
	polled := time.Since(start)
	s.waitDrained(30 * time.Minute)
	loaded := time.Since(start)
	afterLoad := s.vm()
	loadMetrics := s.d.mustMetrics()
	if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", s.d.pid()), []byte("5"), 0); err != nil {
		b.Fatalf("reset the peak resident set size: %v", err)
	}

	s.waitCycles(1, 10*time.Minute)
	s.waitDrained(10 * time.Minute)
	steady := s.vm()
	steadyMetrics := s.d.mustMetrics()

	const mb = 1 << 20
	b.ReportMetric(float64(afterLoad["VmRSS"])/mb, "rss_after_load_MB")
	b.ReportMetric(float64(afterLoad["VmHWM"])/mb, "peak_rss_load_MB")
	b.ReportMetric(float64(steady["VmRSS"])/mb, "rss_steady_MB")
	b.ReportMetric(float64(steady["VmHWM"])/mb, "peak_rss_steady_MB")
	heap := func(m metricSet) float64 { return m.sum("go_memstats_heap_inuse_bytes") / mb }
	b.Logf("first cycle polled in %s, sink drained after %s", polled.Round(time.Second), loaded.Round(time.Second))
	b.Logf("after load: VmRSS %d MB, VmHWM %d MB, Go heap in use %.0f MB, Go runtime total %.0f MB",
		afterLoad["VmRSS"]/mb, afterLoad["VmHWM"]/mb, heap(loadMetrics), loadMetrics.sum("go_memstats_sys_bytes")/mb)
	b.Logf("steady cycle: VmRSS %d MB, VmHWM %d MB since the load, Go heap in use %.0f MB, Go runtime total %.0f MB",
		steady["VmRSS"]/mb, steady["VmHWM"]/mb, heap(steadyMetrics), steadyMetrics.sum("go_memstats_sys_bytes")/mb)
	b.Logf("checkpoints: %v records, %.0f MB stored", steadyMetrics.sum("tisync_checkpoint_records"),
		steadyMetrics.sum("tisync_checkpoint_stored_bytes")/mb)
}

// vm reads the daemon's memory figures.
func (s *stack) vm() map[string]int64 {
	s.t.Helper()
	v, err := vmStatus(s.d.pid())
	if err != nil {
		s.t.Fatal(err)
	}
	return v
}

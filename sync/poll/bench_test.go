package poll

import (
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// BenchmarkFullCycle measures one poll cycle of one task with 100,000 tickets and 300,000 test
// sessions against the in-process simulator, with an embedded NATS server: the initial load, a cycle
// without changes, and a cycle after churn. It reports the API requests per entity next to the
// minimum, ceil(records / page size), and the events published per second. Run it with
// -benchtime 1x: each phase depends on the state the previous one left.
func BenchmarkFullCycle(b *testing.B) {
	const (
		candidates = 100_000
		sessions   = 300_000
		pageSize   = 1000
	)
	h := newHarness(b, harnessOptions{
		sim:    testinvitesim.Options{Seed: 3, Tasks: 1, Candidates: candidates, Sessions: sessions},
		client: func(c *testinvite.Config) { c.PageSize = pageSize },
		poll: func(c *Config) {
			c.Timeout = 30 * time.Minute
			c.MassDelete.MinDeletes = math.MaxInt32
		},
	})
	task := h.sim.TaskIDs()[0]
	ctx := testContext(b)

	phase := func(name string, prepare func()) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if prepare != nil {
					prepare()
				}
				h.sim.ResetStats()
				seq := h.lastSeq()
				start := time.Now()
				var pages, published int
				for _, e := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
					sum, err := h.poller.Poll(ctx, Request{TaskID: task, Entity: e})
					if err != nil {
						b.Fatal(err)
					}
					pages += sum.Stats.Pages
					published += sum.Published
				}
				elapsed := time.Since(start)
				stats := h.sim.Stats()
				events := int(h.lastSeq() - seq)
				if events != published {
					b.Fatalf("stream grew by %d events, the polls published %d", events, published)
				}
				listCandidates := stats.Route(testinvite.EndpointListCandidates)
				listSessions := stats.Route(testinvite.EndpointListTestInstances)
				_, nCandidates, nSessions := h.sim.Counts()
				b.ReportMetric(float64(listCandidates), "ticket_pages")
				b.ReportMetric(math.Ceil(float64(nCandidates)/pageSize), "ticket_pages_min")
				b.ReportMetric(float64(listSessions), "session_pages")
				b.ReportMetric(math.Ceil(float64(nSessions)/pageSize), "session_pages_min")
				b.ReportMetric(float64(stats.Total-listCandidates-listSessions), "other_requests")
				b.ReportMetric(float64(events), "events")
				b.ReportMetric(elapsed.Seconds(), "cycle_s")
				if events > 0 {
					b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
				}
				var mem runtime.MemStats
				runtime.ReadMemStats(&mem)
				b.ReportMetric(float64(mem.HeapInuse)/(1<<20), "heap_MiB")
				b.Logf("%s: %d pages, %d events in %s; requests %v", name, pages, events, elapsed.Round(time.Millisecond), stats.Routes)
			}
		})
	}
	phase("initial_load", nil)
	phase("unchanged", nil)
	phase("after_churn", func() { h.sim.Churn(4000) })
}

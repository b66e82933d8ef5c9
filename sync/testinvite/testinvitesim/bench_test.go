package testinvitesim_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// BenchmarkGenerateMillion builds an organization with a million test instances and reports the
// heap it keeps per test instance.
func BenchmarkGenerateMillion(b *testing.B) {
	opts := testinvitesim.Options{Seed: 1, Tasks: 20, Candidates: 500_000, Sessions: 1_000_000}
	for b.Loop() {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		sim, err := testinvitesim.New(opts)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if _, _, n := sim.Counts(); n != 1_000_000 {
			b.Fatalf("%d test instances", n)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "heap-MB")
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1_500_000, "heap-B/record")
		runtime.KeepAlive(sim)
	}
}

// BenchmarkServePage measures the simulator's own cost of serving one detailed page, without
// the network.
func BenchmarkServePage(b *testing.B) {
	sim, err := testinvitesim.New(testinvitesim.Options{Seed: 1, Tasks: 1, Candidates: 20_000, Sessions: 20_000, Credentials: testinvitesim.Credentials{Scheme: "none"}})
	if err != nil {
		b.Fatal(err)
	}
	taskID := sim.TaskIDs()[0]
	for _, entity := range []string{"candidates", "test-instances"} {
		for _, size := range []int{10, 100, 1000} {
			b.Run(fmt.Sprintf("%s/page=%d", entity, size), func(b *testing.B) {
				path := fmt.Sprintf("/api/integration/rest/v1/tasks/%s/%s?mode=detailed&limit=%d&page=3", taskID, entity, size)
				b.ReportAllocs()
				for b.Loop() {
					w := discardWriter{}
					sim.ServeHTTP(&w, httptestRequest(path))
					if w.status != 200 {
						b.Fatalf("status %d", w.status)
					}
				}
				b.ReportMetric(float64(size)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
			})
		}
	}
}

// BenchmarkWriteTruth measures the truth dump of an organization of 100,000 test instances.
func BenchmarkWriteTruth(b *testing.B) {
	sim, err := testinvitesim.New(testinvitesim.Options{Seed: 1, Tasks: 10, Candidates: 50_000, Sessions: 100_000})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := sim.WriteTruth(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(150_000*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header {
	if w.header == nil {
		w.header = http.Header{}
	}
	return w.header
}
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }

func httptestRequest(path string) *http.Request { return httptest.NewRequest("GET", path, nil) }

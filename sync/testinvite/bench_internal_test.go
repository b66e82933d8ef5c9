package testinvite

import (
	"fmt"
	"io"
	"net/http"
	"runtime"
	"testing"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// BenchmarkDecodePage measures the client's decoding alone: one page body captured from the
// simulator in detailed mode, decoded repeatedly into typed records with their raw bytes.
func BenchmarkDecodePage(b *testing.B) {
	srv, err := testinvitesim.NewServer(testinvitesim.Options{Seed: 1, Tasks: 1, Candidates: MaxPageSize, Sessions: MaxPageSize, Credentials: testinvitesim.Credentials{Scheme: testinvitesim.AuthNone}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	taskID := srv.TaskIDs()[0]
	for _, entity := range []string{"candidates", "test-instances"} {
		for _, size := range []int{10, DefaultPageSize, MaxPageSize} {
			resp, err := http.Get(fmt.Sprintf("%s%s/tasks/%s/%s?mode=detailed&limit=%d", srv.URL, restV1, taskID, entity, size))
			if err != nil {
				b.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				b.Fatal(err)
			}
			for _, rawOnly := range []bool{false, true} {
				name := fmt.Sprintf("%s/page=%d", entity, size)
				if rawOnly {
					name += "/raw_only"
				}
				b.Run(name, func(b *testing.B) {
					b.SetBytes(int64(len(body)))
					var before, after runtime.MemStats
					runtime.ReadMemStats(&before)
					records := 0
					for b.Loop() {
						var n int
						var err error
						if entity == "candidates" {
							var items []Candidate
							items, _, err = decodePage[Candidate]("bench", body, rawOnly)
							n = len(items)
						} else {
							var items []TestInstance
							items, _, err = decodePage[TestInstance]("bench", body, rawOnly)
							n = len(items)
						}
						if err != nil || n != size {
							b.Fatalf("decoded %d records: %v", n, err)
						}
						records += n
					}
					runtime.ReadMemStats(&after)
					b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
					b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(records), "allocs/record")
					b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(records), "B/record")
				})
			}
		}
	}
}

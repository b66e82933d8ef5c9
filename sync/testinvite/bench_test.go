package testinvite_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// benchPageSizes are the page sizes of the scan benchmarks: the API's default, the client's
// default and the client's maximum.
var benchPageSizes = []int{10, testinvite.DefaultPageSize, testinvite.MaxPageSize}

const benchRecords = 20_000

// BenchmarkScanLoopback measures full scans of one task over loopback HTTP against the in-process
// simulator, in detailed mode. records/s counts records decoded by the client. allocs/record
// includes the simulator's and the HTTP server's allocations because they run in the same
// process; BenchmarkDecodePage isolates the client's.
func BenchmarkScanLoopback(b *testing.B) {
	srv, err := testinvitesim.NewServer(testinvitesim.Options{Seed: 1, Tasks: 1, Candidates: benchRecords, Sessions: benchRecords})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cfg := testConfig(srv)
	c, err := testinvite.New(cfg, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	taskID := srv.TaskIDs()[0]
	ctx := context.Background()

	for _, entity := range []string{"candidates", "test_instances"} {
		for _, size := range benchPageSizes {
			b.Run(fmt.Sprintf("%s/page=%d", entity, size), func(b *testing.B) {
				b.ReportAllocs()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				records := 0
				for b.Loop() {
					var st testinvite.ScanStats
					var err error
					if entity == "candidates" {
						_, st, err = scanCount(ctx, c.ListCandidates(taskID, testinvite.CandidateQuery{PageSize: size}))
					} else {
						_, st, err = scanCount(ctx, c.ListTestInstances(taskID, testinvite.TestInstanceQuery{PageSize: size}))
					}
					if err != nil {
						b.Fatal(err)
					}
					if st.Records != benchRecords {
						b.Fatalf("scanned %d records, want %d", st.Records, benchRecords)
					}
					records += st.Records
				}
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(records)/b.Elapsed().Seconds(), "records/s")
				b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(records), "allocs/record")
			})
		}
	}
}

// scanCount reads every page and keeps no record, like a poller that hashes and drops them.
func scanCount[T testinvite.Record](ctx context.Context, s *testinvite.Scanner[T]) (int, testinvite.ScanStats, error) {
	n := 0
	for p, err := range s.Pages(ctx) {
		if err != nil {
			return n, s.Stats(), err
		}
		for i := range p.Records {
			if len(p.Records[i].RawJSON()) == 0 {
				return n, s.Stats(), fmt.Errorf("record %s without raw bytes", p.Records[i].RecordID())
			}
		}
		n += len(p.Records)
	}
	return n, s.Stats(), nil
}

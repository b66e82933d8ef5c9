package diff

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/diff/difftest"
)

// corpus is the raw records of one scan, held in memory the way a benchmark needs them.
type corpus struct {
	entity   schema.Entity
	ids      []string
	raws     [][]byte
	changed  map[int][]byte // the 1% of records in their next version
	rawBytes int64
}

var (
	corpusMu sync.Mutex
	corpora  = map[string]*corpus{}
)

// benchCorpus returns n generated records of entity e; every hundredth record also has a changed
// version. Corpora are cached, and only one is kept at a time so that the 1M runs fit in memory.
func benchCorpus(e schema.Entity, n int) *corpus {
	corpusMu.Lock()
	defer corpusMu.Unlock()
	key := fmt.Sprintf("%s/%d", e, n)
	if c, ok := corpora[key]; ok {
		return c
	}
	clear(corpora)
	runtime.GC()
	g := difftest.NewGenerator(42, "org1", "task1")
	gen := g.Ticket
	if e == schema.EntityTestSession {
		gen = g.TestSession
	}
	c := &corpus{entity: e, ids: make([]string, n), raws: make([][]byte, n), changed: map[int][]byte{}}
	for i := range n {
		c.ids[i], c.raws[i] = gen(i, 0)
		c.rawBytes += int64(len(c.raws[i]))
		if i%100 == 0 {
			_, c.changed[i] = gen(i, 1)
		}
	}
	corpora[key] = c
	return c
}

func (c *corpus) options(prev *Snapshot, at time.Time) Options {
	return Options{OrganizationID: "org1", TaskID: "task1", Entity: c.entity, Prev: prev, ObservedAt: at}
}

// run diffs the corpus against prev; with changed set, the 1% changed versions replace the originals.
func (c *corpus) run(tb testing.TB, prev *Snapshot, changed bool) *Result {
	s, err := NewScan(c.options(prev, t0))
	if err != nil {
		tb.Fatal(err)
	}
	for i, raw := range c.raws {
		if changed {
			if alt, ok := c.changed[i]; ok {
				raw = alt
			}
		}
		if err := s.Add(c.ids[i], raw); err != nil {
			tb.Fatal(err)
		}
	}
	res, err := s.Finish(Complete, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

var benchSizes = []int{10_000, 100_000, 1_000_000}

// BenchmarkDiff measures complete scans against the previous snapshot: every record unchanged, or
// 1% changed. The records/s metric is records diffed per second of one goroutine.
func BenchmarkDiff(b *testing.B) {
	for _, e := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
		for _, n := range benchSizes {
			for _, changed := range []bool{false, true} {
				name := fmt.Sprintf("%s/%dk/unchanged", e, n/1000)
				if changed {
					name = fmt.Sprintf("%s/%dk/1pct", e, n/1000)
				}
				b.Run(name, func(b *testing.B) {
					if testing.Short() && n > 100_000 {
						b.Skip("1M records in -short mode")
					}
					c := benchCorpus(e, n)
					prev := c.run(b, nil, false).Next
					b.ReportAllocs()
					b.ResetTimer()
					for b.Loop() {
						res := c.run(b, prev, changed)
						if changed && res.Counts.Updated != len(c.changed) {
							b.Fatalf("%d updates, want %d", res.Counts.Updated, len(c.changed))
						}
					}
					b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

// BenchmarkFirstLoad measures a scan without a previous snapshot, where every record is
// normalized and copied.
func BenchmarkFirstLoad(b *testing.B) {
	for _, e := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
		b.Run(fmt.Sprintf("%s/100k", e), func(b *testing.B) {
			c := benchCorpus(e, 100_000)
			b.SetBytes(c.rawBytes)
			b.ReportAllocs()
			for b.Loop() {
				c.run(b, nil, false)
			}
			b.ReportMetric(float64(len(c.raws))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkNormalize measures normalization alone over 1,000 records; one op normalizes all.
func BenchmarkNormalize(b *testing.B) {
	for _, e := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
		b.Run(string(e), func(b *testing.B) {
			g := difftest.NewGenerator(7, "org1", "task1")
			var raws [][]byte
			var total int64
			for i := range 1000 {
				_, raw := g.Ticket(i, i%4)
				if e == schema.EntityTestSession {
					_, raw = g.TestSession(i, i%4)
				}
				raws = append(raws, raw)
				total += int64(len(raw))
			}
			var n Normalizer
			buf := make([]byte, 0, 4096)
			b.SetBytes(total)
			b.ReportAllocs()
			for b.Loop() {
				for _, raw := range raws {
					var err error
					if buf, err = n.Append(buf[:0], e, raw); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(len(raws))*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkDiffPeakMemory measures the heap a 1M-record diff with 1% changed needs beyond the raw
// records: the previous snapshot decoded from a file (as a checkpoint load streams it), the scan,
// the result, and building every change as a publisher would. A goroutine samples HeapInuse every
// 2 ms. Metrics: peak-heap-MB beyond the raw records, and that peak as a multiple of the raw size,
// without and with the raw records themselves (a poller holds one page of them, not all).
func BenchmarkDiffPeakMemory(b *testing.B) {
	for _, e := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
		b.Run(fmt.Sprintf("%s/1000k", e), func(b *testing.B) {
			if testing.Short() {
				b.Skip("1M records in -short mode")
			}
			c := benchCorpus(e, 1_000_000)
			path := filepath.Join(b.TempDir(), "snapshot")
			writeSnapshotFile(b, path, c.run(b, nil, false).Next)
			for b.Loop() {
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				baseline := ms.HeapInuse

				stop, peak := sampleHeap()
				prev := readSnapshotFile(b, path)
				res := c.run(b, prev, true)
				var n int
				for ch := range res.All() {
					n += len(ch.EventID)
				}
				top := stop()
				runtime.KeepAlive(res)
				runtime.KeepAlive(prev)

				over := float64(top - baseline)
				b.ReportMetric(over/1e6, "peak-heap-MB")
				b.ReportMetric(over/float64(c.rawBytes), "peak/raw")
				b.ReportMetric((over+float64(c.rawBytes))/float64(c.rawBytes), "peak+raw/raw")
				b.ReportMetric(float64(c.rawBytes)/1e6, "raw-MB")
				_ = peak
			}
			b.ReportMetric(0, "ns/op")
		})
	}
}

func writeSnapshotFile(tb testing.TB, path string, s *Snapshot) {
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	if _, err := s.WriteTo(w); err != nil {
		tb.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
}

func readSnapshotFile(tb testing.TB, path string) *Snapshot {
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	s, err := ReadSnapshot(f)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// sampleHeap samples HeapInuse until the returned stop function is called, which returns the
// largest sample.
func sampleHeap() (stop func() uint64, peak *uint64) {
	var top uint64
	done := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		top = max(top, ms.HeapInuse)
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				sample()
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		<-finished
		return top
	}, &top
}

package checkpoint

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/diff"
	"github.com/tisync/tisync/sync/diff/difftest"
)

// generated returns the snapshot of a first load of n generated records and their raw size.
func generated(tb testing.TB, e schema.Entity, n int) (*diff.Snapshot, int64) {
	tb.Helper()
	g := difftest.NewGenerator(42, "org1", "task1")
	gen := g.Ticket
	if e == schema.EntityTestSession {
		gen = g.TestSession
	}
	s, err := diff.NewScan(diff.Options{OrganizationID: "org1", TaskID: "task1", Entity: e, ObservedAt: t0})
	if err != nil {
		tb.Fatal(err)
	}
	var raw int64
	for i := range n {
		id, rec := gen(i, 0)
		raw += int64(len(rec))
		if err := s.Add(id, rec); err != nil {
			tb.Fatal(err)
		}
	}
	res, err := s.Finish(diff.Complete, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return res.Next, raw
}

// BenchmarkCheckpointSize measures the compressed snapshot object per zstd level: stored bytes per
// record and as a share of the records' raw JSON, and the speed of compressing and decoding it.
func BenchmarkCheckpointSize(b *testing.B) {
	for _, e := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
		for _, n := range []int{100_000, 1_000_000} {
			for _, level := range []string{"fastest", "default", "better"} {
				b.Run(fmt.Sprintf("%s/%dk/%s", e, n/1000, level), func(b *testing.B) {
					if testing.Short() && n > 100_000 {
						b.Skip("1M records in -short mode")
					}
					snap, raw := generated(b, e, n)
					lvl, _ := Config{Compression: level}.level()
					var stored int64
					var encode, decode time.Duration
					for b.Loop() {
						var buf bytes.Buffer
						start := time.Now()
						if err := writeObject(&buf, snap, lvl); err != nil {
							b.Fatal(err)
						}
						encode += time.Since(start)
						stored = int64(buf.Len())
						start = time.Now()
						if _, _, err := readObject(&buf); err != nil {
							b.Fatal(err)
						}
						decode += time.Since(start)
					}
					b.ReportMetric(float64(stored)/float64(n), "stored-B/record")
					b.ReportMetric(100*float64(stored)/float64(raw), "stored-%-of-raw")
					b.ReportMetric(float64(raw)*float64(b.N)/encode.Seconds()/1e6, "encode-raw-MB/s")
					b.ReportMetric(float64(raw)*float64(b.N)/decode.Seconds()/1e6, "decode-raw-MB/s")
					b.ReportMetric(0, "ns/op")
				})
			}
		}
	}
}

// BenchmarkJetStreamSaveLoad measures Save and Load of a 100k-record ticket snapshot through an
// embedded nats-server with file storage.
func BenchmarkJetStreamSaveLoad(b *testing.B) {
	snap, raw := generated(b, schema.EntityTicket, 100_000)
	store := newJetStream(b, connect(b, startServer(b, b.TempDir())), &clock{t: t0})
	ctx := context.Background()
	_, meta, _ := store.Load(ctx, ticketKey)
	var save, load time.Duration
	for b.Loop() {
		start := time.Now()
		var err error
		if meta, err = store.Save(ctx, meta, snap); err != nil {
			b.Fatal(err)
		}
		save += time.Since(start)
		start = time.Now()
		if _, meta, err = store.Load(ctx, ticketKey); err != nil {
			b.Fatal(err)
		}
		load += time.Since(start)
	}
	b.ReportMetric(save.Seconds()/float64(b.N), "save-s")
	b.ReportMetric(load.Seconds()/float64(b.N), "load-s")
	b.ReportMetric(float64(meta.StoredBytes), "stored-bytes")
	b.ReportMetric(float64(raw), "raw-bytes")
	b.ReportMetric(0, "ns/op")
}

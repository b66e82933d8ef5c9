package consume_test

import (
	"context"
	"flag"
	"runtime"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/schema/schematest"
	"github.com/tisync/tisync/sink/clickhouse"
	"github.com/tisync/tisync/sink/clickhouse/clickhousetest"
	"github.com/tisync/tisync/sink/consume"
)

var (
	benchEvents      = flag.Int("sink.events", 20000, "events in the stream of BenchmarkSink")
	benchCompression = flag.String("sink.compression", "lz4", "ClickHouse compression of BenchmarkSink: lz4, zstd or none")
	benchValidate    = flag.Bool("sink.validate", true, "validate events against the JSON Schema in BenchmarkSink")
)

// BenchmarkSink measures events per second from a prefilled stream into ClickHouse through the
// consumer (sink_events/s), next to the rate of writing the same rows with the ClickHouse client
// alone (raw_events/s), and reports their ratio. Run it with -benchtime=1x; -sink.events sets the
// stream size.
func BenchmarkSink(b *testing.B) {
	n := *benchEvents
	js, _ := runNATS(b)
	// Publish in slices so that the whole set is never in memory: a large heap in this process
	// would slow the sink's garbage collection and skew the comparison.
	const chunk = 20000
	for i := 0; i < n; i += chunk {
		publish(b, js, schematest.LoadRange(i, min(n, i+chunk), "org1", t0), true)
	}

	// Over several iterations (-benchtime=3x) the raw and sink phases alternate, so that load from
	// other processes on a shared machine spreads over both; the rates are totals over all of them.
	var rawTotal, sinkTotal time.Duration
	iterations := 0
	for b.Loop() {
		iterations++
		b.StopTimer()
		rawCfg := clickhousetest.Config(b)
		rawCfg.Compression = *benchCompression
		raw := migratedClient(b, rawCfg)
		sinkCfg := clickhousetest.Config(b)
		sinkCfg.Compression = *benchCompression
		w := migratedClient(b, sinkCfg)

		// Raw: rows computed beforehand, batches of the consumer's default size, one Write each.
		// Each batch's rows are computed before its timed Write.
		cfg := consume.DefaultConfig()
		var rawTime time.Duration
		for i := 0; i < n; i += cfg.BatchEvents {
			events := schematest.LoadRange(i, min(n, i+cfg.BatchEvents), "org1", t0)
			batch := clickhouse.NewBatch()
			for j := range events {
				rows, err := schema.Rows(&events[j])
				if err != nil {
					b.Fatal(err)
				}
				batch.AddEvent(rows)
			}
			start := time.Now()
			if err := raw.Write(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			rawTime += time.Since(start)
		}
		rawTotal += rawTime
		runtime.GC()
		b.StartTimer()

		// Sink: a new consumer reads the whole stream.
		cfg.ValidateSchema = *benchValidate
		cfg.Consumer = "bench" + sinkCfg.Database[len(sinkCfg.Database)-6:]
		start := time.Now()
		s := startSink(b, cfg, js, w)
		deadline := time.Now().Add(10 * time.Minute)
		for s.metric(b, "tisync_sink_acks_total", "kind", "ack") < float64(n) {
			if time.Now().After(deadline) {
				b.Fatal("sink did not finish within 10 minutes")
			}
			time.Sleep(5 * time.Millisecond)
		}
		sinkTotal += time.Since(start)
		b.StopTimer()
		s.stop(b)

		if got := count(b, sinkCfg.Addresses[0], "SELECT count() FROM "+sinkCfg.Database+".change_events"); got != n {
			b.Fatalf("sink wrote %d change events, want %d", got, n)
		}
		b.StartTimer()
	}
	rawRate := float64(n*iterations) / rawTotal.Seconds()
	sinkRate := float64(n*iterations) / sinkTotal.Seconds()
	b.ReportMetric(rawRate, "raw_events/s")
	b.ReportMetric(sinkRate, "sink_events/s")
	b.ReportMetric(sinkRate/rawRate, "sink/raw")
}

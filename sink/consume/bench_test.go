package consume_test

import (
	"context"
	"flag"
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
	events := schematest.Load(n, "org1", t0)
	js, _ := runNATS(b)
	publish(b, js, events, true)

	for b.Loop() {
		b.StopTimer()
		rawCfg := clickhousetest.Config(b)
		rawCfg.Compression = *benchCompression
		raw := migratedClient(b, rawCfg)
		sinkCfg := clickhousetest.Config(b)
		sinkCfg.Compression = *benchCompression
		w := migratedClient(b, sinkCfg)

		// Raw: rows computed beforehand, batches of the consumer's default size, one Write each.
		batches := []*clickhouse.Batch{}
		cfg := consume.DefaultConfig()
		for i := 0; i < n; i += cfg.BatchEvents {
			batch := clickhouse.NewBatch()
			for j := i; j < min(i+cfg.BatchEvents, n); j++ {
				rows, err := schema.Rows(&events[j])
				if err != nil {
					b.Fatal(err)
				}
				batch.AddEvent(rows)
			}
			batches = append(batches, batch)
		}
		b.StartTimer()
		start := time.Now()
		for _, batch := range batches {
			if err := raw.Write(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
		}
		rawRate := float64(n) / time.Since(start).Seconds()

		// Sink: a new consumer reads the whole stream.
		cfg.ValidateSchema = *benchValidate
		cfg.Consumer = "bench" + sinkCfg.Database[len(sinkCfg.Database)-6:]
		start = time.Now()
		s := startSink(b, cfg, js, w)
		deadline := time.Now().Add(10 * time.Minute)
		for s.metric(b, "tisync_sink_acks_total", "kind", "ack") < float64(n) {
			if time.Now().After(deadline) {
				b.Fatal("sink did not finish within 10 minutes")
			}
			time.Sleep(5 * time.Millisecond)
		}
		sinkRate := float64(n) / time.Since(start).Seconds()
		b.StopTimer()
		s.stop(b)

		if got := count(b, sinkCfg.Addresses[0], "SELECT count() FROM "+sinkCfg.Database+".change_events"); got != n {
			b.Fatalf("sink wrote %d change events, want %d", got, n)
		}
		b.ReportMetric(rawRate, "raw_events/s")
		b.ReportMetric(sinkRate, "sink_events/s")
		b.ReportMetric(sinkRate/rawRate, "sink/raw")
		b.StartTimer()
	}
}

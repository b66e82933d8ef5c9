package consume_test

import (
	"context"
	"flag"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
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
	benchValidate    = flag.Bool("sink.validate", false, "validate events against the JSON Schema in BenchmarkSink")
	benchBatch       = flag.Int("sink.batch", 0, "batch_events of BenchmarkSink (batch_bytes grows to 2 KiB per event), 0 for the defaults")
	benchRawProfile  = flag.String("sink.rawprofile", "", "write a CPU profile of the first raw insert phase of BenchmarkSink to this file")
	benchSinkProfile = flag.String("sink.sinkprofile", "", "write a CPU profile of the first sink phase of BenchmarkSink to this file")
)

// cpuTime returns the CPU time the process has used, user and system.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profile starts a CPU profile into path when path is set and this is the first iteration, and
// returns the function that stops it.
func profile(tb testing.TB, path string, iteration int) (stop func()) {
	if path == "" || iteration != 1 {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		tb.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			tb.Error(err)
		}
	}
}

// BenchmarkSink measures events per second from a prefilled stream into ClickHouse through the
// consumer (sink_events/s), next to the rate of writing the same rows with the ClickHouse client
// alone (raw_events/s), and reports their ratio. Both write with Client.Write, so the ratio is the
// consumer's overhead: fetching, decoding, checking and acknowledging. It also reports the CPU time
// of this process per event in each phase (raw_cpu_us/event, sink_cpu_us/event). The sink's
// includes the embedded NATS server, and neither includes the ClickHouse server. Run it with
// -benchtime=3x; -sink.events sets the stream size, and -sink.rawprofile and -sink.sinkprofile
// write CPU profiles of the first iteration's phases.
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
	var rawTotal, sinkTotal, rawCPU, sinkCPU time.Duration
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
		if *benchBatch > 0 {
			cfg.BatchEvents = *benchBatch
			cfg.BatchBytes = max(cfg.BatchBytes, 2*1024*cfg.BatchEvents)
			cfg.MaxAckPending = 3 * cfg.BatchEvents
		}
		var rawTime time.Duration
		stopProfile := profile(b, *benchRawProfile, iterations)
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
			start, cpu := time.Now(), cpuTime(b)
			if err := raw.Write(context.Background(), batch); err != nil {
				b.Fatal(err)
			}
			rawTime += time.Since(start)
			rawCPU += cpuTime(b) - cpu
		}
		stopProfile()
		rawTotal += rawTime
		runtime.GC()
		b.StartTimer()

		// Sink: a new consumer reads the whole stream.
		cfg.ValidateSchema = *benchValidate
		cfg.Consumer = "bench" + sinkCfg.Database[len(sinkCfg.Database)-6:]
		stopProfile = profile(b, *benchSinkProfile, iterations)
		start, cpu := time.Now(), cpuTime(b)
		s := startSink(b, cfg, js, w)
		deadline := time.Now().Add(10 * time.Minute)
		for s.metric(b, "tisync_sink_acks_total", "kind", "ack") < float64(n) {
			if time.Now().After(deadline) {
				b.Fatal("sink did not finish within 10 minutes")
			}
			time.Sleep(5 * time.Millisecond)
		}
		sinkTotal += time.Since(start)
		sinkCPU += cpuTime(b) - cpu
		stopProfile()
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
	b.ReportMetric(float64(rawCPU.Microseconds())/float64(n*iterations), "raw_cpu_us/event")
	b.ReportMetric(float64(sinkCPU.Microseconds())/float64(n*iterations), "sink_cpu_us/event")
}

package consume

import "github.com/prometheus/client_golang/prometheus"

// Dead-letter reasons, the values of the reason label.
const (
	reasonDecode        = "decode"         // not an event: not JSON, or not a JSON object
	reasonSchema        = "schema"         // breaks the schema or the semantic checks
	reasonInsert        = "insert"         // ClickHouse rejected its rows
	reasonMaxDeliveries = "max_deliveries" // the server gave up redelivering it
)

// metrics are the Prometheus metrics of a Consumer.
type metrics struct {
	consumed       prometheus.Counter
	redeliveries   prometheus.Counter
	batchEvents    prometheus.Histogram
	batchBytes     prometheus.Histogram
	flushes        *prometheus.CounterVec
	insertDuration prometheus.Histogram
	insertRetries  prometheus.Counter
	deadLetters    *prometheus.CounterVec
	acks           *prometheus.CounterVec
	pending        prometheus.Gauge
	ackPending     prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		consumed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_sink_messages_consumed_total",
			Help: "Messages received from the event stream, redeliveries included.",
		}),
		redeliveries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_sink_redeliveries_total",
			Help: "Messages received that the server had delivered before.",
		}),
		batchEvents: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tisync_sink_batch_events",
			Help:    "Messages per flushed batch.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 10),
		}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tisync_sink_batch_bytes",
			Help:    "Message body bytes per flushed batch.",
			Buckets: prometheus.ExponentialBuckets(1024, 4, 10),
		}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_sink_flushes_total",
			Help: "Flushed batches by reason: events, bytes, wait or shutdown.",
		}, []string{"reason"}),
		insertDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tisync_sink_insert_duration_seconds",
			Help:    "Duration of writing one batch into ClickHouse, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 16),
		}),
		insertRetries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_sink_insert_retries_total",
			Help: "Insert attempts repeated after an error unrelated to the rows.",
		}),
		deadLetters: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_sink_dead_letters_total",
			Help: "Messages copied to the dead-letter stream, by reason: decode, schema, insert or max_deliveries.",
		}, []string{"reason"}),
		acks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_sink_acks_total",
			Help: "Acknowledgements sent, by kind: ack, term or nak.",
		}, []string{"kind"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tisync_sink_pending_messages",
			Help: "Messages in the stream not yet delivered to the consumer, as last sampled.",
		}),
		ackPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tisync_sink_ack_pending_messages",
			Help: "Messages delivered but not yet acknowledged, as last sampled.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.consumed, m.redeliveries, m.batchEvents, m.batchBytes, m.flushes, m.insertDuration,
			m.insertRetries, m.deadLetters, m.acks, m.pending, m.ackPending)
	}
	return m
}

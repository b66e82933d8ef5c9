package publish

import "github.com/prometheus/client_golang/prometheus"

// metrics are the publisher's Prometheus metrics.
type metrics struct {
	events     *prometheus.CounterVec
	duplicates prometheus.Counter
	errors     *prometheus.CounterVec
	retries    prometheus.Counter
	ackLatency prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_publish_events_total",
			Help: "Change events acknowledged by JetStream, by entity and op.",
		}, []string{"entity", "op"}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_publish_duplicates_total",
			Help: "Events JetStream acknowledged as duplicates of an event already stored.",
		}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_publish_errors_total",
			Help: "Failed event publishes, by reason; most are retried.",
		}, []string{"reason"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_publish_retries_total",
			Help: "Event publishes repeated after an error or a missing acknowledgement.",
		}),
		ackLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tisync_publish_ack_latency_seconds",
			Help:    "Time from sending an event to its JetStream acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 9),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.duplicates, m.errors, m.retries, m.ackLatency)
	}
	return m
}

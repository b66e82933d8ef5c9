package clickhouse

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Prometheus metrics of a Client.
type metrics struct {
	insertDuration *prometheus.HistogramVec
	rowsInserted   *prometheus.CounterVec
	insertErrors   *prometheus.CounterVec
	reconnects     prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		insertDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tisync_clickhouse_insert_duration_seconds",
			Help:    "Duration of one batch insert into one table, from preparing the batch to the server's acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14),
		}, []string{"table"}),
		rowsInserted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_clickhouse_rows_inserted_total",
			Help: "Rows the server acknowledged, by table. Retried rows count again.",
		}, []string{"table"}),
		insertErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_clickhouse_insert_errors_total",
			Help: "Failed batch inserts by table and kind: row (caused by a value) or retryable.",
		}, []string{"table", "kind"}),
		reconnects: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_clickhouse_reconnects_total",
			Help: "Connection pools closed after an error and opened again.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.insertDuration, m.rowsInserted, m.insertErrors, m.reconnects)
	}
	return m
}

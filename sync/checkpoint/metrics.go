package checkpoint

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the checkpoint store's Prometheus metrics.
type metrics struct {
	saveDuration   *prometheus.HistogramVec
	loadDuration   *prometheus.HistogramVec
	savedBytes     *prometheus.CounterVec
	storedBytes    *prometheus.GaugeVec
	records        *prometheus.GaugeVec
	conflicts      *prometheus.CounterVec
	corrupt        *prometheus.CounterVec
	orphans        prometheus.Counter
	cleanupFailure prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	buckets := prometheus.ExponentialBuckets(0.005, 2.5, 10) // 5 ms to about 19 s
	m := &metrics{
		saveDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tisync_checkpoint_save_duration_seconds",
			Help:    "Time to compress, store and commit one snapshot, failed saves included.",
			Buckets: buckets,
		}, []string{"entity"}),
		loadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tisync_checkpoint_load_duration_seconds",
			Help:    "Time to read and decode one checkpoint, failed loads included.",
			Buckets: buckets,
		}, []string{"entity"}),
		savedBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_checkpoint_saved_bytes_total",
			Help: "Compressed snapshot bytes written to the object store.",
		}, []string{"entity"}),
		storedBytes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tisync_checkpoint_stored_bytes",
			Help: "Compressed size of the current snapshot of each checkpoint this process saved or loaded.",
		}, []string{"task", "entity"}),
		records: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tisync_checkpoint_records",
			Help: "Live records in the current snapshot of each checkpoint this process saved or loaded.",
		}, []string{"task", "entity"}),
		conflicts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_checkpoint_conflicts_total",
			Help: "Writes rejected because the checkpoint changed since it was read.",
		}, []string{"entity"}),
		corrupt: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_checkpoint_corrupt_total",
			Help: "Loads that found an unreadable checkpoint.",
		}, []string{"entity"}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_checkpoint_orphans_removed_total",
			Help: "Unreferenced snapshot objects deleted.",
		}),
		cleanupFailure: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_checkpoint_cleanup_failures_total",
			Help: "Superseded snapshot objects that could not be deleted; RemoveOrphans deletes them later.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.saveDuration, m.loadDuration, m.savedBytes, m.storedBytes, m.records,
			m.conflicts, m.corrupt, m.orphans, m.cleanupFailure)
	}
	return m
}

// observe sets the gauges of a checkpoint from its metadata.
func (m *metrics) observe(meta Meta) {
	task := meta.Key.TaskID
	entity := string(meta.Key.Entity)
	m.storedBytes.WithLabelValues(task, entity).Set(float64(meta.StoredBytes))
	m.records.WithLabelValues(task, entity).Set(float64(meta.Records))
}

package poll

import "github.com/prometheus/client_golang/prometheus"

// metrics are the pollers' Prometheus metrics. The task label is bounded by the number of tasks.
type metrics struct {
	polls          *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	pages          *prometheus.CounterVec
	records        *prometheus.CounterVec
	invalid        *prometheus.CounterVec
	changes        *prometheus.CounterVec
	lookups        *prometheus.CounterVec
	guardTrips     *prometheus.CounterVec
	checkpointAge  *prometheus.GaugeVec
	staleChecks    *prometheus.CounterVec
	lastSuccess    *prometheus.GaugeVec
	tasksTracked   prometheus.Gauge
	tasksVanished  prometheus.Counter
	tasksAppeared  prometheus.Counter
	cyclesSkipped  *prometheus.CounterVec
	schedulerAlive prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_poll_runs_total",
			Help: "Polls of one entity of one task, by entity and result (ok, partial, error, skipped).",
		}, []string{"entity", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tisync_poll_duration_seconds",
			Help:    "Wall time of one poll, from the first page to the stored checkpoint.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 12),
		}, []string{"entity"}),
		pages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_poll_pages_total",
			Help: "API pages scanned, by entity.",
		}, []string{"entity"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_poll_records_total",
			Help: "Records scanned, by entity.",
		}, []string{"entity"}),
		invalid: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_poll_invalid_records_total",
			Help: "Records skipped because they were invalid (bad id, not a JSON object, wrong task), by entity.",
		}, []string{"entity"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_poll_changes_total",
			Help: "Changes detected and published, by entity and op.",
		}, []string{"entity", "op"}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_poll_lookups_total",
			Help: "Point lookups of records missing from a scan, by entity and result (gone, found, error).",
		}, []string{"entity", "result"}),
		guardTrips: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_poll_mass_delete_guard_trips_total",
			Help: "Polls whose deletes the mass-delete guard withheld, by entity.",
		}, []string{"entity"}),
		checkpointAge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tisync_checkpoint_age_seconds",
			Help: "Time since the last complete scan of a task's entity started.",
		}, []string{"task", "entity"}),
		staleChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_checkpoint_stale_total",
			Help: "Freshness checks that found a task's last complete scan older than poll.freshness_bound.",
		}, []string{"task", "entity"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tisync_poll_last_success_timestamp_seconds",
			Help: "Unix time of the last successful poll of a task's entity.",
		}, []string{"task", "entity"}),
		tasksTracked: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tisync_tasks_tracked",
			Help: "Tasks whose tickets and test sessions are polled.",
		}),
		tasksVanished: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_tasks_vanished_total",
			Help: "Tasks that discovery no longer found.",
		}),
		tasksAppeared: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_tasks_discovered_total",
			Help: "Tasks that discovery found for the first time.",
		}),
		cyclesSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_poll_cycles_skipped_total",
			Help: "Scheduled cycles skipped because the previous cycle of the entity was still running.",
		}, []string{"entity"}),
		schedulerAlive: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tisync_scheduler_running",
			Help: "1 while the poll scheduler runs.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.polls, m.duration, m.pages, m.records, m.invalid, m.changes, m.lookups, m.guardTrips,
			m.checkpointAge, m.staleChecks, m.lastSuccess, m.tasksTracked, m.tasksVanished, m.tasksAppeared,
			m.cyclesSkipped, m.schedulerAlive)
	}
	return m
}

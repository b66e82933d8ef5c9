package testinvite

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the client's Prometheus metrics. Labels are bounded: endpoint is a route template,
// code an HTTP status or "error", reason one of the retry reasons.
type metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	retries        *prometheus.CounterVec
	shortPages     *prometheus.CounterVec
	duplicates     *prometheus.CounterVec
	typeMismatches *prometheus.CounterVec
	rateLimitWait  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_testinvite_requests_total",
			Help: "TestInvite API requests (attempts) by route template and HTTP status; code is \"error\" when no response arrived.",
		}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tisync_testinvite_request_duration_seconds",
			Help:    "Duration of TestInvite API attempts, reading the body included, by route template.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"endpoint"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_testinvite_retries_total",
			Help: "Retried TestInvite API attempts by route template and reason (status_429, status_5xx, timeout, connection, malformed_body).",
		}, []string{"endpoint", "reason"}),
		shortPages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_testinvite_short_pages_total",
			Help: "Pages that held fewer records than requested without being the last page, a sign of a server-side page-size cap.",
		}, []string{"endpoint"}),
		duplicates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_testinvite_duplicate_records_total",
			Help: "Records seen a second time within one scan, which offset paging over changing data produces.",
		}, []string{"endpoint"}),
		typeMismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tisync_testinvite_field_type_mismatches_total",
			Help: "Records with a field of an unexpected JSON type; the raw record is kept and the typed field left empty.",
		}, []string{"endpoint"}),
		rateLimitWait: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tisync_testinvite_rate_limit_wait_seconds_total",
			Help: "Time requests waited for the client-side rate limiter.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.retries, err = register(reg, m.retries); err != nil {
		return nil, err
	}
	if m.shortPages, err = register(reg, m.shortPages); err != nil {
		return nil, err
	}
	if m.duplicates, err = register(reg, m.duplicates); err != nil {
		return nil, err
	}
	if m.typeMismatches, err = register(reg, m.typeMismatches); err != nil {
		return nil, err
	}
	if m.rateLimitWait, err = register(reg, m.rateLimitWait); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered under the same name, so that
// several clients can share one registry.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, fmt.Errorf("register metrics: %w", err)
}

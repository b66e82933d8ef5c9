package testinvitesim

import (
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// faultKey is the context key under which a request carries its drawn faults.
type faultKey struct{}

// drawn are the faults chosen for one request.
type drawn struct {
	delay          time.Duration
	hang           bool
	rateLimited    bool
	retryAfter     time.Duration
	retryAfterDate bool
	serverError    int
	truncate       bool
	malformed      bool
	drift          bool
	driftInserts   int
	driftDeletes   int
	maxPageSize    int
}

// drawFaults draws every fault of one request from the fault generator. Draws happen in a fixed
// order and only for rates above zero, so that a seed and a request sequence give the same faults.
func (s *Sim) drawFaults() drawn {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	f := s.faults
	rng := s.faultRNG
	hit := func(rate float64) bool { return rate > 0 && rng.Float64() < rate }
	d := drawn{
		delay:          f.Latency,
		retryAfter:     f.RetryAfter,
		retryAfterDate: f.RetryAfterDate,
		driftInserts:   f.DriftInserts,
		driftDeletes:   f.DriftDeletes,
		maxPageSize:    f.MaxPageSize,
	}
	if f.LatencyJitter > 0 {
		d.delay += time.Duration(rng.Int64N(int64(f.LatencyJitter)))
	}
	d.hang = hit(f.TimeoutRate)
	d.rateLimited = hit(f.RateLimitRate)
	if hit(f.ServerErrorRate) {
		d.serverError = f.ServerErrorStatus
	}
	d.truncate = hit(f.TruncateRate)
	d.malformed = hit(f.MalformedRate)
	d.drift = hit(f.DriftRate) && !s.frozen.Load()
	return d
}

func faultsOf(r *http.Request) drawn {
	d, _ := r.Context().Value(faultKey{}).(drawn)
	return d
}

// Stats counts the requests the simulator received.
type Stats struct {
	// Total is the number of API requests, admin requests excluded.
	Total int64 `json:"total"`
	// Routes maps each route template, such as "GET /tasks/{taskId}/candidates" or
	// "POST /fatih/fetch-tasks", to its request count; "unmatched" counts requests of no route.
	Routes map[string]int64 `json:"routes"`
	// Faults maps each injected fault (timeout, rate_limit, server_error, truncate, malformed,
	// drift) to the number of times it fired.
	Faults map[string]int64 `json:"faults"`
}

// Route returns the count of one route template.
func (s Stats) Route(template string) int64 { return s.Routes[template] }

// Sub returns the counts accumulated since an earlier snapshot prev.
func (s Stats) Sub(prev Stats) Stats {
	out := Stats{Total: s.Total - prev.Total, Routes: map[string]int64{}, Faults: map[string]int64{}}
	for k, v := range s.Routes {
		out.Routes[k] = v - prev.Routes[k]
	}
	for k, v := range s.Faults {
		out.Faults[k] = v - prev.Faults[k]
	}
	return out
}

type requestStats struct {
	total  atomic.Int64
	mu     sync.Mutex
	routes map[string]*atomic.Int64
	faults map[string]*atomic.Int64
}

var faultNames = []string{"timeout", "rate_limit", "server_error", "truncate", "malformed", "drift"}

func newRequestStats() *requestStats {
	rs := &requestStats{routes: map[string]*atomic.Int64{"unmatched": {}}, faults: map[string]*atomic.Int64{}}
	for _, n := range faultNames {
		rs.faults[n] = &atomic.Int64{}
	}
	return rs
}

// add registers a route template; it runs before serving starts.
func (rs *requestStats) add(template string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.routes[template] == nil {
		rs.routes[template] = &atomic.Int64{}
	}
}

func (rs *requestStats) count(template string) {
	rs.total.Add(1)
	rs.mu.Lock()
	c := rs.routes[template]
	rs.mu.Unlock()
	c.Add(1)
}

func (rs *requestStats) fault(name string) {
	rs.faults[name].Add(1)
}

func (rs *requestStats) snapshot() Stats {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	st := Stats{Total: rs.total.Load(), Routes: make(map[string]int64, len(rs.routes)), Faults: map[string]int64{}}
	for k, v := range rs.routes {
		st.Routes[k] = v.Load()
	}
	for k, v := range rs.faults {
		st.Faults[k] = v.Load()
	}
	return st
}

func (rs *requestStats) reset() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.total.Store(0)
	for _, v := range rs.routes {
		v.Store(0)
	}
	for _, v := range rs.faults {
		v.Store(0)
	}
}

// Stats returns the request counters.
func (s *Sim) Stats() Stats { return s.stats.snapshot() }

// ResetStats sets every request counter to zero.
func (s *Sim) ResetStats() { s.stats.reset() }

// RouteTemplates returns the route templates the simulator serves, sorted.
func (s *Sim) RouteTemplates() []string {
	st := s.stats.snapshot()
	out := make([]string, 0, len(st.Routes))
	for k := range st.Routes {
		if k != "unmatched" {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

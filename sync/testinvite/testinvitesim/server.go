package testinvitesim

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// ErrNotFound is returned by the programmatic API for an unknown task, candidate or test instance.
var ErrNotFound = errors.New("testinvitesim: not found")

// Sim is a simulated TestInvite organization and the http.Handler that serves its API. All methods
// are safe for concurrent use.
type Sim struct {
	opts Options
	log  *zap.Logger

	// mu guards org and rng. Requests that only read take it shared; churn, drift and mutations
	// take it exclusively.
	mu  sync.RWMutex
	org *org
	rng *rand.Rand // churn, drift and API-created records

	faultMu  sync.Mutex
	faults   Faults
	faultRNG *rand.Rand

	churnMu   sync.Mutex
	churnRate float64
	frozen    atomic.Bool

	stats *requestStats
	mux   *http.ServeMux

	closed    chan struct{}
	closeOnce sync.Once
}

// New builds the seeded organization described by opts. It returns an error naming the first
// invalid option.
func New(opts Options) (*Sim, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Sim{
		opts:      o,
		log:       o.Logger,
		org:       generate(o, rand.New(rand.NewPCG(o.Seed, 0x6e0))),
		rng:       rand.New(rand.NewPCG(o.Seed, 0xc4a)),
		faults:    o.Faults,
		faultRNG:  rand.New(rand.NewPCG(o.Seed, 0xfa1)),
		churnRate: o.ChurnRate,
		stats:     newRequestStats(),
		closed:    make(chan struct{}),
	}
	s.mux = s.routes()
	return s, nil
}

// OrganizationID returns the id of the simulated organization.
func (s *Sim) OrganizationID() string { return s.org.id }

// Credentials returns the credentials the simulator expects, with defaults filled in.
func (s *Sim) Credentials() Credentials { return s.opts.Credentials }

// Close releases requests that hang because of an injected timeout. The simulator keeps serving
// other requests.
func (s *Sim) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// Run applies background churn at the configured rate until ctx ends, then returns ctx's error.
func (s *Sim) Run(ctx context.Context) error {
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	var owed float64
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if s.frozen.Load() {
			continue
		}
		s.churnMu.Lock()
		rate := s.churnRate
		s.churnMu.Unlock()
		owed += rate * tick.Seconds()
		if n := int(owed); n > 0 {
			owed -= float64(n)
			s.Churn(n)
		}
	}
}

// SetChurnRate changes the number of background churn events per second applied by Run.
func (s *Sim) SetChurnRate(eventsPerSecond float64) {
	s.churnMu.Lock()
	s.churnRate = max(eventsPerSecond, 0)
	s.churnMu.Unlock()
}

// Freeze pauses background churn and pagination drift. Churn called directly still applies.
func (s *Sim) Freeze() { s.frozen.Store(true) }

// Resume undoes Freeze.
func (s *Sim) Resume() { s.frozen.Store(false) }

// Faults returns the faults in force.
func (s *Sim) Faults() Faults {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.faults
}

// SetFaults replaces the faults in force. It returns an error naming the first invalid setting and
// then keeps the previous faults.
func (s *Sim) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return err
	}
	s.faultMu.Lock()
	s.faults = f.withDefaults()
	s.faultMu.Unlock()
	return nil
}

// Server is a Sim listening on a loopback port, like httptest.Server.
type Server struct {
	*Sim
	// URL is the base URL of the server, for example http://127.0.0.1:41234, without a trailing
	// slash.
	URL string

	srv    *httptest.Server
	cancel context.CancelFunc
	done   chan struct{}
}

// NewServer builds a simulator with New and serves it on a random loopback port. Background churn
// runs while ChurnRate is above zero. Close stops it.
func NewServer(opts Options) (*Server, error) {
	sim, err := New(opts)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := &Server{Sim: sim, srv: httptest.NewServer(sim), cancel: cancel, done: make(chan struct{})}
	srv.URL = srv.srv.URL
	go func() {
		defer close(srv.done)
		_ = sim.Run(ctx)
	}()
	return srv, nil
}

// Client returns an HTTP client configured for the server.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close stops churn, releases hanging requests and shuts the server down, waiting for requests in
// flight.
func (s *Server) Close() {
	s.cancel()
	<-s.done
	s.Sim.Close()
	s.srv.CloseClientConnections()
	s.srv.Close()
}

// ServeHTTP serves the REST API, the legacy API when enabled, and the admin endpoints.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_admin/") {
		s.serveAdmin(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// handlerFunc is an API handler: it returns the status and the JSON body to send.
type handlerFunc func(r *http.Request) (int, []byte)

// route registers h under the route template (method and path relative to
// /api/integration/rest/v1) for both path forms, with and without the v1 segment.
func (s *Sim) route(mux *http.ServeMux, method, path string, h handlerFunc) {
	template := method + " " + path
	s.stats.add(template)
	wrapped := func(w http.ResponseWriter, r *http.Request) { s.serveAPI(w, r, template, true, h) }
	mux.HandleFunc(method+" /api/integration/rest/v1"+path, wrapped)
	mux.HandleFunc(method+" /api/integration/rest"+path, wrapped)
}

func (s *Sim) legacyRoute(mux *http.ServeMux, action string, h handlerFunc) {
	template := "POST /fatih/" + action
	s.stats.add(template)
	mux.HandleFunc("POST /api/v1/fatih/"+action, func(w http.ResponseWriter, r *http.Request) {
		s.serveAPI(w, r, template, false, h)
	})
}

func (s *Sim) routes() *http.ServeMux {
	mux := http.NewServeMux()
	s.route(mux, "GET", "/tasks", s.listTasks)
	s.route(mux, "POST", "/tasks/filter", s.filterTasks)
	s.route(mux, "GET", "/tasks/{taskId}", s.getTask)
	s.route(mux, "POST", "/tasks/{taskId}/candidates", s.createCandidate)
	s.route(mux, "GET", "/tasks/{taskId}/candidates", s.listCandidates)
	s.route(mux, "GET", "/tasks/{taskId}/candidates/{candidateId}", s.getCandidate)
	s.route(mux, "PATCH", "/tasks/{taskId}/candidates/{candidateId}", s.patchCandidate)
	s.route(mux, "DELETE", "/tasks/{taskId}/candidates/{candidateId}", s.deleteCandidate)
	s.route(mux, "GET", "/tasks/{taskId}/test-instances", s.listSessions)
	s.route(mux, "POST", "/tasks/{taskId}/test-instances/filter", s.searchSessions)
	s.route(mux, "GET", "/tasks/{taskId}/test-instances/{testInstanceId}", s.getSession)
	s.route(mux, "POST", "/tasks/{taskId}/test-instances/{testInstanceId}/expand", s.expandSession)
	if s.opts.Legacy {
		s.legacyRoute(mux, "fetch-tasks", s.legacyFetchTasks)
		s.legacyRoute(mux, "query-test-results", s.legacyQueryTestResults)
		s.legacyRoute(mux, "create-tickets", s.legacyCreateTickets)
		s.legacyRoute(mux, "fetch-monitoring-assets", s.legacyFetchMonitoringAssets)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.stats.count("unmatched")
		writeJSON(w, http.StatusNotFound, errorBody(http.StatusNotFound, "no route for "+r.Method+" "+r.URL.Path))
	})
	return mux
}

// serveAPI counts the request, checks credentials (REST only; legacy handlers check the requester
// themselves), injects faults and writes the handler's response.
func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request, template string, rest bool, h handlerFunc) {
	s.stats.count(template)
	f := s.drawFaults()

	if f.delay > 0 {
		select {
		case <-time.After(f.delay):
		case <-r.Context().Done():
			return
		case <-s.closed:
		}
	}
	if f.hang {
		s.stats.fault("timeout")
		select {
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	if f.rateLimited {
		s.stats.fault("rate_limit")
		if f.retryAfterDate {
			w.Header().Set("Retry-After", time.Now().Add(f.retryAfter).UTC().Format(http.TimeFormat))
		} else {
			secs := int64((f.retryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		s.write(w, http.StatusTooManyRequests, errorBody(http.StatusTooManyRequests, "rate limit exceeded"), rest)
		return
	}
	if f.serverError != 0 {
		s.stats.fault("server_error")
		s.write(w, f.serverError, errorBody(f.serverError, http.StatusText(f.serverError)), rest)
		return
	}
	if rest && !s.authorized(r) {
		s.write(w, http.StatusUnauthorized, errorBody(http.StatusUnauthorized, "missing or invalid credentials"), rest)
		return
	}

	ctx := context.WithValue(r.Context(), faultKey{}, f)
	status, body := h(r.WithContext(ctx))
	if status == http.StatusOK {
		switch {
		case f.truncate:
			s.stats.fault("truncate")
			body = s.wrap(body, rest)
			body = body[:len(body)/2]
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = w.Write(body)
			if fl, ok := w.(http.Flusher); ok {
				// Flushing sends the half body chunked, so no Content-Length announces the cut.
				fl.Flush()
			}
			return
		case f.malformed:
			s.stats.fault("malformed")
			writeJSON(w, status, []byte(`{"candidates":[{"candidateId":"x",]]`))
			return
		}
	}
	s.write(w, status, body, rest)
}

func (s *Sim) wrap(body []byte, rest bool) []byte {
	if !rest || !s.opts.WrapPayload {
		return body
	}
	out := make([]byte, 0, len(body)+12)
	out = append(out, `{"payload":`...)
	out = append(out, body...)
	return append(out, '}')
}

func (s *Sim) write(w http.ResponseWriter, status int, body []byte, rest bool) {
	writeJSON(w, status, s.wrap(body, rest))
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func errorBody(status int, msg string) []byte {
	b := []byte(`{"status":`)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"message":`...)
	b = appendString(b, msg)
	return append(b, '}')
}

func apiError(status int, msg string) (int, []byte) { return status, errorBody(status, msg) }

// authorized reports whether r carries the expected REST credentials.
func (s *Sim) authorized(r *http.Request) bool {
	c := s.opts.Credentials
	switch c.Scheme {
	case AuthNone:
		return true
	case AuthBasic:
		user, pass, ok := r.BasicAuth()
		return ok && equal(user, s.org.id) && equal(pass, c.PrivateKey)
	case AuthBearer:
		auth := r.Header.Get("Authorization")
		const prefix = "Bearer "
		if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
			return false
		}
		return equal(auth[len(prefix):], c.Token)
	case AuthHeaders:
		for name, tmpl := range c.Headers {
			if !equal(r.Header.Get(name), s.expand(tmpl)) {
				return false
			}
		}
		return true
	}
	return false
}

func (s *Sim) expand(tmpl string) string {
	c := s.opts.Credentials
	return strings.NewReplacer("{organization_id}", s.org.id, "{private_key}", c.PrivateKey, "{token}", c.Token).Replace(tmpl)
}

func equal(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// BasicAuthorization returns the Authorization header value of HTTP basic authentication with the
// organization id and private key, for callers that are not the tisync client.
func (s *Sim) BasicAuthorization() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(s.org.id+":"+s.opts.Credentials.PrivateKey))
}

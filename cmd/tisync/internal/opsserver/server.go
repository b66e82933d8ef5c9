// Package opsserver serves tisync's operational HTTP endpoints: Prometheus metrics, liveness and
// readiness.
package opsserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// Config configures the HTTP listener.
type Config struct {
	// Listen is the host:port of the listener; empty or "none" turns it off. Default: 127.0.0.1:9464.
	Listen string `yaml:"listen"`
	// ReadyTimeout bounds all readiness checks of one /readyz request. Default: 5s.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// Pprof serves Go's profiler under /debug/pprof/. Default: false.
	Pprof bool `yaml:"pprof"`
}

// DefaultConfig returns the settings used when the configuration leaves them unset.
func DefaultConfig() Config {
	return Config{Listen: "127.0.0.1:9464", ReadyTimeout: 5 * time.Second}
}

// Enabled reports whether the listener is on.
func (c Config) Enabled() bool {
	l := strings.TrimSpace(c.Listen)
	return l != "" && l != "none"
}

// Validate checks the settings, naming each bad one with its value and what is expected.
func (c Config) Validate() error {
	var errs []error
	if c.Enabled() {
		if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("listen: %q is invalid: expected host:port such as 127.0.0.1:9464, or none", c.Listen))
		}
	}
	if c.ReadyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ready_timeout: %s is invalid: expected a positive duration such as 5s", c.ReadyTimeout))
	}
	return errors.Join(errs...)
}

// Check is one readiness condition. Fn returns nil when the condition holds.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Server is the operational HTTP server. Add checks before Run.
type Server struct {
	cfg      Config
	log      *zap.Logger
	gatherer prometheus.Gatherer

	mu     sync.Mutex
	checks []Check
	addr   string
	ready  chan struct{}
}

// New returns a server that exposes the metrics of gatherer.
func New(cfg Config, gatherer prometheus.Gatherer, log *zap.Logger) *Server {
	if log == nil {
		log = zap.NewNop()
	}
	return &Server{cfg: cfg, log: log, gatherer: gatherer, ready: make(chan struct{})}
}

// AddCheck adds a readiness check. It is safe to call while the server runs.
func (s *Server) AddCheck(c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, c)
}

// Addr returns the address the server listens on, once Run has bound it, or "".
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Listening is closed once the listener is bound.
func (s *Server) Listening() <-chan struct{} { return s.ready }

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	if s.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

// readyReport is the JSON body of /readyz.
type readyReport struct {
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks"`
}

func (s *Server) serveReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ReadyTimeout)
	defer cancel()
	s.mu.Lock()
	checks := append([]Check(nil), s.checks...)
	s.mu.Unlock()

	report := readyReport{Ready: true, Checks: map[string]string{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Fn(ctx)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				report.Ready = false
				report.Checks[c.Name] = err.Error()
				return
			}
			report.Checks[c.Name] = "ok"
		}()
	}
	wg.Wait()

	w.Header().Set("Content-Type", "application/json")
	if !report.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
		names := make([]string, 0, len(report.Checks))
		for name, state := range report.Checks {
			if state != "ok" {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		s.log.Debug("not ready", zap.Strings("failing_checks", names))
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(report)
}

// Run serves until ctx is done, then shuts the server down, giving open requests 5 seconds.
func (s *Server) Run(ctx context.Context) error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("http listener on %s: %w; set http.listen to a free address or none", s.cfg.Listen, err)
	}
	s.mu.Lock()
	s.addr = l.Addr().String()
	s.mu.Unlock()
	close(s.ready)

	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("HTTP listener started", zap.String("address", s.addr), zap.Strings("paths", []string{"/metrics", "/healthz", "/readyz"}))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()

	select {
	case err := <-served:
		return fmt.Errorf("http listener: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		srv.Close()
	}
	<-served
	return nil
}

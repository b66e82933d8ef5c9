// Command testinvite-sim serves a simulated TestInvite organization over the documented REST API,
// for demos, tests and benchmarks of tisync. See package testinvitesim for what it simulates.
//
// Usage:
//
//	TESTINVITE_SIM_PRIVATE_KEY=demo-key testinvite-sim -tasks 5 -candidates-per-task 200 -churn-rate 2
//
// The private key comes from TESTINVITE_SIM_PRIVATE_KEY and the bearer token from
// TESTINVITE_SIM_TOKEN; without them the simulator uses the well-known demo defaults
// "sim-private-key" and "sim-token" and logs that at start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:])
	switch {
	case errors.Is(err, flag.ErrHelp):
		stop()
		os.Exit(0)
	case err != nil:
		fmt.Fprintln(os.Stderr, "testinvite-sim:", err)
		stop()
		os.Exit(1)
	}
}

// flags are the command-line settings.
type flags struct {
	addr      string
	logLevel  string
	logJSON   bool
	epoch     string
	opts      testinvitesim.Options
	keySource string
}

func parseFlags(args []string) (*flags, error) {
	f := &flags{}
	o := &f.opts
	fs := flag.NewFlagSet("testinvite-sim", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: testinvite-sim [flags]")
		fmt.Fprintln(fs.Output(), "Serves a simulated TestInvite REST API. The private key comes from TESTINVITE_SIM_PRIVATE_KEY")
		fmt.Fprintln(fs.Output(), "(default sim-private-key) and the bearer token from TESTINVITE_SIM_TOKEN. Flags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address; the admin endpoints are unauthenticated, so keep it on loopback")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug (one line per request), info, warn or error")
	fs.BoolVar(&f.logJSON, "log-json", false, "log JSON lines instead of console text")
	fs.Uint64Var(&o.Seed, "seed", 1, "seed of the organization, churn and faults")
	fs.StringVar(&o.OrganizationID, "organization-id", "", "organization id (default: derived from the seed)")
	fs.IntVar(&o.Tasks, "tasks", 3, "number of tasks")
	fs.IntVar(&o.StepsPerTask, "steps", 2, "steps per task")
	fs.IntVar(&o.CandidatesPerTask, "candidates-per-task", 20, "candidates per task")
	fs.IntVar(&o.Candidates, "candidates", 0, "total candidates spread over the tasks (overrides -candidates-per-task)")
	fs.IntVar(&o.Sessions, "sessions", 0, "total test instances (default 2 per candidate; -1 for none)")
	fs.StringVar(&f.epoch, "epoch", "", "simulated time at start, RFC 3339 (default 2025-01-06T00:00:00Z)")
	fs.StringVar(&o.PublicURL, "public-url", "", "site prefix of direct access URLs (default https://www.testinvite.com)")
	fs.Float64Var(&o.ChurnRate, "churn-rate", 0, "churn events per second")
	fs.IntVar(&o.MaxTasks, "max-tasks", 0, "most tasks churn may create the organization up to (0 for no cap)")
	fs.BoolVar(&o.WrapPayload, "wrap-payload", false, `wrap every REST response in {"payload": ...}`)
	fs.BoolVar(&o.Legacy, "legacy", true, "serve the legacy /api/v1/fatih endpoints")
	fs.StringVar(&o.Credentials.Scheme, "auth-scheme", "basic", "REST credential check: basic, bearer, headers or none")

	fl := &o.Faults
	fs.DurationVar(&fl.Latency, "latency", 0, "fixed latency added to every response")
	fs.DurationVar(&fl.LatencyJitter, "latency-jitter", 0, "random latency in [0, jitter) added to every response")
	fs.Float64Var(&fl.RateLimitRate, "rate-limit-rate", 0, "share of requests that get 429 (0 to 1)")
	fs.DurationVar(&fl.RetryAfter, "retry-after", time.Second, "Retry-After of 429 responses")
	fs.BoolVar(&fl.RetryAfterDate, "retry-after-date", false, "send Retry-After as an HTTP date")
	fs.Float64Var(&fl.ServerErrorRate, "server-error-rate", 0, "share of requests that get -server-error-status (0 to 1)")
	fs.IntVar(&fl.ServerErrorStatus, "server-error-status", 503, "status of injected server errors")
	fs.Float64Var(&fl.TimeoutRate, "timeout-rate", 0, "share of requests that hang until the client gives up (0 to 1)")
	fs.Float64Var(&fl.TruncateRate, "truncate-rate", 0, "share of responses with a truncated body (0 to 1)")
	fs.Float64Var(&fl.MalformedRate, "malformed-rate", 0, "share of responses with invalid JSON (0 to 1)")
	fs.IntVar(&fl.MaxPageSize, "max-page-size", 0, "server-side page-size cap (0 for none)")
	fs.Float64Var(&fl.DriftRate, "drift-rate", 0, "share of requests for page 2 and later that change the list first (0 to 1)")
	fs.IntVar(&fl.DriftInserts, "drift-inserts", 0, "records created per drift (default 1 when -drift-rate is set)")
	fs.IntVar(&fl.DriftDeletes, "drift-deletes", 0, "untouched candidates deleted per drift")

	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if f.epoch != "" {
		t, err := time.Parse(time.RFC3339, f.epoch)
		if err != nil {
			return nil, fmt.Errorf("-epoch %q is invalid: expected RFC 3339 such as 2025-01-06T00:00:00Z", f.epoch)
		}
		o.Epoch = t
	}
	f.keySource = "demo default"
	if v := os.Getenv("TESTINVITE_SIM_PRIVATE_KEY"); v != "" {
		o.Credentials.PrivateKey = v
		f.keySource = "TESTINVITE_SIM_PRIVATE_KEY"
	}
	o.Credentials.Token = os.Getenv("TESTINVITE_SIM_TOKEN")
	return f, nil
}

func newLogger(level string, json bool) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("-log-level %q is invalid: expected debug, info, warn or error", level)
	}
	cfg := zap.NewProductionConfig()
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.EncoderConfig.EncodeDuration = zapcore.StringDurationEncoder
	if !json {
		cfg.Encoding = "console"
	}
	return cfg.Build()
}

func run(ctx context.Context, args []string) error {
	f, err := parseFlags(args)
	if err != nil {
		return err
	}
	log, err := newLogger(f.logLevel, f.logJSON)
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck // nothing to do about a failed flush at exit
	f.opts.Logger = log

	began := time.Now()
	sim, err := testinvitesim.New(f.opts)
	if err != nil {
		return fmt.Errorf("build simulator: %w", err)
	}
	tasks, cands, sessions := sim.Counts()
	log.Info("organization generated", zap.Duration("took", time.Since(began)),
		zap.Int("tasks", tasks), zap.Int("candidates", cands), zap.Int("test_instances", sessions))

	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	creds := sim.Credentials()
	log.Info("serving TestInvite simulator",
		zap.String("url", "http://"+ln.Addr().String()),
		zap.String("organization_id", sim.OrganizationID()),
		zap.String("auth_scheme", creds.Scheme),
		zap.String("private_key_source", f.keySource),
		zap.Float64("churn_rate", f.opts.ChurnRate))
	fmt.Fprintf(os.Stderr, "\n  organization id: %s\n  credentials:     %s\n  truth dump:      curl http://%s/_admin/truth\n\n",
		sim.OrganizationID(), credentialHint(creds, f.keySource), ln.Addr())

	srv := &http.Server{
		Handler:           accessLog(log, sim),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	churnCtx, stopChurn := context.WithCancel(ctx)
	defer stopChurn()
	churnDone := make(chan struct{})
	go func() {
		defer close(churnDone)
		_ = sim.Run(churnCtx)
	}()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down")
		sim.Close() // release requests held by the timeout fault
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = srv.Shutdown(shutdownCtx)
		<-serveErr
	}
	stopChurn()
	<-churnDone
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	st := sim.Stats()
	log.Info("stopped", zap.Int64("requests", st.Total))
	return err
}

// credentialHint describes how to authenticate, showing the private key only when it is the demo
// default.
func credentialHint(c testinvitesim.Credentials, keySource string) string {
	key := "<value of TESTINVITE_SIM_PRIVATE_KEY>"
	if keySource == "demo default" {
		key = c.PrivateKey + " (demo default; set TESTINVITE_SIM_PRIVATE_KEY to change it)"
	}
	switch c.Scheme {
	case testinvitesim.AuthBasic:
		return "HTTP basic, user = organization id, password = private key " + key
	case testinvitesim.AuthBearer:
		return "Authorization: Bearer <TESTINVITE_SIM_TOKEN, demo default sim-token>"
	case testinvitesim.AuthHeaders:
		return "headers X-Organization-Id = organization id, X-Private-Key = private key " + key
	}
	return "none"
}

// accessLog logs one line per request at debug level.
func accessLog(log *zap.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ce := log.Check(zap.DebugLevel, "request"); ce != nil {
			began := time.Now()
			rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
			next.ServeHTTP(rec, r)
			ce.Write(zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Int("status", rec.status),
				zap.Duration("took", time.Since(began)))
			return
		}
		next.ServeHTTP(w, r)
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// Flush keeps truncated-body faults working through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

package testinvite

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

// maxResponseBytes bounds the body of one response. A page of 1000 detailed test instances from
// the simulator is about 1.7 MB.
const maxResponseBytes = 64 << 20

// Path prefixes of the two API generations. The REST documentation shows tasks/filter and the
// expand call without the v1 segment and every other route with it; the client follows it.
const (
	restV1     = "/api/integration/rest/v1"
	restNoV1   = "/api/integration/rest"
	legacyPath = "/api/v1/fatih"
)

// Clock is the time source of retries and rate limiting, replaceable in tests.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// Sleep waits for d or until ctx ends, returning ctx's error in that case.
	Sleep(ctx context.Context, d time.Duration) error
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Option changes a Client built by New.
type Option func(*Client)

// WithHTTPClient sets the HTTP client. Default: a client with its own transport and no overall
// timeout (Config.RequestTimeout bounds each attempt).
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithClock sets the clock of retries and rate limiting. Default: the system clock.
func WithClock(clock Clock) Option { return func(c *Client) { c.clock = clock } }

// WithAuthenticator replaces the authenticator built from Config.Auth.
func WithAuthenticator(a Authenticator) Option { return func(c *Client) { c.auth = a } }

// WithJitter sets the function that draws a backoff wait below a ceiling. Default: uniform in
// [0, ceiling), which is full jitter.
func WithJitter(jitter func(ceiling time.Duration) time.Duration) Option {
	return func(c *Client) { c.jitter = jitter }
}

// Client reads TestInvite's REST API for one organization. It is safe for concurrent use. Share one
// Client between everything that talks to the same organization, so that the rate limit and the
// page-size caps it learns apply to all of them.
type Client struct {
	cfg    Config
	mode   Mode
	base   string
	hc     *http.Client
	auth   Authenticator
	clock  Clock
	jitter func(time.Duration) time.Duration
	log    *zap.Logger
	*shared
}

// shared is the state of a Client that WithMode copies share.
type shared struct {
	limiter *rate.Limiter // nil when Config.RateLimit.RPS is 0
	metrics *metrics
	scrub   scrubber
	caps    sync.Map // route template → page-size cap observed (int)
	warned  sync.Map // route template → struct{} once a short page was logged
}

// New returns a Client for cfg. It validates cfg (see Config.Validate) and checks that the secrets
// the auth scheme needs are set. A nil logger logs nothing; a nil registerer creates the metrics
// without registering them. Metrics already registered by another Client on the same registerer
// are shared.
func New(cfg Config, logger *zap.Logger, reg prometheus.Registerer, opts ...Option) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("testinvite config: %w", err)
	}
	if err := cfg.CheckSecrets(); err != nil {
		return nil, fmt.Errorf("testinvite config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	c := &Client{
		cfg:    cfg,
		mode:   cfg.Mode,
		base:   strings.TrimRight(cfg.BaseURL, "/"),
		auth:   newAuthenticator(cfg),
		clock:  systemClock{},
		jitter: func(ceiling time.Duration) time.Duration { return rand.N(ceiling) },
		log:    logger.Named("testinvite"),
		shared: &shared{metrics: m, scrub: newScrubber(cfg)},
	}
	if cfg.RateLimit.RPS > 0 {
		c.limiter = rate.NewLimiter(rate.Limit(cfg.RateLimit.RPS), cfg.RateLimit.Burst)
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		c.hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	return c, nil
}

// WithMode returns a Client that reads in mode m and shares everything else, rate limit included,
// with c.
func (c *Client) WithMode(m Mode) *Client {
	cp := *c
	cp.mode = m
	return &cp
}

// Mode returns the mode of reads.
func (c *Client) Mode() Mode { return c.mode }

// OrganizationID returns the organization the client reads.
func (c *Client) OrganizationID() string { return c.cfg.OrganizationID }

// call describes one API request.
type call struct {
	endpoint string // route template, e.g. "GET /tasks/{taskId}"
	method   string
	path     string // below the base URL, ids already checked
	query    url.Values
	body     any // JSON-encoded once; nil sends no body
	noAuth   bool
	// idempotent calls are retried on every transient failure. The others are retried only on
	// 429, which the server sends before doing anything.
	idempotent bool
	// decode reads a 2xx body; a *DecodeError that is Temporary makes the attempt retryable.
	decode func(body []byte) error
	// rawOnly makes a page decode only the id and raw bytes of each record.
	rawOnly bool
}

// Retry reasons, the reason label of tisync_testinvite_retries_total.
const (
	reasonStatus429 = "status_429"
	reasonStatus5xx = "status_5xx"
	reasonTimeout   = "timeout"
	reasonConn      = "connection"
	reasonMalformed = "malformed_body"
)

// do sends a call with rate limiting and retries. It returns ctx's error when ctx ends, an
// *APIError for a non-retryable status, a *DecodeError for an undecodable body and a *RetryError
// when the retries are used up.
func (c *Client) do(ctx context.Context, cl *call) error {
	var payload []byte
	if cl.body != nil {
		var err error
		if payload, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("testinvite: %s: encode request: %w", cl.endpoint, err)
		}
	}
	start := c.clock.Now()
	for attempt := 1; ; attempt++ {
		if err := c.waitRateLimit(ctx); err != nil {
			return err
		}
		reason, retryAfter, err := c.attempt(ctx, cl, payload)
		if err == nil {
			return nil
		}
		if reason == "" || !cl.idempotent && reason != reasonStatus429 {
			return err
		}
		elapsed := c.clock.Now().Sub(start)
		if attempt >= c.cfg.Retry.MaxAttempts {
			return &RetryError{Endpoint: cl.endpoint, Attempts: attempt, Elapsed: elapsed, Reason: "max_attempts", Err: err}
		}
		delay := retryAfter
		if delay <= 0 {
			delay = c.backoff(attempt)
		}
		if elapsed+delay > c.cfg.Retry.MaxElapsed {
			return &RetryError{Endpoint: cl.endpoint, Attempts: attempt, Elapsed: elapsed, Reason: "max_elapsed", Err: err}
		}
		c.metrics.retries.WithLabelValues(cl.endpoint, reason).Inc()
		c.log.Warn("retrying request",
			zap.String("endpoint", cl.endpoint), zap.Int("attempt", attempt), zap.String("reason", reason),
			zap.Duration("delay", delay), zap.Error(err))
		if err := c.clock.Sleep(ctx, delay); err != nil {
			return err
		}
	}
}

// backoff returns the full-jitter wait after attempt n (1-based).
func (c *Client) backoff(n int) time.Duration {
	ceiling := c.cfg.Retry.MaxBackoff
	if n-1 < 32 {
		if d := c.cfg.Retry.InitialBackoff << (n - 1); d > 0 && d < ceiling {
			ceiling = d
		}
	}
	return c.jitter(ceiling)
}

func (c *Client) waitRateLimit(ctx context.Context) error {
	if c.limiter == nil {
		return nil
	}
	now := c.clock.Now()
	r := c.limiter.ReserveN(now, 1)
	d := r.DelayFrom(now)
	if d <= 0 {
		return nil
	}
	c.metrics.rateLimitWait.Add(d.Seconds())
	if err := c.clock.Sleep(ctx, d); err != nil {
		r.CancelAt(c.clock.Now())
		return err
	}
	return nil
}

// attempt sends the call once. On failure it returns the retry reason ("" when the error must not
// be retried), the wait the server asked for and the error.
func (c *Client) attempt(ctx context.Context, cl *call, payload []byte) (reason string, retryAfter time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, c.cfg.RequestTimeout)
	defer cancel()

	u := c.base + cl.path
	if len(cl.query) > 0 {
		u += "?" + cl.query.Encode()
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u, body)
	if err != nil {
		return "", 0, fmt.Errorf("testinvite: %s: build request: %w", cl.endpoint, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if !cl.noAuth {
		c.auth.Authenticate(req)
	}

	began := time.Now()
	resp, err := c.hc.Do(req)
	var data []byte
	if err == nil {
		data, err = io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
		resp.Body.Close()
	}
	c.metrics.duration.WithLabelValues(cl.endpoint).Observe(time.Since(began).Seconds())
	if err != nil {
		c.metrics.requests.WithLabelValues(cl.endpoint, "error").Inc()
		return c.transportError(ctx, cl, err)
	}
	c.metrics.requests.WithLabelValues(cl.endpoint, strconv.Itoa(resp.StatusCode)).Inc()
	if len(data) > maxResponseBytes {
		return "", 0, &DecodeError{Endpoint: cl.endpoint, Err: fmt.Errorf("body larger than %d bytes", maxResponseBytes)}
	}

	if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
		if cl.decode == nil {
			return "", 0, nil
		}
		err := cl.decode(data)
		var de *DecodeError
		if errors.As(err, &de) {
			de.Body = c.scrub.scrub(de.Body)
			if de.Temporary() {
				return reasonMalformed, 0, err
			}
		}
		return "", 0, err
	}

	apiErr := &APIError{
		StatusCode: resp.StatusCode,
		Method:     cl.method,
		Endpoint:   cl.endpoint,
		RequestID:  requestID(resp.Header),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.clock.Now()),
		Body:       c.scrub.scrub(string(excerpt(data, 0))),
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return reasonStatus429, apiErr.RetryAfter, apiErr
	case resp.StatusCode >= 500 && resp.StatusCode <= 599:
		return reasonStatus5xx, apiErr.RetryAfter, apiErr
	}
	return "", 0, apiErr
}

// transportError classifies a failure to get a response. The caller's cancellation ends the call.
// Certificate errors are not retried, but timeouts and connection errors are.
func (c *Client) transportError(ctx context.Context, cl *call, err error) (string, time.Duration, error) {
	if ctx.Err() != nil {
		return "", 0, ctx.Err()
	}
	wrapped := fmt.Errorf("testinvite: %s: %w", cl.endpoint, err)
	var certErr *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuthority) || errors.As(err, &hostErr) {
		return "", 0, wrapped
	}
	var netErr interface{ Timeout() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout() {
		return reasonTimeout, 0, wrapped
	}
	return reasonConn, 0, wrapped
}

func requestID(h http.Header) string {
	for _, k := range []string{"X-Request-Id", "X-Correlation-Id", "X-Amzn-Requestid"} {
		if v := h.Get(k); v != "" {
			if len(v) > 128 {
				v = v[:128]
			}
			return v
		}
	}
	return ""
}

// parseRetryAfter reads a Retry-After value in seconds or as an HTTP date; it returns 0 when the
// value is absent, invalid or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// checkID returns an error wrapping ErrInvalidID unless id is a non-empty string of ASCII letters
// and digits, so that an id never changes the meaning of a URL.
func checkID(name, id string) error {
	if !orgIDPattern.MatchString(id) {
		return fmt.Errorf("testinvite: %s %q: %w: expected ASCII letters and digits", name, id, ErrInvalidID)
	}
	return nil
}

package testinvitesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Auth schemes the simulator can check. They match the schemes of the tisync client.
const (
	// AuthBasic expects HTTP basic authentication with the organization id as user name and the
	// private key as password.
	AuthBasic = "basic"
	// AuthBearer expects "Authorization: Bearer <token>".
	AuthBearer = "bearer"
	// AuthHeaders expects every header of Credentials.Headers with its expanded value.
	AuthHeaders = "headers"
	// AuthNone accepts every request.
	AuthNone = "none"
)

// Credentials are the credentials the simulator expects from REST callers. The legacy endpoints
// always check the requester object in the body against the organization id and PrivateKey.
type Credentials struct {
	// Scheme is AuthBasic, AuthBearer, AuthHeaders or AuthNone. Default AuthBasic.
	Scheme string
	// PrivateKey is the organization's private key. Default "sim-private-key".
	PrivateKey string
	// Token is the bearer token for AuthBearer. Default "sim-token".
	Token string
	// Headers maps header names to expected values for AuthHeaders. A value may contain
	// {organization_id}, {private_key} and {token}, which are replaced before the comparison.
	// Default X-Organization-Id: {organization_id} and X-Private-Key: {private_key}.
	Headers map[string]string
}

// Options configures a simulator. The zero value is a small valid organization.
type Options struct {
	// Seed seeds every random choice: the organization, churn and faults. Default 1.
	Seed uint64
	// OrganizationID is the id of the simulated organization. Default: 20 characters derived from
	// Seed.
	OrganizationID string
	// Tasks is the number of tasks created at start. Default 3.
	Tasks int
	// StepsPerTask is the number of steps of each task. Default 2.
	StepsPerTask int
	// CandidatesPerTask is the number of candidates of each task. Default 20. Ignored when
	// Candidates is set.
	CandidatesPerTask int
	// Candidates is the total number of candidates, spread evenly over the tasks. Default 0, which
	// means Tasks × CandidatesPerTask.
	Candidates int
	// Sessions is the total number of test instances, spread at random over about 80 percent of
	// the candidates. Default: 2 per candidate. Set it to -1 for none.
	Sessions int
	// Epoch is the simulated time at which the generated history ends and churn begins.
	// Default 2025-01-06T00:00:00Z.
	Epoch time.Time
	// PublicURL is the site prefix of direct access URLs. Default "https://www.testinvite.com".
	PublicURL string
	// Credentials is the credential check of the REST endpoints.
	Credentials Credentials
	// WrapPayload wraps every response body in {"payload": ...}.
	WrapPayload bool
	// Legacy serves the legacy /api/v1/fatih endpoints.
	Legacy bool
	// ChurnRate is the number of churn events per second applied in the background while the
	// simulator runs. Default 0 (no background churn; Churn applies events on demand).
	ChurnRate float64
	// MaxTasks caps the tasks churn creates: once the organization has this many, churn creates
	// candidates instead. Default 0 (no cap).
	MaxTasks int
	// Faults are the faults injected from the start.
	Faults Faults
	// Logger receives request and churn logs. Default zap.NewNop().
	Logger *zap.Logger
}

// Faults are the injected faults. Every rate is a probability in 0..1 applied per REST request;
// admin endpoints are never faulted.
type Faults struct {
	// Latency delays every response.
	Latency time.Duration `json:"latency"`
	// LatencyJitter adds a uniformly random delay in [0, LatencyJitter).
	LatencyJitter time.Duration `json:"latency_jitter"`
	// RateLimitRate is the share of requests that get 429 Too Many Requests.
	RateLimitRate float64 `json:"rate_limit_rate"`
	// RetryAfter is the Retry-After of the 429 responses, sent in whole seconds (rounded up).
	// Default 1s.
	RetryAfter time.Duration `json:"retry_after"`
	// RetryAfterDate sends Retry-After as an HTTP date instead of seconds.
	RetryAfterDate bool `json:"retry_after_date"`
	// ServerErrorRate is the share of requests that get ServerErrorStatus.
	ServerErrorRate float64 `json:"server_error_rate"`
	// ServerErrorStatus is the status of injected server errors. Default 503.
	ServerErrorStatus int `json:"server_error_status"`
	// TimeoutRate is the share of requests that hang until the client gives up or the simulator
	// closes.
	TimeoutRate float64 `json:"timeout_rate"`
	// TruncateRate is the share of successful responses whose body is cut in half. The response
	// carries no Content-Length, so the client sees well-formed HTTP with truncated JSON.
	TruncateRate float64 `json:"truncate_rate"`
	// MalformedRate is the share of successful responses whose body is replaced by invalid JSON.
	MalformedRate float64 `json:"malformed_rate"`
	// MaxPageSize caps the page size of every list and search; 0 means no cap. A capped page
	// reports the capped limit in its pagination, and next and previous use it.
	MaxPageSize int `json:"max_page_size"`
	// DriftRate is the share of list and search requests for a page after the first that change
	// the listed collection just before they are served.
	DriftRate float64 `json:"drift_rate"`
	// DriftInserts is the number of records each drift creates at the front of the list.
	// Default 1 when DriftRate is set.
	DriftInserts int `json:"drift_inserts"`
	// DriftDeletes is the number of untouched candidates each drift deletes from a candidate
	// list (other lists only receive inserts, because TestInvite never deletes a test instance
	// or a task through the API).
	DriftDeletes int `json:"drift_deletes"`
}

// MarshalJSON encodes durations as Go duration strings such as "150ms".
func (f Faults) MarshalJSON() ([]byte, error) {
	type plain Faults
	return json.Marshal(struct {
		plain
		Latency       string `json:"latency"`
		LatencyJitter string `json:"latency_jitter"`
		RetryAfter    string `json:"retry_after"`
	}{plain(f), f.Latency.String(), f.LatencyJitter.String(), f.RetryAfter.String()})
}

// UnmarshalJSON decodes durations given as Go duration strings ("150ms") or as numbers of
// milliseconds.
func (f *Faults) UnmarshalJSON(data []byte) error {
	type plain Faults
	var w struct {
		plain
		Latency       json.RawMessage `json:"latency"`
		LatencyJitter json.RawMessage `json:"latency_jitter"`
		RetryAfter    json.RawMessage `json:"retry_after"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	*f = Faults(w.plain)
	for _, d := range []struct {
		name string
		raw  json.RawMessage
		dst  *time.Duration
	}{{"latency", w.Latency, &f.Latency}, {"latency_jitter", w.LatencyJitter, &f.LatencyJitter}, {"retry_after", w.RetryAfter, &f.RetryAfter}} {
		v, err := parseDuration(d.raw)
		if err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
		*d.dst = v
	}
	return nil
}

func parseDuration(raw json.RawMessage) (time.Duration, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return 0, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return time.ParseDuration(s)
	}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err != nil {
		return 0, fmt.Errorf("invalid duration %s: expected a string like \"150ms\" or milliseconds", raw)
	}
	return time.Duration(ms * float64(time.Millisecond)), nil
}

// Validate returns an error naming the first invalid fault setting.
func (f Faults) Validate() error {
	rates := []struct {
		name string
		v    float64
	}{
		{"rate_limit_rate", f.RateLimitRate}, {"server_error_rate", f.ServerErrorRate},
		{"timeout_rate", f.TimeoutRate}, {"truncate_rate", f.TruncateRate},
		{"malformed_rate", f.MalformedRate}, {"drift_rate", f.DriftRate},
	}
	for _, r := range rates {
		if r.v < 0 || r.v > 1 {
			return fmt.Errorf("%s: %v is invalid: expected 0 to 1", r.name, r.v)
		}
	}
	switch {
	case f.Latency < 0:
		return fmt.Errorf("latency: %v is invalid: expected 0 or more", f.Latency)
	case f.LatencyJitter < 0:
		return fmt.Errorf("latency_jitter: %v is invalid: expected 0 or more", f.LatencyJitter)
	case f.RetryAfter < 0:
		return fmt.Errorf("retry_after: %v is invalid: expected 0 or more", f.RetryAfter)
	case f.ServerErrorStatus != 0 && (f.ServerErrorStatus < 500 || f.ServerErrorStatus > 599):
		return fmt.Errorf("server_error_status: %d is invalid: expected 500 to 599", f.ServerErrorStatus)
	case f.MaxPageSize < 0:
		return fmt.Errorf("max_page_size: %d is invalid: expected 0 (no cap) or more", f.MaxPageSize)
	case f.DriftInserts < 0:
		return fmt.Errorf("drift_inserts: %d is invalid: expected 0 or more", f.DriftInserts)
	case f.DriftDeletes < 0:
		return fmt.Errorf("drift_deletes: %d is invalid: expected 0 or more", f.DriftDeletes)
	}
	return nil
}

func (f Faults) withDefaults() Faults {
	if f.RetryAfter == 0 {
		f.RetryAfter = time.Second
	}
	if f.ServerErrorStatus == 0 {
		f.ServerErrorStatus = 503
	}
	if f.DriftRate > 0 && f.DriftInserts == 0 && f.DriftDeletes == 0 {
		f.DriftInserts = 1
	}
	return f
}

var defaultEpoch = time.Date(2025, 1, 6, 0, 0, 0, 0, time.UTC)

func (o Options) withDefaults() (Options, error) {
	if o.Seed == 0 {
		o.Seed = 1
	}
	if o.Tasks == 0 {
		o.Tasks = 3
	}
	if o.StepsPerTask == 0 {
		o.StepsPerTask = 2
	}
	if o.CandidatesPerTask == 0 {
		o.CandidatesPerTask = 20
	}
	if o.Candidates == 0 {
		o.Candidates = o.Tasks * o.CandidatesPerTask
	}
	switch {
	case o.Sessions == 0:
		o.Sessions = 2 * o.Candidates
	case o.Sessions < 0:
		o.Sessions = 0
	}
	if o.Epoch.IsZero() {
		o.Epoch = defaultEpoch
	}
	o.Epoch = o.Epoch.UTC().Truncate(time.Second)
	if o.PublicURL == "" {
		o.PublicURL = "https://www.testinvite.com"
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	c := &o.Credentials
	if c.Scheme == "" {
		c.Scheme = AuthBasic
	}
	if c.PrivateKey == "" {
		c.PrivateKey = "sim-private-key"
	}
	if c.Token == "" {
		c.Token = "sim-token"
	}
	if c.Scheme == AuthHeaders && len(c.Headers) == 0 {
		c.Headers = map[string]string{
			"X-Organization-Id": "{organization_id}",
			"X-Private-Key":     "{private_key}",
		}
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}

	switch {
	case o.Tasks < 0:
		return o, fmt.Errorf("tasks: %d is invalid: expected 1 or more", o.Tasks)
	case o.StepsPerTask < 1 || o.StepsPerTask > 50:
		return o, fmt.Errorf("steps per task: %d is invalid: expected 1 to 50", o.StepsPerTask)
	case o.Candidates < 0 || o.CandidatesPerTask < 0:
		return o, errors.New("candidates: negative count is invalid: expected 0 or more")
	case o.Sessions > 0 && o.Candidates == 0:
		return o, fmt.Errorf("sessions: %d test instances need at least one candidate", o.Sessions)
	case o.ChurnRate < 0:
		return o, fmt.Errorf("churn rate: %v is invalid: expected 0 or more events per second", o.ChurnRate)
	case o.OrganizationID != "" && !validID(o.OrganizationID):
		return o, fmt.Errorf("organization id: %q is invalid: expected letters and digits", o.OrganizationID)
	}
	switch c.Scheme {
	case AuthBasic, AuthBearer, AuthHeaders, AuthNone:
	default:
		return o, fmt.Errorf("credentials scheme: %q is invalid: expected basic, bearer, headers or none", c.Scheme)
	}
	if err := o.Faults.Validate(); err != nil {
		return o, fmt.Errorf("faults: %w", err)
	}
	o.Faults = o.Faults.withDefaults()
	return o, nil
}

func validID(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

package testinvite

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Secret is a credential. Its String, GoString, MarshalText and MarshalJSON methods print
// "[REDACTED]", so that a Config printed or logged by accident shows no secret.
type Secret string

const redacted = "[REDACTED]"

// String returns "[REDACTED]", or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns the same as String.
func (s Secret) GoString() string { return s.String() }

// MarshalText returns the same as String.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// MarshalJSON returns the same as String, quoted.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// Reveal returns the secret itself, for the code that sends it.
func (s Secret) Reveal() string { return string(s) }

// Auth schemes of AuthConfig.Scheme.
const (
	// SchemeBasic sends HTTP basic authentication with the organization id as user name and the
	// private key as password.
	SchemeBasic = "basic"
	// SchemeBearer sends "Authorization: Bearer <token>".
	SchemeBearer = "bearer"
	// SchemeHeaders sends the headers of AuthConfig.Headers.
	SchemeHeaders = "headers"
)

// AuthConfig selects how REST requests authenticate. TestInvite does not document REST
// authentication, so the scheme is configurable.
type AuthConfig struct {
	// Scheme is basic, bearer or headers. Default basic.
	Scheme string `yaml:"scheme"`
	// Headers maps header names to values for the headers scheme. A value may contain
	// {organization_id}, {private_key} and {token}, which are replaced when the request is sent,
	// for example X-Private-Key: "{private_key}". Default empty.
	Headers map[string]string `yaml:"headers"`
}

// RateLimitConfig is the client-side rate limit shared by every request of one Client.
type RateLimitConfig struct {
	// RPS is the sustained number of requests per second; 0 disables the limit. Default 5.
	RPS float64 `yaml:"rps"`
	// Burst is the number of requests that may be sent at once above the sustained rate.
	// Default 10.
	Burst int `yaml:"burst"`
}

// RetryConfig bounds the retries of transient failures: 429, 5xx, timeouts, connection errors and
// truncated or malformed bodies.
type RetryConfig struct {
	// MaxAttempts is the number of attempts of one request, the first included; 1 disables
	// retries. Default 5.
	MaxAttempts int `yaml:"max_attempts"`
	// InitialBackoff is the backoff ceiling before the second attempt; it doubles after each
	// attempt and the wait is drawn uniformly below it (full jitter). Default 500ms.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps the backoff ceiling. Default 30s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxElapsed caps the time from the first attempt until a retry would start; a Retry-After
	// beyond it ends the retries. Default 2m.
	MaxElapsed time.Duration `yaml:"max_elapsed"`
}

// Config configures a Client. Load it from YAML, fill PrivateKey or Token from the environment or a
// file, then pass it to New.
type Config struct {
	// BaseURL is the scheme and host of the API. Default https://www.testinvite.com.
	BaseURL string `yaml:"base_url"`
	// OrganizationID is the organization's id, letters and digits. Required.
	OrganizationID string `yaml:"organization_id"`
	// PrivateKey is the organization's private key, used by the basic scheme, by header templates
	// and by the legacy endpoints. Never loaded from YAML.
	PrivateKey Secret `yaml:"-" json:"-"`
	// Token is the bearer token of the bearer scheme. Never loaded from YAML.
	Token Secret `yaml:"-" json:"-"`
	// Auth selects the authentication scheme. Default basic.
	Auth AuthConfig `yaml:"auth"`
	// Mode is the detail level of reads, basic or detailed. Default detailed.
	Mode Mode `yaml:"mode"`
	// PageSize is the number of records requested per page. Default 100. TestInvite documents no
	// maximum. When the server returns fewer records than requested on a page that is not the
	// last, the client uses the smaller size from then on for that endpoint.
	// NOTE: a learned size is kept for the life of the Client, even if the server's cap rises.
	PageSize int `yaml:"page_size"`
	// RequestTimeout bounds one attempt of one request, reading the body included. Default 30s.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// RateLimit is the client-side rate limit. Default 5 requests per second, burst 10.
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	// Retry bounds retries. Default 5 attempts, backoff 500ms to 30s, at most 2m in total.
	Retry RetryConfig `yaml:"retry"`
	// UserAgent is the User-Agent header. Default "tisync".
	UserAgent string `yaml:"user_agent"`
	// LegacyRequesterName is requester.name of the legacy endpoints. Default "tisync".
	LegacyRequesterName string `yaml:"legacy_requester_name"`
}

// Defaults of Config.
const (
	DefaultBaseURL        = "https://www.testinvite.com"
	DefaultPageSize       = 100
	MaxPageSize           = 1000
	DefaultRequestTimeout = 30 * time.Second
	DefaultUserAgent      = "tisync"
)

// DefaultConfig returns a Config with every default filled in. OrganizationID and the secrets stay
// empty.
func DefaultConfig() Config {
	return Config{
		BaseURL:        DefaultBaseURL,
		Auth:           AuthConfig{Scheme: SchemeBasic},
		Mode:           ModeDetailed,
		PageSize:       DefaultPageSize,
		RequestTimeout: DefaultRequestTimeout,
		RateLimit:      RateLimitConfig{RPS: 5, Burst: 10},
		Retry: RetryConfig{
			MaxAttempts:    5,
			InitialBackoff: 500 * time.Millisecond,
			MaxBackoff:     30 * time.Second,
			MaxElapsed:     2 * time.Minute,
		},
		UserAgent:           DefaultUserAgent,
		LegacyRequesterName: DefaultUserAgent,
	}
}

var (
	orgIDPattern      = regexp.MustCompile(`^[A-Za-z0-9]+$`)
	headerNamePattern = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	placeholder       = regexp.MustCompile(`\{[^{}]*\}`)
)

// Validate returns an error naming the first invalid field by its YAML name, with the value and
// what is expected. It does not look at PrivateKey and Token, which are filled after loading; New
// checks that the secrets the scheme needs are present.
func (c Config) Validate() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return fmt.Errorf("base_url: %q is invalid: expected an http or https URL such as %s", c.BaseURL, DefaultBaseURL)
	case u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return fmt.Errorf("base_url: %q is invalid: expected no user, query or fragment", c.BaseURL)
	case !orgIDPattern.MatchString(c.OrganizationID):
		return fmt.Errorf("organization_id: %q is invalid: expected one or more letters and digits", c.OrganizationID)
	case c.Mode != ModeBasic && c.Mode != ModeDetailed:
		return fmt.Errorf("mode: %q is invalid: expected basic or detailed", c.Mode)
	case c.PageSize < 1 || c.PageSize > MaxPageSize:
		return fmt.Errorf("page_size: %d is invalid: expected 1 to %d", c.PageSize, MaxPageSize)
	case c.RequestTimeout <= 0:
		return fmt.Errorf("request_timeout: %v is invalid: expected a positive duration", c.RequestTimeout)
	case c.RateLimit.RPS < 0:
		return fmt.Errorf("rate_limit.rps: %v is invalid: expected 0 (no limit) or more", c.RateLimit.RPS)
	case c.RateLimit.RPS > 0 && c.RateLimit.Burst < 1:
		return fmt.Errorf("rate_limit.burst: %d is invalid: expected 1 or more", c.RateLimit.Burst)
	case c.Retry.MaxAttempts < 1 || c.Retry.MaxAttempts > 100:
		return fmt.Errorf("retry.max_attempts: %d is invalid: expected 1 to 100", c.Retry.MaxAttempts)
	case c.Retry.InitialBackoff <= 0:
		return fmt.Errorf("retry.initial_backoff: %v is invalid: expected a positive duration", c.Retry.InitialBackoff)
	case c.Retry.MaxBackoff < c.Retry.InitialBackoff:
		return fmt.Errorf("retry.max_backoff: %v is invalid: expected at least retry.initial_backoff (%v)", c.Retry.MaxBackoff, c.Retry.InitialBackoff)
	case c.Retry.MaxElapsed <= 0:
		return fmt.Errorf("retry.max_elapsed: %v is invalid: expected a positive duration", c.Retry.MaxElapsed)
	case c.UserAgent == "" || strings.ContainsAny(c.UserAgent, "\r\n"):
		return fmt.Errorf("user_agent: %q is invalid: expected a non-empty single line", c.UserAgent)
	case c.LegacyRequesterName == "":
		return fmt.Errorf("legacy_requester_name: %q is invalid: expected a non-empty name", c.LegacyRequesterName)
	}
	return c.Auth.validate()
}

func (a AuthConfig) validate() error {
	switch a.Scheme {
	case SchemeBasic, SchemeBearer:
		if len(a.Headers) > 0 {
			return fmt.Errorf("auth.headers: %d headers given with scheme %q: expected scheme headers", len(a.Headers), a.Scheme)
		}
		return nil
	case SchemeHeaders:
	default:
		return fmt.Errorf("auth.scheme: %q is invalid: expected basic, bearer or headers", a.Scheme)
	}
	if len(a.Headers) == 0 {
		return fmt.Errorf("auth.headers: empty: scheme headers needs at least one header")
	}
	for name, value := range a.Headers {
		if !headerNamePattern.MatchString(name) {
			return fmt.Errorf("auth.headers: header name %q is invalid: expected an HTTP token", name)
		}
		if http.CanonicalHeaderKey(name) == "Host" {
			return fmt.Errorf("auth.headers: header %q is invalid: expected an authentication header", name)
		}
		if strings.ContainsAny(value, "\r\n") {
			return fmt.Errorf("auth.headers.%s: value is invalid: expected a single line", name)
		}
		for _, p := range placeholder.FindAllString(value, -1) {
			switch p {
			case "{organization_id}", "{private_key}", "{token}":
			default:
				return fmt.Errorf("auth.headers.%s: placeholder %s is invalid: expected {organization_id}, {private_key} or {token}", name, p)
			}
		}
	}
	return nil
}

// CheckSecrets reports a missing secret that the configured scheme needs. New calls it too.
func (c Config) CheckSecrets() error {
	switch c.Auth.Scheme {
	case SchemeBasic:
		if c.PrivateKey == "" {
			return fmt.Errorf("private key: missing: auth scheme basic sends it as the password")
		}
	case SchemeBearer:
		if c.Token == "" {
			return fmt.Errorf("token: missing: auth scheme bearer sends it")
		}
	case SchemeHeaders:
		for name, value := range c.Auth.Headers {
			if strings.Contains(value, "{private_key}") && c.PrivateKey == "" {
				return fmt.Errorf("private key: missing: auth.headers.%s refers to {private_key}", name)
			}
			if strings.Contains(value, "{token}") && c.Token == "" {
				return fmt.Errorf("token: missing: auth.headers.%s refers to {token}", name)
			}
		}
	}
	return nil
}

package testinvite_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tisync/tisync/sync/testinvite"
)

func validConfig() testinvite.Config {
	cfg := testinvite.DefaultConfig()
	cfg.OrganizationID = "zUH8oMYJ60As4HYP48Zx"
	return cfg
}

func TestDefaultConfigValid(t *testing.T) {
	cfg := validConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	if cfg.BaseURL != "https://www.testinvite.com" || cfg.Mode != testinvite.ModeDetailed || cfg.PageSize != 100 || cfg.Auth.Scheme != "basic" {
		t.Errorf("defaults = %+v", cfg)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*testinvite.Config)
		field  string
	}{
		{"missing organization", func(c *testinvite.Config) { c.OrganizationID = "" }, "organization_id"},
		{"organization with dash", func(c *testinvite.Config) { c.OrganizationID = "ab-cd" }, "organization_id"},
		{"relative url", func(c *testinvite.Config) { c.BaseURL = "www.testinvite.com" }, "base_url"},
		{"ftp url", func(c *testinvite.Config) { c.BaseURL = "ftp://x" }, "base_url"},
		{"url with query", func(c *testinvite.Config) { c.BaseURL = "https://x/?a=1" }, "base_url"},
		{"url with user", func(c *testinvite.Config) { c.BaseURL = "https://u:p@x" }, "base_url"},
		{"mode", func(c *testinvite.Config) { c.Mode = "full" }, "mode"},
		{"page size zero", func(c *testinvite.Config) { c.PageSize = 0 }, "page_size"},
		{"page size too large", func(c *testinvite.Config) { c.PageSize = 5000 }, "page_size"},
		{"timeout", func(c *testinvite.Config) { c.RequestTimeout = 0 }, "request_timeout"},
		{"rps", func(c *testinvite.Config) { c.RateLimit.RPS = -1 }, "rate_limit.rps"},
		{"burst", func(c *testinvite.Config) { c.RateLimit.Burst = 0 }, "rate_limit.burst"},
		{"attempts", func(c *testinvite.Config) { c.Retry.MaxAttempts = 0 }, "retry.max_attempts"},
		{"initial backoff", func(c *testinvite.Config) { c.Retry.InitialBackoff = 0 }, "retry.initial_backoff"},
		{"max backoff", func(c *testinvite.Config) { c.Retry.MaxBackoff = time.Millisecond }, "retry.max_backoff"},
		{"max elapsed", func(c *testinvite.Config) { c.Retry.MaxElapsed = 0 }, "retry.max_elapsed"},
		{"user agent", func(c *testinvite.Config) { c.UserAgent = "a\nb" }, "user_agent"},
		{"scheme", func(c *testinvite.Config) { c.Auth.Scheme = "digest" }, "auth.scheme"},
		{"headers without scheme", func(c *testinvite.Config) { c.Auth.Headers = map[string]string{"X-Key": "v"} }, "auth.headers"},
		{"no headers", func(c *testinvite.Config) { c.Auth.Scheme = "headers" }, "auth.headers"},
		{"bad header name", func(c *testinvite.Config) {
			c.Auth = testinvite.AuthConfig{Scheme: "headers", Headers: map[string]string{"X Key": "v"}}
		}, "auth.headers"},
		{"unknown placeholder", func(c *testinvite.Config) {
			c.Auth = testinvite.AuthConfig{Scheme: "headers", Headers: map[string]string{"X-Key": "{secret}"}}
		}, "auth.headers.X-Key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("invalid config accepted")
			}
			if !strings.HasPrefix(err.Error(), tc.field+":") {
				t.Errorf("error %q does not start with the field %s", err, tc.field)
			}
		})
	}
}

func TestNewRequiresSecrets(t *testing.T) {
	cases := []struct {
		name   string
		change func(*testinvite.Config)
	}{
		{"basic without key", func(*testinvite.Config) {}},
		{"bearer without token", func(c *testinvite.Config) { c.Auth.Scheme = "bearer"; c.PrivateKey = "k" }},
		{"header template without key", func(c *testinvite.Config) {
			c.Auth = testinvite.AuthConfig{Scheme: "headers", Headers: map[string]string{"X-Key": "{private_key}"}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := validConfig()
			tc.change(&cfg)
			if _, err := testinvite.New(cfg, nil, nil); err == nil {
				t.Error("missing secret accepted")
			}
		})
	}
}

func TestSecretNeverPrinted(t *testing.T) {
	const key = "7f3c1b0e-secret"
	cfg := validConfig()
	cfg.PrivateKey = key
	cfg.Token = key
	y, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{fmt.Sprintf("%v", cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg), string(y), string(j), cfg.PrivateKey.String()} {
		if strings.Contains(text, key) {
			t.Errorf("secret printed in %q", text)
		}
	}
	if cfg.PrivateKey.Reveal() != key {
		t.Error("Reveal lost the secret")
	}
}

func TestConfigFromYAML(t *testing.T) {
	doc := `
base_url: http://127.0.0.1:8080
organization_id: abc123
auth:
  scheme: headers
  headers:
    X-Organization-Id: "{organization_id}"
    X-Private-Key: "{private_key}"
mode: basic
page_size: 250
request_timeout: 10s
rate_limit: {rps: 2.5, burst: 3}
retry: {max_attempts: 7, initial_backoff: 100ms, max_backoff: 5s, max_elapsed: 1m}
`
	cfg := testinvite.DefaultConfig()
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.PageSize != 250 || cfg.Retry.MaxElapsed != time.Minute || cfg.RateLimit.RPS != 2.5 || cfg.Auth.Headers["X-Private-Key"] != "{private_key}" || cfg.UserAgent != "tisync" {
		t.Errorf("config = %+v", cfg)
	}
}

// Package natsconn connects tisync to NATS: to an external server or cluster when a URL is
// configured, or to a nats-server embedded in the process, with JetStream and its store on disk.
package natsconn

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Config selects and configures the NATS connection.
type Config struct {
	// URL is a comma-separated list of server URLs, such as nats://nats-1:4222,nats://nats-2:4222.
	// Empty selects the embedded server. Default: empty.
	URL string `yaml:"url"`
	// Name is the connection name that servers show in their monitoring. Default: tisync.
	Name string `yaml:"name"`
	// User is the user name for user/password authentication. The password comes from
	// TISYNC_NATS_PASSWORD. Default: empty.
	User string `yaml:"user"`
	// Password is the password of User; it is filled from the environment or a secret file only.
	Password string `yaml:"-"`
	// Token is an authentication token; it is filled from the environment or a secret file only.
	Token string `yaml:"-"`
	// CredsFile is a NATS credentials file (JWT and NKey seed). Default: empty.
	CredsFile string `yaml:"creds_file"`
	// TLS configures TLS to the server. Default: off unless the URL scheme is tls://.
	TLS TLSConfig `yaml:"tls"`
	// ConnectTimeout bounds one connection attempt. Default: 5s.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
	// ReconnectWait is the pause between reconnection attempts. Default: 2s.
	ReconnectWait time.Duration `yaml:"reconnect_wait"`
	// MaxReconnects caps reconnection attempts; -1 retries forever. Default: -1.
	MaxReconnects int `yaml:"max_reconnects"`
	// Embedded configures the in-process server used when URL is empty.
	Embedded EmbeddedConfig `yaml:"embedded"`
}

// TLSConfig holds the files for a TLS connection to NATS.
type TLSConfig struct {
	// Enabled turns TLS on. Default: false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM bundle of the CAs that may sign the server certificate. Default: system roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the client certificate and key for mutual TLS. Default: none.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// InsecureSkipVerify disables server certificate checks; for tests only. Default: false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// EmbeddedConfig configures the nats-server that runs inside tisync when no URL is set.
type EmbeddedConfig struct {
	// Listen is the host:port where the embedded server also accepts network clients, such as the
	// nats CLI and `tisync` commands run beside the daemon. Empty or "none" serves only the process
	// itself. Default: 127.0.0.1:4222.
	Listen string `yaml:"listen"`
	// StoreDir is the JetStream store directory. Default: <data_dir>/nats.
	StoreDir string `yaml:"store_dir"`
	// ServerName names the embedded server. Default: tisync.
	ServerName string `yaml:"server_name"`
	// MaxStoreBytes caps JetStream file storage; 0 lets nats-server choose (a share of the free disk).
	// Default: 0.
	MaxStoreBytes int64 `yaml:"max_store_bytes"`
	// MaxMemoryBytes caps JetStream memory storage; 0 lets nats-server choose. Default: 0.
	MaxMemoryBytes int64 `yaml:"max_memory_bytes"`
	// ReadyTimeout bounds the embedded server's start-up. Default: 30s.
	ReadyTimeout time.Duration `yaml:"ready_timeout"`
	// SyncInterval is how often the store is flushed to disk with fsync; 0 keeps nats-server's
	// default of 2m. Every acknowledged event is written to the operating system before its
	// acknowledgement, so a killed process loses nothing. Only a machine crash can lose the events
	// of the last interval. Default: 0.
	SyncInterval time.Duration `yaml:"sync_interval"`
	// SyncAlways fsyncs every write before acknowledging it, so that not even a machine crash loses
	// an acknowledged event, at a large cost in publish rate. Default: false.
	SyncAlways bool `yaml:"sync_always"`
}

// DefaultConfig returns the NATS settings used when the configuration leaves them unset.
func DefaultConfig() Config {
	return Config{
		Name:           "tisync",
		ConnectTimeout: 5 * time.Second,
		ReconnectWait:  2 * time.Second,
		MaxReconnects:  -1,
		Embedded: EmbeddedConfig{
			Listen:       "127.0.0.1:4222",
			ServerName:   "tisync",
			ReadyTimeout: 30 * time.Second,
		},
	}
}

// IsEmbedded reports whether the configuration selects the embedded server.
func (c Config) IsEmbedded() bool { return strings.TrimSpace(c.URL) == "" }

// ListenAddr returns the embedded server's network address, or "" when it serves only the process.
func (e EmbeddedConfig) ListenAddr() string {
	if l := strings.TrimSpace(e.Listen); l != "none" {
		return l
	}
	return ""
}

// Validate checks the settings, naming each bad one with its value and what is expected.
func (c Config) Validate() error {
	var errs []error
	if !c.IsEmbedded() {
		for _, u := range strings.Split(c.URL, ",") {
			if err := checkURL(strings.TrimSpace(u)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.Password != "" && c.User == "" {
		errs = append(errs, errors.New(`user: "" is invalid when a NATS password is set: expected the user name that goes with TISYNC_NATS_PASSWORD`))
	}
	if c.CredsFile != "" && (c.Token != "" || c.User != "") {
		errs = append(errs, fmt.Errorf("creds_file: %q cannot be combined with a user or token: expected one authentication method", c.CredsFile))
	}
	if c.ConnectTimeout <= 0 {
		errs = append(errs, fmt.Errorf("connect_timeout: %s is invalid: expected a positive duration such as 5s", c.ConnectTimeout))
	}
	if c.ReconnectWait <= 0 {
		errs = append(errs, fmt.Errorf("reconnect_wait: %s is invalid: expected a positive duration such as 2s", c.ReconnectWait))
	}
	if c.MaxReconnects < -1 {
		errs = append(errs, fmt.Errorf("max_reconnects: %d is invalid: expected -1 (forever) or a count >= 0", c.MaxReconnects))
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		errs = append(errs, fmt.Errorf("tls: cert_file %q and key_file %q must be set together", c.TLS.CertFile, c.TLS.KeyFile))
	}
	if c.IsEmbedded() {
		errs = append(errs, c.Embedded.validate()...)
	}
	return errors.Join(errs...)
}

func (e EmbeddedConfig) validate() []error {
	var errs []error
	if addr := e.ListenAddr(); addr != "" {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || port == "" {
			errs = append(errs, fmt.Errorf("embedded.listen: %q is invalid: expected host:port such as 127.0.0.1:4222, or none", e.Listen))
		} else if host == "" {
			errs = append(errs, fmt.Errorf("embedded.listen: %q is invalid: expected an explicit host such as 127.0.0.1 (an empty host listens on every interface)", e.Listen))
		}
	}
	if strings.TrimSpace(e.StoreDir) == "" {
		errs = append(errs, errors.New(`embedded.store_dir: "" is invalid: expected a directory path`))
	}
	if e.MaxStoreBytes < 0 {
		errs = append(errs, fmt.Errorf("embedded.max_store_bytes: %d is invalid: expected 0 (server default) or a positive size", e.MaxStoreBytes))
	}
	if e.MaxMemoryBytes < 0 {
		errs = append(errs, fmt.Errorf("embedded.max_memory_bytes: %d is invalid: expected 0 (server default) or a positive size", e.MaxMemoryBytes))
	}
	if e.SyncInterval < 0 {
		errs = append(errs, fmt.Errorf("embedded.sync_interval: %s is invalid: expected 0 (server default) or a positive duration", e.SyncInterval))
	}
	if e.ReadyTimeout <= 0 {
		errs = append(errs, fmt.Errorf("embedded.ready_timeout: %s is invalid: expected a positive duration such as 30s", e.ReadyTimeout))
	}
	return errs
}

func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("url: %q is invalid: expected a server URL such as nats://127.0.0.1:4222", raw)
	}
	switch u.Scheme {
	case "nats", "tls", "ws", "wss":
	default:
		return fmt.Errorf("url: %q has scheme %q: expected nats, tls, ws or wss", raw, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("url: %q contains credentials: expected nats.user with TISYNC_NATS_PASSWORD, or TISYNC_NATS_TOKEN, so that secrets stay out of the config", redactURL(u))
	}
	return nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

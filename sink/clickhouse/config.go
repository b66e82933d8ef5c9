// Package clickhouse writes tisync's change events into ClickHouse over the native protocol and
// applies the schema migrations embedded in package schema.
package clickhouse

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/tisync/tisync/schema"
)

// Config configures the ClickHouse connection, the target database and the cluster layout that
// migrations render. The zero value is invalid; start from DefaultConfig.
type Config struct {
	// Addresses are the host:port pairs of the native protocol. Default ["127.0.0.1:9000"].
	Addresses []string `yaml:"addresses"`
	// Database is the database that holds every table and view. Default "tisync".
	Database string `yaml:"database"`
	// Username is the ClickHouse user. Default "default".
	Username string `yaml:"username"`
	// Password is the user's password. It is never read from YAML: the caller fills it from the
	// environment or a file. Default empty.
	Password string `yaml:"-" json:"-"`
	// TLS configures encrypted connections. Default disabled.
	TLS TLSConfig `yaml:"tls"`
	// Compression is the block compression of the native protocol: "lz4", "zstd" or "none".
	// Default "lz4".
	Compression string `yaml:"compression"`
	// DialTimeout bounds opening one connection. Default 5s.
	DialTimeout time.Duration `yaml:"dial_timeout"`
	// ReadTimeout bounds waiting for the server on an open connection, including the reply to an
	// insert. Default 5m.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// MaxOpenConns limits the connections of the pool. Default 4.
	MaxOpenConns int `yaml:"max_open_conns"`
	// Cluster configures ON CLUSTER DDL and replicated engines for migrations. Default none: a
	// single server.
	Cluster ClusterConfig `yaml:"cluster"`
	// MigrationLockLease is how long a migration runner's lock stays valid without renewal, so that
	// a crashed runner does not block others forever. The runner renews it before each migration.
	// Default 10m.
	MigrationLockLease time.Duration `yaml:"migration_lock_lease"`
	// MigrationLockTimeout bounds waiting for another runner's lock. Default 15m.
	MigrationLockTimeout time.Duration `yaml:"migration_lock_timeout"`
}

// TLSConfig configures TLS for the native protocol.
type TLSConfig struct {
	// Enabled turns TLS on. Default false.
	Enabled bool `yaml:"enabled"`
	// CAFile is a PEM file of certificate authorities to trust instead of the system pool.
	// Default empty (system pool).
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a PEM client certificate and its key for mutual TLS. Default empty.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName overrides the host name checked against the server certificate. Default empty
	// (the address's host).
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify disables certificate verification; for tests only. Default false.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
}

// ClusterConfig selects the DDL of a ClickHouse cluster. Leave Name empty for a single server.
type ClusterConfig struct {
	// Name adds ON CLUSTER <name> to every DDL statement. Default empty.
	Name string `yaml:"name"`
	// Replicated selects Replicated*MergeTree engines, which need ZooKeeper or ClickHouse Keeper.
	// Default false.
	Replicated bool `yaml:"replicated"`
	// ZooKeeperPath is the coordination path template of replicated tables: {database} and {table}
	// are filled in by tisync, other macros by the server. Default
	// "/clickhouse/tables/{shard}/{database}/{table}".
	ZooKeeperPath string `yaml:"zookeeper_path"`
	// ReplicaName is the replica argument of replicated engines. Default "{replica}".
	ReplicaName string `yaml:"replica_name"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Addresses:            []string{"127.0.0.1:9000"},
		Database:             "tisync",
		Username:             "default",
		Compression:          "lz4",
		DialTimeout:          5 * time.Second,
		ReadTimeout:          5 * time.Minute,
		MaxOpenConns:         4,
		MigrationLockLease:   10 * time.Minute,
		MigrationLockTimeout: 15 * time.Minute,
		Cluster: ClusterConfig{
			ZooKeeperPath: schema.DefaultZooKeeperPath,
			ReplicaName:   schema.DefaultReplicaName,
		},
	}
}

// Validate returns an error naming the first invalid field, its value and what is expected.
func (c Config) Validate() error {
	if len(c.Addresses) == 0 {
		return fmt.Errorf("addresses: empty: expected at least one host:port")
	}
	for _, a := range c.Addresses {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return fmt.Errorf("addresses: %q is invalid: expected host:port", a)
		}
	}
	if !schema.ValidIdentifier(c.Database) {
		return fmt.Errorf("database: %q is invalid: expected letters, digits and underscores, starting with a letter or underscore", c.Database)
	}
	if c.Username == "" {
		return fmt.Errorf("username: empty: expected a ClickHouse user name")
	}
	switch c.Compression {
	case "lz4", "zstd", "none":
	default:
		return fmt.Errorf("compression: %q is invalid: expected lz4, zstd or none", c.Compression)
	}
	durations := []struct {
		name string
		d    time.Duration
	}{
		{"dial_timeout", c.DialTimeout},
		{"read_timeout", c.ReadTimeout},
		{"migration_lock_lease", c.MigrationLockLease},
		{"migration_lock_timeout", c.MigrationLockTimeout},
	}
	for _, d := range durations {
		if d.d <= 0 {
			return fmt.Errorf("%s: %s is invalid: expected a positive duration", d.name, d.d)
		}
	}
	if c.MaxOpenConns < 1 || c.MaxOpenConns > 1000 {
		return fmt.Errorf("max_open_conns: %d is invalid: expected 1 to 1000", c.MaxOpenConns)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		return fmt.Errorf("tls: cert_file %q and key_file %q must be set together", c.TLS.CertFile, c.TLS.KeyFile)
	}
	if _, err := c.renderOptions().Validate(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return nil
}

func (c Config) renderOptions() schema.RenderOptions {
	return schema.RenderOptions{
		Database:      c.Database,
		Cluster:       c.Cluster.Name,
		Replicated:    c.Cluster.Replicated,
		ZooKeeperPath: c.Cluster.ZooKeeperPath,
		ReplicaName:   c.Cluster.ReplicaName,
	}
}

// tlsConfig builds the crypto/tls configuration, or nil when TLS is disabled.
func (t TLSConfig) tlsConfig() (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // opt-in, documented as tests only
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls: read ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: ca_file %s contains no PEM certificate", t.CAFile)
		}
		cfg.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls: load cert_file and key_file: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

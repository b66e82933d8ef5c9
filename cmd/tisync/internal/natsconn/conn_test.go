package natsconn

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func embeddedConfig(t *testing.T, listen string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Embedded.Listen = listen
	cfg.Embedded.StoreDir = t.TempDir()
	return cfg
}

func closeConn(t *testing.T, c *Conn) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestEmbeddedServerAndClient(t *testing.T) {
	ctx := context.Background()
	cfg := embeddedConfig(t, freeAddr(t))
	daemon, err := Connect(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(t, daemon)
	if daemon.Mode() != "embedded" {
		t.Errorf("mode = %s, want embedded", daemon.Mode())
	}
	if _, err := daemon.JS.AccountInfo(ctx); err != nil {
		t.Fatalf("JetStream unavailable: %v", err)
	}

	// A command run beside the daemon dials the daemon's server instead of starting its own.
	client, err := ConnectClient(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if client.Mode() != "external" {
		t.Errorf("client mode = %s, want external (the daemon's server)", client.Mode())
	}
	closeConn(t, client)

	// A second embedded server on the same store is refused.
	second := cfg
	second.Embedded.Listen = "none"
	_, err = Connect(ctx, second, nil)
	if !errors.Is(err, ErrStoreLocked) {
		t.Fatalf("second server on the store: err = %v, want ErrStoreLocked", err)
	}
}

func TestConnectClientStartsOwnServer(t *testing.T) {
	cfg := embeddedConfig(t, freeAddr(t))
	c, err := ConnectClient(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeConn(t, c)
	if c.Mode() != "embedded" {
		t.Errorf("mode = %s, want embedded when no daemon runs", c.Mode())
	}
}

func TestEmbeddedListenAddressInUse(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, err = Connect(context.Background(), embeddedConfig(t, l.Addr().String()), nil)
	if err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("err = %v, want an address-in-use error", err)
	}
}

func TestExternalServerUnreachable(t *testing.T) {
	cfg := DefaultConfig()
	cfg.URL = "nats://" + freeAddr(t)
	cfg.ConnectTimeout = time.Second
	cfg.MaxReconnects = 0
	_, err := Connect(context.Background(), cfg, nil)
	if err == nil || !strings.Contains(err.Error(), cfg.URL) {
		t.Fatalf("err = %v, want an error naming %s", err, cfg.URL)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"url scheme", func(c *Config) { c.URL = "http://x:4222" }, "scheme"},
		{"one bad url of several", func(c *Config) { c.URL = "nats://a:4222, b" }, `"b"`},
		{"password without user", func(c *Config) { c.URL = "nats://a:4222"; c.Password = "x" }, "user"},
		{"creds and token", func(c *Config) { c.URL = "nats://a:4222"; c.CredsFile = "a.creds"; c.Token = "t" }, "creds_file"},
		{"sync interval", func(c *Config) { c.Embedded.StoreDir = "x"; c.Embedded.SyncInterval = -time.Second }, "embedded.sync_interval"},
		{"store dir", func(c *Config) { c.Embedded.StoreDir = "" }, "embedded.store_dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Embedded.StoreDir = "store"
			tt.change(&cfg)
			err := cfg.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %s", err, tt.want)
			}
		})
	}
}

// Package clickhousetest gives tests a fresh database on a real ClickHouse server, a TCP proxy to
// simulate outages, and a way to read query results as text for golden files.
//
// The server address is TISYNC_TEST_CLICKHOUSE_ADDR, or 127.0.0.1:9000 (deploy/local/clickhouse.sh
// start runs one there). When the server is unreachable, tests skip, unless the CI or the
// TISYNC_REQUIRE_CLICKHOUSE environment variable is set, in which case they fail. `make test` sets
// TISYNC_REQUIRE_CLICKHOUSE after starting the server.
package clickhousetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tisync/tisync/sink/clickhouse"
)

// Addr returns the address of the test server, skipping or failing t when it is unreachable.
func Addr(t testing.TB) string {
	t.Helper()
	addr := os.Getenv("TISYNC_TEST_CLICKHOUSE_ADDR")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		msg := fmt.Sprintf("ClickHouse is unreachable at %s (start it with deploy/local/clickhouse.sh start or set TISYNC_TEST_CLICKHOUSE_ADDR): %v", addr, err)
		if os.Getenv("CI") != "" || os.Getenv("TISYNC_REQUIRE_CLICKHOUSE") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	_ = c.Close()
	return addr
}

// Config returns a client configuration for a new, empty database name on the test server. The
// database does not exist yet (Migrate creates it) and is dropped when the test ends.
func Config(t testing.TB) clickhouse.Config {
	t.Helper()
	addr := Addr(t)
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	cfg := clickhouse.DefaultConfig()
	cfg.Addresses = []string{addr}
	cfg.Database = "tisync_test_" + hex.EncodeToString(b)
	cfg.DialTimeout = 2 * time.Second
	cfg.ReadTimeout = 30 * time.Second
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn := Conn(t, addr)
		if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+cfg.Database); err != nil {
			t.Errorf("drop test database %s: %v", cfg.Database, err)
		}
	})
	return cfg
}

// Conn opens a plain driver connection to addr, closed when the test ends.
func Conn(t testing.TB, addr string) driver.Conn {
	t.Helper()
	conn, err := ch.Open(&ch.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// Exec runs statements on the test server.
func Exec(t testing.TB, addr string, statements ...string) {
	t.Helper()
	conn := Conn(t, addr)
	for _, s := range statements {
		if err := conn.Exec(context.Background(), s); err != nil {
			t.Fatalf("exec %q: %v", s, err)
		}
	}
}

// Query runs a query and returns its rows as text, one line per row with tab-separated values:
// NULL for a null, times in RFC 3339 UTC, arrays as [a b]. It is meant for golden files.
func Query(t testing.TB, addr, query string) string {
	t.Helper()
	conn := Conn(t, addr)
	rows, err := conn.Query(context.Background(), query)
	if err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var b strings.Builder
	b.WriteString(strings.Join(rows.Columns(), "\t") + "\n")
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("scan %q: %v", query, err)
		}
		cells := make([]string, len(dest))
		for i, d := range dest {
			cells[i] = format(reflect.ValueOf(d).Elem())
		}
		b.WriteString(strings.Join(cells, "\t") + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("query %q: %v", query, err)
	}
	return b.String()
}

func format(v reflect.Value) string {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return "NULL"
		}
		return format(v.Elem())
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = format(v.Index(i))
		}
		return "[" + strings.Join(parts, " ") + "]"
	}
	if t, ok := v.Interface().(time.Time); ok {
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprint(v.Interface())
}

// Proxy is a loopback TCP proxy between a client and a server. Cut closes its listener and every
// open connection, as a server outage would; Restore listens again on the same port.
type Proxy struct {
	target string
	addr   string

	mu       sync.Mutex
	listener net.Listener
	conns    map[net.Conn]struct{}
	wg       sync.WaitGroup
}

// NewProxy starts a proxy to target on a random loopback port and stops it when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{target: target, addr: l.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(l)
	t.Cleanup(func() {
		p.Cut()
		p.wg.Wait()
	})
	return p
}

// Addr returns the proxy's address.
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.listener = l
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.pipe(c)
			}()
		}
	}()
}

func (p *Proxy) pipe(client net.Conn) {
	server, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	p.mu.Lock()
	if p.listener == nil {
		p.mu.Unlock()
		_ = client.Close()
		_ = server.Close()
		return
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
	<-done
	_ = client.Close()
	_ = server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// Cut stops accepting connections and closes every open one. Connecting to Addr fails until
// Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.listener != nil {
		_ = p.listener.Close()
		p.listener = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
}

// Restore listens on the proxy's address again after Cut.
func (p *Proxy) Restore(t testing.TB) {
	t.Helper()
	var l net.Listener
	var err error
	// The port was just released; another process may briefly hold it in rare cases.
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", p.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("restore proxy on %s: %v", p.addr, err)
	}
	p.serve(l)
}

package clickhouse_test

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/schema/schematest"
	"github.com/tisync/tisync/sink/clickhouse"
	"github.com/tisync/tisync/sink/clickhouse/clickhousetest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("result differs from %s (run go test -update after checking the change):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

func newClient(t testing.TB, cfg clickhouse.Config, reg prometheus.Registerer) *clickhouse.Client {
	t.Helper()
	c, err := clickhouse.New(cfg, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// migrated returns a client for a fresh, migrated database.
func migrated(t testing.TB) (*clickhouse.Client, clickhouse.Config) {
	t.Helper()
	cfg := clickhousetest.Config(t)
	c := newClient(t, cfg, nil)
	if _, err := c.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return c, cfg
}

func write(t testing.TB, c *clickhouse.Client, events []schema.Event) {
	t.Helper()
	b := clickhouse.NewBatch()
	for i := range events {
		rows, err := schema.Rows(&events[i])
		if err != nil {
			t.Fatalf("Rows(%s): %v", events[i].Type, err)
		}
		b.AddEvent(rows)
	}
	if err := c.Write(context.Background(), b); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func TestMigrateAppliesOnce(t *testing.T) {
	cfg := clickhousetest.Config(t)
	c := newClient(t, cfg, nil)
	ctx := context.Background()

	before, err := c.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus before Migrate: %v", err)
	}
	embedded, err := schema.Migrations(schema.RenderOptions{Database: cfg.Database})
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != len(embedded) {
		t.Fatalf("status lists %d migrations, want %d", len(before), len(embedded))
	}
	for _, s := range before {
		if s.Applied {
			t.Errorf("%s is applied before Migrate", s.File)
		}
	}

	applied, err := c.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(applied) != len(embedded) {
		t.Errorf("first Migrate applied %d migrations, want %d", len(applied), len(embedded))
	}
	again, err := c.Migrate(ctx)
	if err != nil {
		t.Fatalf("second Migrate: %v", err)
	}
	if len(again) != 0 {
		t.Errorf("second Migrate applied %d migrations, want 0", len(again))
	}

	after, err := c.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	for i, s := range after {
		if !s.Applied {
			t.Errorf("%s is pending after Migrate", s.File)
		}
		if s.AppliedChecksum != embedded[i].Checksum {
			t.Errorf("%s recorded checksum %s, want %s", s.File, s.AppliedChecksum, embedded[i].Checksum)
		}
		if s.AppliedAt.IsZero() {
			t.Errorf("%s has no applied_at", s.File)
		}
	}
	rows := clickhousetest.Query(t, cfg.Addresses[0], "SELECT version, name FROM "+cfg.Database+".schema_migrations ORDER BY version")
	if n := strings.Count(rows, "\n") - 1; n != len(embedded) {
		t.Errorf("schema_migrations has %d rows, want %d:\n%s", n, len(embedded), rows)
	}
}

func TestMigrateConcurrentRunners(t *testing.T) {
	cfg := clickhousetest.Config(t)
	const runners = 3
	var wg sync.WaitGroup
	applied := make([]int, runners)
	errs := make([]error, runners)
	for i := range runners {
		c := newClient(t, cfg, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, err := c.Migrate(context.Background())
			applied[i], errs[i] = len(done), err
		}()
	}
	wg.Wait()
	total := 0
	for i := range runners {
		if errs[i] != nil {
			t.Errorf("runner %d: %v", i, errs[i])
		}
		total += applied[i]
	}
	embedded, err := schema.Migrations(schema.RenderOptions{Database: cfg.Database})
	if err != nil {
		t.Fatal(err)
	}
	if total != len(embedded) {
		t.Errorf("runners applied %d migrations in total (%v), want %d", total, applied, len(embedded))
	}
	// Without FINAL: a migration applied twice would leave two rows until a merge.
	got := clickhousetest.Query(t, cfg.Addresses[0], "SELECT version, count() FROM "+cfg.Database+".schema_migrations GROUP BY version ORDER BY version")
	for _, line := range strings.Split(strings.TrimSpace(got), "\n")[1:] {
		if !strings.HasSuffix(line, "\t1") {
			t.Errorf("migration applied more than once: %s", line)
		}
	}
}

func TestMigrateLockTimeout(t *testing.T) {
	cfg := clickhousetest.Config(t)
	// A fresh database with the migration tables but no migration applied, and another runner's
	// live claim, far from expiring.
	boot, err := schema.BootstrapStatements(schema.RenderOptions{Database: cfg.Database})
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range boot {
		clickhousetest.Exec(t, cfg.Addresses[0], stmt)
	}
	clickhousetest.Exec(t, cfg.Addresses[0],
		"INSERT INTO "+cfg.Database+".schema_migrations_lock (owner, lease_until, released, updated_at) SELECT 'other', now() + 3600, 0, 1")
	cfg.MigrationLockTimeout = 300 * time.Millisecond
	blocked := newClient(t, cfg, nil)
	_, err = blocked.Migrate(context.Background())
	if !errors.Is(err, clickhouse.ErrLockTimeout) {
		t.Fatalf("Migrate error = %v, want ErrLockTimeout", err)
	}
	if !strings.Contains(err.Error(), "other") {
		t.Errorf("error %q does not name the holder", err)
	}
}

func TestMigrateCurrentIgnoresHeldLock(t *testing.T) {
	_, cfg := migrated(t)
	// A runner that died holding the lock must not block starts that have nothing to apply.
	clickhousetest.Exec(t, cfg.Addresses[0],
		"INSERT INTO "+cfg.Database+".schema_migrations_lock (owner, lease_until, released, updated_at) SELECT 'crashed', now() + 3600, 0, 1")
	cfg.MigrationLockTimeout = 300 * time.Millisecond
	applied, err := newClient(t, cfg, nil).Migrate(context.Background())
	if err != nil {
		t.Fatalf("Migrate of a current database with a held lock: %v", err)
	}
	if len(applied) != 0 {
		t.Errorf("applied %d migrations to a current database", len(applied))
	}
}

func TestMigrationChecksumMismatch(t *testing.T) {
	c, cfg := migrated(t)
	clickhousetest.Exec(t, cfg.Addresses[0],
		"INSERT INTO "+cfg.Database+".schema_migrations (version, name, checksum, applied_at) SELECT 2, 'change_events', 'edited', now() + 60")

	states, err := c.MigrationStatus(context.Background())
	var mismatch *clickhouse.ChecksumMismatchError
	if !errors.As(err, &mismatch) {
		t.Fatalf("MigrationStatus error = %v, want a *ChecksumMismatchError", err)
	}
	if mismatch.File != "0002_change_events.sql" || mismatch.Applied != "edited" {
		t.Errorf("mismatch names %s with %s, want 0002_change_events.sql with edited", mismatch.File, mismatch.Applied)
	}
	if !strings.Contains(err.Error(), "0002_change_events.sql") {
		t.Errorf("error %q does not name the file", err)
	}
	if len(states) == 0 || !states[1].Mismatch() {
		t.Errorf("status does not flag version 2: %+v", states)
	}
	if _, err := c.Migrate(context.Background()); !errors.As(err, &mismatch) {
		t.Errorf("Migrate error = %v, want a *ChecksumMismatchError", err)
	}
}

func TestColumnsMatchMigratedTables(t *testing.T) {
	_, cfg := migrated(t)
	for _, table := range schema.Tables {
		t.Run(table, func(t *testing.T) {
			// NB: ClickHouse 18.16 has no system.columns.position, but both it and current releases list
			// columns in table order.
			got := clickhousetest.Query(t, cfg.Addresses[0], "SELECT name FROM system.columns WHERE database = '"+cfg.Database+
				"' AND table = '"+table+"' AND default_kind = ''")
			lines := strings.Split(strings.TrimSpace(got), "\n")[1:]
			want := schema.Columns(table)
			if strings.Join(lines, ",") != strings.Join(want, ",") {
				t.Errorf("table columns:\n%s\ninsert columns:\n%s", strings.Join(lines, ","), strings.Join(want, ","))
			}
		})
	}
}

func TestWriteEveryKind(t *testing.T) {
	c, cfg := migrated(t)
	write(t, c, schematest.EveryKind("org1", "task1", t0))
	for _, table := range schema.Tables {
		t.Run(table, func(t *testing.T) {
			cols := strings.Join(schema.Columns(table), "`, `")
			got := clickhousetest.Query(t, cfg.Addresses[0], "SELECT `"+cols+"` FROM "+cfg.Database+"."+table+" ORDER BY version")
			golden(t, "rows_"+table+".tsv", got)
		})
	}
}

func TestViewsGolden(t *testing.T) {
	c, cfg := migrated(t)
	events := schematest.AnalyticsDataset("org1", t0)
	// Every event twice, in two batches: the views must not count copies.
	write(t, c, events)
	write(t, c, events)
	queries := map[string]string{
		"task_funnel":            "SELECT * FROM %s.task_funnel ORDER BY task_id",
		"step_results":           "SELECT * FROM %s.step_results ORDER BY task_id, step_id, ticket_id",
		"score_distribution":     "SELECT * FROM %s.score_distribution ORDER BY task_id, step_id, bucket",
		"step_pass_rates":        "SELECT * FROM %s.step_pass_rates ORDER BY task_id, step_id",
		"task_pass_rates":        "SELECT * FROM %s.task_pass_rates ORDER BY task_id",
		"test_session_durations": "SELECT * FROM %s.test_session_durations ORDER BY test_session_id",
		"tickets_current":        "SELECT task_id, ticket_id, logged_in, revision FROM %s.tickets_current ORDER BY task_id, ticket_id",
		"test_sessions_current":  "SELECT test_session_id, status, ignored, achievement_ratio, revision FROM %s.test_sessions_current ORDER BY test_session_id",
		"change_events_final":    "SELECT entity, count(), uniqExact(event_id) FROM %s.change_events FINAL GROUP BY entity ORDER BY entity",
	}
	for name, q := range queries {
		t.Run(name, func(t *testing.T) {
			golden(t, "view_"+name+".tsv", clickhousetest.Query(t, cfg.Addresses[0], strings.ReplaceAll(q, "%s", cfg.Database)))
		})
	}
}

func TestWriteSurvivesOutage(t *testing.T) {
	_, cfg := migrated(t)
	proxy := clickhousetest.NewProxy(t, cfg.Addresses[0])
	cfg.Addresses = []string{proxy.Addr()}
	reg := prometheus.NewRegistry()
	c := newClient(t, cfg, reg)
	events := schematest.EveryKind("org1", "task1", t0)
	b := clickhouse.NewBatch()
	for i := range events {
		rows, err := schema.Rows(&events[i])
		if err != nil {
			t.Fatal(err)
		}
		b.AddEvent(rows)
	}
	ctx := context.Background()
	if _, err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping through proxy: %v", err)
	}

	proxy.Cut()
	err := c.Write(ctx, b)
	var ie *clickhouse.InsertError
	if !errors.As(err, &ie) {
		t.Fatalf("Write during outage = %v, want an *InsertError", err)
	}
	if ie.RowError || clickhouse.IsRowError(err) {
		t.Errorf("outage classified as a row error: %v", err)
	}

	proxy.Restore(t)
	if err := c.Write(ctx, b); err != nil {
		t.Fatalf("Write after outage: %v", err)
	}
	if n := metricValue(t, reg, "tisync_clickhouse_reconnects_total"); n < 1 {
		t.Errorf("reconnects = %v, want at least 1", n)
	}
	got := clickhousetest.Query(t, proxy.Addr(), "SELECT count() AS n FROM "+cfg.Database+".change_events FINAL")
	if got != "n\n12\n" {
		t.Errorf("change_events FINAL count:\n%s\nwant 12", got)
	}
}

// metricValue returns the sum of a counter's series in reg.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestWriteRowError(t *testing.T) {
	c, cfg := migrated(t)
	// A column narrower than the data makes the driver reject one specific value.
	clickhousetest.Exec(t, cfg.Addresses[0], "ALTER TABLE "+cfg.Database+".change_events MODIFY COLUMN step_id FixedString(2)")
	events := schematest.EveryKind("org1", "task1", t0)
	long := schematest.NewEvent(schematest.Change{
		Org: "org1", Task: "task1", Entity: schema.EntityTestSession, EntityID: "long", Op: schema.OpCreated, Revision: 1,
		After: schematest.TestSession("org1", "task1", "long", "k", "step-with-a-long-id", "STARTED", 0), ObservedAt: t0,
	})
	b := clickhouse.NewBatch()
	for _, ev := range append(events, long) {
		rows, err := schema.Rows(&ev)
		if err != nil {
			t.Fatal(err)
		}
		b.AddEvent(rows)
	}
	err := c.Write(context.Background(), b)
	if !clickhouse.IsRowError(err) {
		t.Fatalf("Write = %v, want a row error", err)
	}
	var ie *clickhouse.InsertError
	if !errors.As(err, &ie) || ie.Table != schema.TableChangeEvents {
		t.Errorf("error names table %v, want change_events", ie)
	}
	// The pool was replaced, so the client keeps working.
	if _, err := c.Ping(context.Background()); err != nil {
		t.Errorf("Ping after row error: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*clickhouse.Config)
		want   string
	}{
		{"no addresses", func(c *clickhouse.Config) { c.Addresses = nil }, "addresses"},
		{"address without port", func(c *clickhouse.Config) { c.Addresses = []string{"localhost"} }, "addresses"},
		{"database with dot", func(c *clickhouse.Config) { c.Database = "a.b" }, "database"},
		{"unknown compression", func(c *clickhouse.Config) { c.Compression = "gzip" }, "compression"},
		{"zero dial timeout", func(c *clickhouse.Config) { c.DialTimeout = 0 }, "dial_timeout"},
		{"too many connections", func(c *clickhouse.Config) { c.MaxOpenConns = 5000 }, "max_open_conns"},
		{"cert without key", func(c *clickhouse.Config) { c.TLS.CertFile = "a.pem" }, "key_file"},
		{"bad cluster name", func(c *clickhouse.Config) { c.Cluster.Name = "a b" }, "cluster"},
	}
	if err := clickhouse.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig is invalid: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clickhouse.DefaultConfig()
			tc.change(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("Validate accepted the config")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

func TestPasswordNotInErrors(t *testing.T) {
	cfg := clickhouse.DefaultConfig()
	cfg.Password = "s3cret-value"
	cfg.Addresses = []string{"127.0.0.1:1"}
	cfg.DialTimeout = 200 * time.Millisecond
	c := newClient(t, cfg, nil)
	_, err := c.Ping(context.Background())
	if err == nil {
		t.Fatal("Ping to a closed port succeeded")
	}
	if strings.Contains(err.Error(), "s3cret-value") {
		t.Errorf("error contains the password: %v", err)
	}
}

func TestClosedClientRejectsCalls(t *testing.T) {
	c, err := clickhouse.New(clickhouse.DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Ping(context.Background()); !errors.Is(err, clickhouse.ErrClosed) {
		t.Errorf("Ping after Close = %v, want ErrClosed", err)
	}
	err = c.Write(context.Background(), func() *clickhouse.Batch {
		b := clickhouse.NewBatch()
		rows, rerr := schema.Rows(&schematest.EveryKind("o", "t", t0)[0])
		if rerr != nil {
			t.Fatal(rerr)
		}
		b.AddEvent(rows)
		return b
	}())
	if !errors.Is(err, clickhouse.ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
}

func TestNewRejectsBadTLSFiles(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		tls  clickhouse.TLSConfig
		want string
	}{
		{"missing CA file", clickhouse.TLSConfig{Enabled: true, CAFile: filepath.Join(dir, "missing.pem")}, "ca_file"},
		{"CA file without certificate", clickhouse.TLSConfig{Enabled: true, CAFile: notPEM}, "no PEM certificate"},
		{"missing client certificate", clickhouse.TLSConfig{Enabled: true, CertFile: filepath.Join(dir, "c.pem"), KeyFile: filepath.Join(dir, "k.pem")}, "cert_file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clickhouse.DefaultConfig()
			cfg.TLS = tc.tls
			_, err := clickhouse.New(cfg, nil, nil)
			if err == nil {
				t.Fatal("New accepted the TLS settings")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	// Disabled TLS ignores the files.
	cfg := clickhouse.DefaultConfig()
	cfg.TLS = clickhouse.TLSConfig{CAFile: notPEM}
	if _, err := clickhouse.New(cfg, nil, nil); err != nil {
		t.Errorf("New with TLS disabled: %v", err)
	}
}

func TestWriteRejectsRowsNotAdded(t *testing.T) {
	// No server is needed: Write fails before connecting.
	c := newClient(t, clickhouse.DefaultConfig(), nil)
	ev := schematest.EveryKind("org1", "task1", t0)[0]
	rows, err := schema.Rows(&ev)
	if err != nil {
		t.Fatal(err)
	}
	wrongType := append([]any{}, rows.Change.Values...)
	wrongType[0] = 7 // organization_id is a String column
	cases := []struct {
		name  string
		row   schema.Row
		table string
	}{
		{"value of the wrong type", schema.Row{Table: schema.TableChangeEvents, Values: wrongType}, schema.TableChangeEvents},
		{"unknown table", schema.Row{Table: "elsewhere", Values: rows.Change.Values}, "elsewhere"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := clickhouse.NewBatch()
			b.AddEvent(rows)
			b.Add(tc.row)
			if b.Len() != 2 {
				t.Errorf("Len = %d, want 2: the rejected row must not count", b.Len())
			}
			err := c.Write(context.Background(), b)
			if !clickhouse.IsRowError(err) {
				t.Fatalf("Write = %v, want a row error", err)
			}
			var ie *clickhouse.InsertError
			if !errors.As(err, &ie) || ie.Table != tc.table {
				t.Errorf("error names table %v, want %s", ie, tc.table)
			}
		})
	}
}

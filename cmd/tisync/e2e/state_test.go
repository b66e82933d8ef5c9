package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sink/clickhouse"
	"github.com/tisync/tisync/sink/clickhouse/clickhousetest"
	"github.com/tisync/tisync/sync/diff"
)

// recordKey names one record across entities.
type recordKey struct {
	entity schema.Entity
	id     string
}

func (k recordKey) String() string { return string(k.entity) + " " + k.id }

// state maps each record to its normalized JSON, as the daemon stores it in the raw column and in
// the after image of its events.
type state map[recordKey]string

// count returns the number of records of one entity.
func (s state) count(e schema.Entity) int {
	n := 0
	for k := range s {
		if k.entity == e {
			n++
		}
	}
	return n
}

// truth is the simulator's state at one moment.
type truth struct {
	records state
	// taskOf maps each record to its task id.
	taskOf map[recordKey]string
	// tasks lists the task ids in the simulator's creation order.
	tasks []string
}

// readTruth dumps the simulator's state and normalizes every record with diff.Normalizer.
func readTruth(t testing.TB, sim *simServer) truth {
	t.Helper()
	var buf bytes.Buffer
	if err := sim.WriteTruth(&buf); err != nil {
		t.Fatalf("truth dump: %v", err)
	}
	tr := truth{records: state{}, taskOf: map[recordKey]string{}}
	var n diff.Normalizer
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var line struct {
			Entity string          `json:"entity"`
			TaskID string          `json:"taskId"`
			ID     string          `json:"id"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("truth line: %v", err)
		}
		e := schema.Entity(line.Entity)
		normalized, err := n.Append(nil, e, line.Record)
		if err != nil {
			t.Fatalf("normalize %s %s: %v", e, line.ID, err)
		}
		k := recordKey{e, line.ID}
		tr.records[k] = string(normalized)
		tr.taskOf[k] = line.TaskID
		if e == schema.EntityTask {
			tr.tasks = append(tr.tasks, line.ID)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return tr
}

// stateDiff lists how got differs from want, at most limit lines, and returns the number of
// differing records.
func stateDiff(got, want state, limit int) (int, []string) {
	var lines []string
	n := 0
	note := func(format string, args ...any) {
		if n++; n <= limit {
			lines = append(lines, fmt.Sprintf(format, args...))
		}
	}
	keys := make([]recordKey, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		g, ok := got[k]
		switch {
		case !ok:
			note("%s is missing", k)
		case g != want[k]:
			note("%s differs:\n   got %s\n  want %s", k, g, want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			note("%s is present but not in the truth", k)
		}
	}
	return n, lines
}

// clickhouseAddr returns the test server's address. It fails instead of skipping when ClickHouse
// is unreachable and CI or TISYNC_REQUIRE_CLICKHOUSE is set.
func clickhouseAddr(t testing.TB) string {
	t.Helper()
	if os.Getenv("TISYNC_REQUIRE_CLICKHOUSE") != "" {
		addr := os.Getenv("TISYNC_TEST_CLICKHOUSE_ADDR")
		if addr == "" {
			addr = "127.0.0.1:9000"
		}
		if !reachable(addr) {
			t.Fatalf("ClickHouse is unreachable at %s and TISYNC_REQUIRE_CLICKHOUSE is set; start it with deploy/local/clickhouse.sh start", addr)
		}
	}
	return clickhousetest.Addr(t)
}

// reachable reports whether a TCP connection to addr succeeds.
func reachable(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// warehouse reads a tisync database in ClickHouse.
type warehouse struct {
	addr string
	db   string
	conn driver.Conn
}

// newWarehouse returns a fresh database on the test server, dropped when the test ends, and a
// connection that reads it directly, never through a test proxy.
func newWarehouse(t testing.TB) (*warehouse, clickhouse.Config) {
	t.Helper()
	addr := clickhouseAddr(t)
	cfg := clickhousetest.Config(t)
	conn, err := ch.Open(&ch.Options{
		Addr:        []string{addr},
		DialTimeout: 5 * time.Second,
		ReadTimeout: 2 * time.Minute,
		Settings:    ch.Settings{"max_execution_time": 120},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &warehouse{addr: addr, db: cfg.Database, conn: conn}, cfg
}

// current reads the current state from the *_current views: the newest row of every record that is
// not deleted.
func (w *warehouse) current(ctx context.Context) (state, error) {
	out := state{}
	queries := []struct {
		entity schema.Entity
		query  string
	}{
		{schema.EntityTask, "SELECT task_id, raw FROM " + w.db + ".tasks_current"},
		{schema.EntityTicket, "SELECT ticket_id, raw FROM " + w.db + ".tickets_current"},
		{schema.EntityTestSession, "SELECT test_session_id, raw FROM " + w.db + ".test_sessions_current"},
	}
	for _, q := range queries {
		rows, err := w.conn.Query(ctx, q.query)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, raw string
			if err := rows.Scan(&id, &raw); err != nil {
				rows.Close()
				return nil, err
			}
			k := recordKey{q.entity, id}
			if _, dup := out[k]; dup {
				rows.Close()
				return nil, fmt.Errorf("%s: two current rows for %s", q.query, k)
			}
			out[k] = raw
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// changeRow is one row of change_events.
type changeRow struct {
	entity   schema.Entity
	id       string
	eventID  string
	op       string
	revision uint64
	version  uint64
	before   string
	after    string
}

// changes reads change_events through FINAL.
func (w *warehouse) changes(ctx context.Context) ([]changeRow, error) {
	rows, err := w.conn.Query(ctx, "SELECT entity, entity_id, event_id, op, revision, version, `before`, `after` FROM "+w.db+".change_events FINAL")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []changeRow
	for rows.Next() {
		var r changeRow
		var entity string
		if err := rows.Scan(&entity, &r.id, &r.eventID, &r.op, &r.revision, &r.version, &r.before, &r.after); err != nil {
			return nil, err
		}
		r.entity = schema.Entity(entity)
		out = append(out, r)
	}
	return out, rows.Err()
}

// uint64Pair runs a query that returns one row of two unsigned integers.
func (w *warehouse) uint64Pair(ctx context.Context, query string) (uint64, uint64, error) {
	var a, b uint64
	err := w.conn.QueryRow(ctx, query).Scan(&a, &b)
	return a, b, err
}

// exec runs a statement.
func (w *warehouse) exec(ctx context.Context, stmt string) error {
	return w.conn.Exec(ctx, stmt)
}

// waitCaughtUp waits until the current state in ClickHouse equals want. It fails the test with the
// remaining differences when the timeout passes.
func (w *warehouse) waitCaughtUp(t testing.TB, want state, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		got, err := w.current(ctx)
		cancel()
		var n int
		var lines []string
		if err == nil {
			n, lines = stateDiff(got, want, 5)
			if n == 0 {
				return
			}
		}
		if os.Getenv("E2E_DEBUG") != "" {
			t.Logf("DEBUG %s: %d differ %v", time.Now().Format("15:04:05.000"), n, lines)
		}
		if time.Now().After(deadline) {
			if err != nil {
				t.Fatalf("ClickHouse did not catch up with the truth within %s: %v", timeout, err)
			}
			t.Fatalf("ClickHouse did not catch up with the truth within %s: %d records differ:\n%s", timeout, n, strings.Join(lines, "\n"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

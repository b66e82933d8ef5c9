package consume_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/schema/schematest"
	"github.com/tisync/tisync/sink/clickhouse"
	"github.com/tisync/tisync/sink/clickhouse/clickhousetest"
	"github.com/tisync/tisync/sink/consume"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

// runNATS starts an embedded JetStream server on a random port and returns a JetStream client with
// the event stream created.
func runNATS(t testing.TB) (jetstream.JetStream, *nats.Conn) {
	t.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	_, err = js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name:       "TESTINVITE",
		Subjects:   []string{schema.StreamSubjects},
		Storage:    jetstream.FileStorage,
		Duplicates: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	return js, nc
}

// publish publishes events with their id as Nats-Msg-Id, as the publisher does, or without it.
func publish(t testing.TB, js jetstream.JetStream, events []schema.Event, withMsgID bool) {
	t.Helper()
	ctx := context.Background()
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, ev := range events {
		msg := &nats.Msg{Subject: schematest.Subject(ev), Data: schematest.Encode(ev), Header: nats.Header{}}
		if withMsgID {
			msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
		}
		f, err := js.PublishMsgAsync(msg)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
	case <-time.After(60 * time.Second):
		t.Fatal("publishing timed out")
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			t.Fatalf("publish: %v", err)
		}
	}
}

func publishRaw(t testing.TB, js jetstream.JetStream, subject string, data []byte, header nats.Header) {
	t.Helper()
	if _, err := js.PublishMsg(context.Background(), &nats.Msg{Subject: subject, Data: data, Header: header}); err != nil {
		t.Fatal(err)
	}
}

// testConfig returns a consumer configuration with short timings for tests.
func testConfig() consume.Config {
	cfg := consume.DefaultConfig()
	cfg.BatchWait = 100 * time.Millisecond
	cfg.BackOff = nil
	cfg.AckWait = 3 * time.Second
	cfg.InProgressInterval = 500 * time.Millisecond
	cfg.Retry.InitialBackoff = 50 * time.Millisecond
	cfg.Retry.MaxBackoff = 500 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	cfg.PendingInterval = 100 * time.Millisecond
	return cfg
}

type sink struct {
	consumer *consume.Consumer
	reg      *prometheus.Registry
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// startSink runs a consumer in the background until the test ends or stop is called.
func startSink(t testing.TB, cfg consume.Config, js jetstream.JetStream, w consume.Writer) *sink {
	t.Helper()
	reg := prometheus.NewRegistry()
	c, err := consume.New(cfg, js, w, testLogger(t), reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sink{consumer: c, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- c.Run(ctx) }()
	t.Cleanup(func() { s.stop(t) })
	return s
}

// stop cancels the consumer and waits for Run to return; later calls do nothing.
func (s *sink) stop(t testing.TB) {
	t.Helper()
	s.stopOnce.Do(func() {
		s.cancel()
		select {
		case err := <-s.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return within 30s of cancellation")
		}
	})
}

// metric returns the sum of every series of a counter or gauge, filtered by label values.
func (s *sink) metric(t testing.TB, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() != labels[i+1] {
						continue metrics
					}
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

// eventually polls cond until it returns true or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// migratedClient returns a ClickHouse client for a fresh, migrated database reached at addr (the
// server, or a proxy in front of it).
func migratedClient(t testing.TB, cfg clickhouse.Config) *clickhouse.Client {
	t.Helper()
	c, err := clickhouse.New(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if _, err := c.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return c
}

func count(t testing.TB, addr, query string) int {
	t.Helper()
	out := clickhousetest.Query(t, addr, query)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var n int
	if _, err := fmt.Sscan(lines[len(lines)-1], &n); err != nil {
		t.Fatalf("count %q: %v in %q", query, err, out)
	}
	return n
}

func consumerInfo(t testing.TB, js jetstream.JetStream, name string) *jetstream.ConsumerInfo {
	t.Helper()
	c, err := js.Consumer(context.Background(), "TESTINVITE", name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

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

func TestEveryKindLandsInColumns(t *testing.T) {
	js, _ := runNATS(t)
	chCfg := clickhousetest.Config(t)
	w := migratedClient(t, chCfg)
	events := schematest.EveryKind("org1", "task1", t0)
	publish(t, js, events, true)

	s := startSink(t, testConfig(), js, w)
	addr, db := chCfg.Addresses[0], chCfg.Database
	eventually(t, 20*time.Second, "12 change events", func() bool {
		return count(t, addr, "SELECT count() FROM "+db+".change_events") == len(events)
	})
	eventually(t, 10*time.Second, "acknowledgements", func() bool {
		info := consumerInfo(t, js, "tisync-clickhouse")
		return info.NumAckPending == 0 && info.NumPending == 0
	})
	if got := s.metric(t, "tisync_sink_acks_total", "kind", "ack"); got != float64(len(events)) {
		t.Errorf("acks = %v, want %d", got, len(events))
	}
	for _, table := range schema.Tables {
		t.Run(table, func(t *testing.T) {
			cols := strings.Join(schema.Columns(table), "`, `")
			got := clickhousetest.Query(t, addr, "SELECT `"+cols+"` FROM "+db+"."+table+" ORDER BY version")
			golden(t, "rows_"+table+".tsv", got)
		})
	}
}

// snapshot returns the content of every view and of change_events through FINAL.
func snapshot(t testing.TB, addr, db string) string {
	t.Helper()
	queries := []string{
		"SELECT * FROM %s.task_funnel ORDER BY task_id",
		"SELECT * FROM %s.step_pass_rates ORDER BY task_id, step_id",
		"SELECT * FROM %s.task_pass_rates ORDER BY task_id",
		"SELECT * FROM %s.score_distribution ORDER BY task_id, step_id, bucket",
		"SELECT * FROM %s.test_session_durations ORDER BY test_session_id",
		"SELECT * EXCEPT_INSERTED FROM %s.tasks_current ORDER BY task_id",
		"SELECT * EXCEPT_INSERTED FROM %s.tickets_current ORDER BY task_id, ticket_id",
		"SELECT * EXCEPT_INSERTED FROM %s.test_sessions_current ORDER BY task_id, test_session_id",
		"SELECT * EXCEPT_INSERTED FROM %s.change_events FINAL ORDER BY task_id, entity, entity_id, event_id",
		"SELECT count(), uniqExact(event_id) FROM %s.change_events FINAL",
	}
	var b strings.Builder
	for _, q := range queries {
		q = strings.ReplaceAll(q, "%s", db)
		if strings.Contains(q, "EXCEPT_INSERTED") {
			// inserted_at is the insert time, which differs between replays by design.
			table := strings.Fields(q[strings.Index(q, "FROM ")+5:])[0]
			name := table[strings.Index(table, ".")+1:]
			base := name
			switch name {
			case "tasks_current", "tickets_current", "test_sessions_current":
				base = strings.TrimSuffix(name, "_current")
			}
			q = strings.Replace(q, "* EXCEPT_INSERTED", "`"+strings.Join(schema.Columns(base), "`, `")+"`", 1)
		}
		b.WriteString(q + "\n" + clickhousetest.Query(t, addr, q) + "\n")
	}
	return b.String()
}

func TestReplayTwiceLeavesSameState(t *testing.T) {
	js, _ := runNATS(t)
	chCfg := clickhousetest.Config(t)
	w := migratedClient(t, chCfg)
	addr, db := chCfg.Addresses[0], chCfg.Database
	events := schematest.AnalyticsDataset("org1", t0)
	publish(t, js, events, true)

	first := startSink(t, testConfig(), js, w)
	eventually(t, 20*time.Second, "first pass", func() bool {
		return first.metric(t, "tisync_sink_acks_total", "kind", "ack") == float64(len(events))
	})
	first.stop(t)
	before := snapshot(t, addr, db)

	// Publish every event again without Nats-Msg-Id, so that JetStream keeps the copies, and read
	// the whole stream again with a second consumer: every event arrives two more times.
	publish(t, js, events, false)
	cfg := testConfig()
	cfg.Consumer = "replay"
	second := startSink(t, cfg, js, w)
	eventually(t, 20*time.Second, "second pass", func() bool {
		return second.metric(t, "tisync_sink_acks_total", "kind", "ack") == float64(2*len(events))
	})
	second.stop(t)
	after := snapshot(t, addr, db)

	if before != after {
		t.Errorf("state changed after replaying the stream:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := count(t, addr, "SELECT count() FROM "+db+".change_events"); got < 2*len(events) {
		t.Errorf("change_events holds %d rows before merges, want at least %d: the replay did not reach ClickHouse", got, 2*len(events))
	}
	if !strings.Contains(after, fmt.Sprintf("%d\t%d", len(events), len(events))) {
		t.Errorf("change_events FINAL does not hold %d distinct events:\n%s", len(events), after)
	}
}

func TestOutageLosesAndDuplicatesNothing(t *testing.T) {
	js, _ := runNATS(t)
	chCfg := clickhousetest.Config(t)
	migratedClient(t, chCfg)
	addr, db := chCfg.Addresses[0], chCfg.Database

	proxy := clickhousetest.NewProxy(t, addr)
	viaProxy := chCfg
	viaProxy.Addresses = []string{proxy.Addr()}
	viaProxy.DialTimeout = 500 * time.Millisecond
	w, err := clickhouse.New(viaProxy, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })

	events := schematest.Load(2000, "org1", t0)
	cfg := testConfig()
	cfg.BatchEvents = 250
	s := startSink(t, cfg, js, w)

	publish(t, js, events[:1000], true)
	eventually(t, 20*time.Second, "first half written", func() bool {
		return s.metric(t, "tisync_sink_acks_total", "kind", "ack") == 1000
	})

	proxy.Cut()
	publish(t, js, events[1000:], true)
	eventually(t, 20*time.Second, "insert retries during the outage", func() bool {
		return s.metric(t, "tisync_sink_insert_retries_total") >= 3
	})
	// Stay down longer than the ack wait: heartbeats must keep the server from redelivering.
	outageEnd := time.Now().Add(cfg.AckWait + time.Second)
	eventually(t, 2*cfg.AckWait, "outage longer than the ack wait", func() bool { return time.Now().After(outageEnd) })
	proxy.Restore(t)

	eventually(t, 30*time.Second, "every event acknowledged", func() bool {
		return s.metric(t, "tisync_sink_acks_total", "kind", "ack") == float64(len(events))
	})
	if got := count(t, addr, "SELECT count() FROM "+db+".change_events FINAL"); got != len(events) {
		t.Errorf("change_events FINAL = %d, want %d", got, len(events))
	}
	if got := count(t, addr, "SELECT uniqExact(event_id) FROM "+db+".change_events"); got != len(events) {
		t.Errorf("distinct event ids = %d, want %d", got, len(events))
	}
	if got := count(t, addr, "SELECT count() FROM "+db+".tickets_current"); got != 500 {
		t.Errorf("tickets_current = %d, want 500", got)
	}
	if got := count(t, addr, "SELECT count() FROM "+db+".test_sessions_current WHERE status = 'COMPLETE'"); got != 500 {
		t.Errorf("completed test sessions = %d, want 500", got)
	}
	if got := s.metric(t, "tisync_sink_redeliveries_total"); got != 0 {
		t.Errorf("redeliveries = %v, want 0: in-progress heartbeats did not hold the messages", got)
	}
	if got := s.metric(t, "tisync_sink_dead_letters_total"); got != 0 {
		t.Errorf("dead letters = %v, want 0: an outage must not dead-letter events", got)
	}
	info := consumerInfo(t, js, cfg.Consumer)
	if info.NumAckPending != 0 || info.NumRedelivered != 0 {
		t.Errorf("consumer has %d unacknowledged and %d redelivered messages, want 0 and 0", info.NumAckPending, info.NumRedelivered)
	}
}

func TestPoisonMessagesDeadLettered(t *testing.T) {
	js, _ := runNATS(t)
	chCfg := clickhousetest.Config(t)
	w := migratedClient(t, chCfg)
	addr, db := chCfg.Addresses[0], chCfg.Database

	good := schematest.EveryKind("org1", "task1", t0)
	publish(t, js, good[:6], true)
	header := nats.Header{"X-Origin": []string{"test"}, jetstream.MsgIDHeader: []string{"poison-1"}}
	publishRaw(t, js, "testinvite.org1.task1.ticket.created", []byte("not json"), header)
	broken := schematest.Encode(good[0])
	broken = []byte(strings.Replace(string(broken), `"specversion":"1.0"`, `"specversion":"2.0"`, 1))
	publishRaw(t, js, schematest.Subject(good[0]), broken, nil)
	noTitle := good[1]
	noTitle.Data.After = []byte(`{"taskId":"task1B","createdAt":1}`)
	publishRaw(t, js, schematest.Subject(noTitle), schematest.Encode(noTitle), nil)
	wrongSubject := good[6]
	publishRaw(t, js, "testinvite.org1.task1.ticket.deleted", schematest.Encode(wrongSubject), nil)
	publish(t, js, good[6:], true)

	s := startSink(t, testConfig(), js, w)
	eventually(t, 20*time.Second, "valid events written", func() bool {
		return count(t, addr, "SELECT count() FROM "+db+".change_events") == len(good)
	})
	eventually(t, 10*time.Second, "four dead letters", func() bool {
		return s.metric(t, "tisync_sink_dead_letters_total") == 4
	})
	if got := s.metric(t, "tisync_sink_dead_letters_total", "reason", "decode"); got != 1 {
		t.Errorf("decode dead letters = %v, want 1", got)
	}
	if got := s.metric(t, "tisync_sink_dead_letters_total", "reason", "schema"); got != 3 {
		t.Errorf("schema dead letters = %v, want 3", got)
	}

	dlq := s.consumer.DeadLetters()
	list, err := dlq.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 {
		t.Fatalf("List returned %d dead letters, want 4", len(list))
	}
	first := list[0]
	if first.Subject != "testinvite.org1.task1.ticket.created" || first.ReasonKind != "decode" || first.Stream != "TESTINVITE" {
		t.Errorf("first dead letter = subject %s kind %s stream %s", first.Subject, first.ReasonKind, first.Stream)
	}
	if first.StreamSequence != 7 {
		t.Errorf("first dead letter's stream sequence = %d, want 7", first.StreamSequence)
	}
	if first.MsgID != "poison-1" || first.Header.Get("X-Origin") != "test" {
		t.Errorf("original headers lost: msg id %q, X-Origin %q", first.MsgID, first.Header.Get("X-Origin"))
	}
	if !strings.Contains(first.Reason, "invalid") && !strings.Contains(first.Reason, "decode") {
		t.Errorf("reason %q does not explain the failure", first.Reason)
	}
	if list[1].EventID != good[0].ID || !strings.Contains(list[1].Reason, "specversion") {
		t.Errorf("second dead letter: event id %q reason %q", list[1].EventID, list[1].Reason)
	}
	if !strings.Contains(list[2].Reason, "title") {
		t.Errorf("third dead letter's reason %q does not name the missing title", list[2].Reason)
	}
	if !strings.Contains(list[3].Reason, "subject") {
		t.Errorf("fourth dead letter's reason %q does not name the subject", list[3].Reason)
	}
	letter, err := dlq.Show(context.Background(), first.Sequence)
	if err != nil {
		t.Fatal(err)
	}
	if string(letter.Data) != "not json" {
		t.Errorf("Show body = %q, want the original body", letter.Data)
	}
	if _, err := dlq.Show(context.Background(), 999); !errors.Is(err, consume.ErrNotDeadLetter) {
		t.Errorf("Show(999) error = %v, want ErrNotDeadLetter", err)
	}
	// Acks leave after the insert returns, so the server may still count them pending for a moment.
	eventually(t, 10*time.Second, "every message acknowledged", func() bool {
		return consumerInfo(t, js, "tisync-clickhouse").NumAckPending == 0
	})
	info := consumerInfo(t, js, "tisync-clickhouse")
	if info.NumAckPending != 0 {
		t.Errorf("consumer has %d unacknowledged messages, want 0", info.NumAckPending)
	}
}

func TestRowErrorBisectedAndReplayed(t *testing.T) {
	js, _ := runNATS(t)
	chCfg := clickhousetest.Config(t)
	w := migratedClient(t, chCfg)
	addr, db := chCfg.Addresses[0], chCfg.Database
	// A column narrower than one event's value: the driver rejects that row only.
	clickhousetest.Exec(t, addr, "ALTER TABLE "+db+".change_events MODIFY COLUMN step_id FixedString(2)")

	events := schematest.Load(200, "org1", t0)
	long := schematest.NewEvent(schematest.Change{
		Org: "org1", Task: "T1", Entity: schema.EntityTestSession, EntityID: "long", Op: schema.OpCreated, Revision: 1,
		After: schematest.TestSession("org1", "T1", "long", "k1", "step-with-a-long-id", "STARTED", 0), ObservedAt: t0,
	})
	all := append(append(append([]schema.Event{}, events[:100]...), long), events[100:]...)
	publish(t, js, all, true)

	cfg := testConfig()
	cfg.BatchEvents = 1000
	s := startSink(t, cfg, js, w)
	eventually(t, 20*time.Second, "valid events acknowledged", func() bool {
		return s.metric(t, "tisync_sink_acks_total", "kind", "ack") == float64(len(events))
	})
	eventually(t, 10*time.Second, "one insert dead letter", func() bool {
		return s.metric(t, "tisync_sink_dead_letters_total", "reason", "insert") == 1
	})
	if got := count(t, addr, "SELECT uniqExact(event_id) FROM "+db+".change_events"); got != len(events) {
		t.Errorf("change_events holds %d events, want %d", got, len(events))
	}
	dlq := s.consumer.DeadLetters()
	list, err := dlq.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].EventID != long.ID || list[0].ReasonKind != "insert" {
		t.Fatalf("dead letters = %+v, want the long event with kind insert", list)
	}
	if !strings.Contains(list[0].Reason, "change_events") {
		t.Errorf("reason %q does not name the table", list[0].Reason)
	}

	// Fix the table and replay at once: the replay's own message id gets past the event stream's
	// duplicate window, which still holds the original id.
	clickhousetest.Exec(t, addr, "ALTER TABLE "+db+".change_events MODIFY COLUMN step_id String")
	if err := dlq.Replay(context.Background(), list[0].Sequence); err != nil {
		t.Fatalf("Replay: %v", err)
	}
	eventually(t, 20*time.Second, "replayed event written", func() bool {
		return count(t, addr, "SELECT count() FROM "+db+".change_events WHERE event_id = '"+long.ID+"'") == 1
	})
	if left, err := dlq.List(context.Background()); err != nil || len(left) != 0 {
		t.Errorf("dead letters after replay = %d (%v), want 0", len(left), err)
	}
	if err := dlq.Replay(context.Background(), list[0].Sequence); !errors.Is(err, consume.ErrNotDeadLetter) {
		t.Errorf("second Replay error = %v, want ErrNotDeadLetter", err)
	}
}

func TestReplayRejectsLetterWithoutSubject(t *testing.T) {
	js, _ := runNATS(t)
	cfg := consume.DefaultConfig()
	dlq := consume.NewDeadLetterQueue(js, cfg)
	if err := dlq.Ensure(context.Background()); err != nil {
		t.Fatal(err)
	}
	publishRaw(t, js, "tisync.dlq.something", []byte("x"), nil)
	err := dlq.Replay(context.Background(), 1)
	var dle *consume.DeadLetterError
	if !errors.As(err, &dle) {
		t.Fatalf("Replay error = %v, want a *DeadLetterError", err)
	}
	if dle.Sequence != 1 {
		t.Errorf("error names sequence %d, want 1", dle.Sequence)
	}
	res, err := dlq.ReplayAll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Replayed != 0 || len(res.Failed) != 1 {
		t.Errorf("ReplayAll = %+v, want one failure", res)
	}
}

func TestEnsureKeepsExistingStream(t *testing.T) {
	js, _ := runNATS(t)
	cfg := consume.DefaultConfig()
	_, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: cfg.DeadLetterStream, Subjects: []string{"elsewhere.>"}})
	if err != nil {
		t.Fatal(err)
	}
	err = consume.NewDeadLetterQueue(js, cfg).Ensure(context.Background())
	if err == nil || !strings.Contains(err.Error(), "tisync.dlq") {
		t.Errorf("Ensure error = %v, want one naming the missing subjects", err)
	}
	if _, err := js.Stream(context.Background(), cfg.DeadLetterStream); err != nil {
		t.Errorf("existing stream is gone: %v", err)
	}
}

// blockingWriter delays every Write until release is closed, to hold a batch in flight.
type blockingWriter struct {
	inner   consume.Writer
	release chan struct{}
	once    sync.Once
	calls   chan struct{}
}

func (b *blockingWriter) Write(ctx context.Context, batch *clickhouse.Batch) error {
	b.once.Do(func() { close(b.calls) })
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return b.inner.Write(ctx, batch)
}

func TestShutdownFlushesBatch(t *testing.T) {
	js, _ := runNATS(t)
	chCfg := clickhousetest.Config(t)
	w := migratedClient(t, chCfg)
	addr, db := chCfg.Addresses[0], chCfg.Database
	events := schematest.Load(40, "org1", t0)
	publish(t, js, events, true)

	cfg := testConfig()
	cfg.BatchWait = 2 * time.Second // longer than the test takes to cancel
	cfg.BatchEvents = 1000
	s := startSink(t, cfg, js, w)
	eventually(t, 10*time.Second, "events in the batch", func() bool {
		return s.metric(t, "tisync_sink_messages_consumed_total") == float64(len(events))
	})
	if got := count(t, addr, "SELECT count() FROM "+db+".change_events"); got != 0 {
		t.Fatalf("batch flushed before shutdown: %d rows", got)
	}
	s.stop(t)
	if got := count(t, addr, "SELECT count() FROM "+db+".change_events"); got != len(events) {
		t.Errorf("change_events after shutdown = %d, want %d", got, len(events))
	}
	if got := s.metric(t, "tisync_sink_flushes_total", "reason", "shutdown"); got != 1 {
		t.Errorf("shutdown flushes = %v, want 1", got)
	}
	info := consumerInfo(t, js, cfg.Consumer)
	if info.NumAckPending != 0 || info.NumPending != 0 {
		t.Errorf("after shutdown: %d unacknowledged, %d pending, want 0 and 0", info.NumAckPending, info.NumPending)
	}
}

func TestShutdownDuringSlowInsert(t *testing.T) {
	js, _ := runNATS(t)
	chCfg := clickhousetest.Config(t)
	w := &blockingWriter{inner: migratedClient(t, chCfg), release: make(chan struct{}), calls: make(chan struct{})}
	events := schematest.Load(10, "org1", t0)
	publish(t, js, events, true)
	s := startSink(t, testConfig(), js, w)
	<-w.calls
	// Cancel while the insert is blocked, then let it finish: the flush must complete and ack.
	s.cancel()
	close(w.release)
	s.stop(t)
	if got := count(t, chCfg.Addresses[0], "SELECT count() FROM "+chCfg.Database+".change_events"); got != len(events) {
		t.Errorf("change_events = %d, want %d", got, len(events))
	}
	if info := consumerInfo(t, js, "tisync-clickhouse"); info.NumAckPending != 0 {
		t.Errorf("%d messages unacknowledged after shutdown", info.NumAckPending)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := consume.DefaultConfig().Validate(); err != nil {
		t.Fatalf("DefaultConfig is invalid: %v", err)
	}
	cases := []struct {
		name   string
		change func(*consume.Config)
		want   string
	}{
		{"empty stream", func(c *consume.Config) { c.Stream = "" }, "stream"},
		{"consumer with dot", func(c *consume.Config) { c.Consumer = "a.b" }, "consumer"},
		{"same streams", func(c *consume.Config) { c.DeadLetterStream = c.Stream }, "dead_letter_stream"},
		{"filter with space", func(c *consume.Config) { c.FilterSubject = "a b" }, "filter_subject"},
		{"prefix with wildcard", func(c *consume.Config) { c.DeadLetterSubjectPrefix = "dlq.>" }, "dead_letter_subject_prefix"},
		{"prefix inside event subjects", func(c *consume.Config) { c.DeadLetterSubjectPrefix = "testinvite.dlq" }, "dead_letter_subject_prefix"},
		{"zero batch", func(c *consume.Config) { c.BatchEvents = 0 }, "batch_events"},
		{"tiny batch bytes", func(c *consume.Config) { c.BatchBytes = 10 }, "batch_bytes"},
		{"ack pending below batch", func(c *consume.Config) { c.MaxAckPending = 10 }, "max_ack_pending"},
		{"backoff as long as deliveries", func(c *consume.Config) { c.MaxDeliver = 4 }, "back_off"},
		{"heartbeat slower than ack wait", func(c *consume.Config) { c.InProgressInterval = time.Minute }, "in_progress_interval"},
		{"negative backoff", func(c *consume.Config) { c.BackOff = []time.Duration{-time.Second} }, "back_off[0]"},
		{"retry cap below start", func(c *consume.Config) { c.Retry.MaxBackoff = time.Millisecond }, "retry.max_backoff"},
		{"negative attempts", func(c *consume.Config) { c.Retry.MaxAttempts = -1 }, "retry.max_attempts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := consume.DefaultConfig()
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

// testLogger returns a logger that writes into the test log when TISYNC_TEST_LOG is set.
func testLogger(t testing.TB) *zap.Logger {
	if os.Getenv("TISYNC_TEST_LOG") == "" {
		return nil
	}
	return zaptest.NewLogger(t)
}

// failingWriter fails every write with an error unrelated to the rows.
type failingWriter struct{}

func (failingWriter) Write(context.Context, *clickhouse.Batch) error {
	return &clickhouse.InsertError{Table: "change_events", Err: errors.New("connection refused")}
}

func TestMaxDeliveriesDeadLettered(t *testing.T) {
	js, _ := runNATS(t)
	events := schematest.EveryKind("org1", "task1", t0)[:2]
	publish(t, js, events, true)
	cfg := testConfig()
	cfg.MaxDeliver = 2
	cfg.Retry.MaxAttempts = 1 // hand the batch back at once instead of retrying in-process
	cfg.Retry.MaxBackoff = 100 * time.Millisecond
	s := startSink(t, cfg, js, failingWriter{})
	eventually(t, 20*time.Second, "two max-deliveries dead letters", func() bool {
		return s.metric(t, "tisync_sink_dead_letters_total", "reason", "max_deliveries") == 2
	})
	list, err := s.consumer.DeadLetters().List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 {
		t.Fatalf("List returned %d dead letters, want 2", len(list))
	}
	// The advisories may arrive in any order.
	want := map[string]bool{events[0].ID: true, events[1].ID: true}
	for i, d := range list {
		if d.ReasonKind != "max_deliveries" || !want[d.EventID] || d.Deliveries != 2 {
			t.Errorf("dead letter %d = kind %s event %s deliveries %d", i, d.ReasonKind, d.EventID, d.Deliveries)
		}
		delete(want, d.EventID)
	}
}

func TestByteLimitFlushes(t *testing.T) {
	cases := []struct {
		name       string
		batchBytes int
		// wantBytesFlushes is the minimum number of byte-limited flushes.
		wantBytesFlushes float64
	}{
		// Each event of Load is about 1.1 KB to 2.7 KB, so a 4 KiB budget holds one to three.
		{"budget of a few events", 4096, 5},
		// Every event exceeds 1 KiB, so each one is fetched alone without a byte budget.
		{"event larger than budget", 1024, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			js, _ := runNATS(t)
			chCfg := clickhousetest.Config(t)
			w := migratedClient(t, chCfg)
			events := schematest.Load(40, "org1", t0)
			publish(t, js, events, true)
			cfg := testConfig()
			cfg.BatchBytes = tc.batchBytes
			s := startSink(t, cfg, js, w)
			eventually(t, 20*time.Second, "every event acknowledged", func() bool {
				return s.metric(t, "tisync_sink_acks_total", "kind", "ack") == float64(len(events))
			})
			if got := count(t, chCfg.Addresses[0], "SELECT count() FROM "+chCfg.Database+".change_events"); got != len(events) {
				t.Errorf("change_events = %d, want %d", got, len(events))
			}
			if got := s.metric(t, "tisync_sink_flushes_total", "reason", "bytes"); got < tc.wantBytesFlushes {
				t.Errorf("byte-limited flushes = %v, want at least %v", got, tc.wantBytesFlushes)
			}
		})
	}
}

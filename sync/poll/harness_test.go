package poll

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/checkpoint"
	"github.com/tisync/tisync/sync/diff"
	"github.com/tisync/tisync/sync/publish"
	"github.com/tisync/tisync/sync/testinvite"
	"github.com/tisync/tisync/sync/testinvite/testinvitesim"
)

// harness is a simulator, an embedded NATS server and a poller wired to both, as the daemon wires
// them.
type harness struct {
	t        testing.TB
	sim      *testinvitesim.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	client   *testinvite.Client
	store    checkpoint.Store
	pub      *publish.Publisher
	leaser   *publish.Leaser
	poller   *Poller
	registry *prometheus.Registry
	cfg      Config
}

type harnessOptions struct {
	sim      testinvitesim.Options
	poll     func(*Config)
	client   func(*testinvite.Config)
	store    checkpoint.Store
	noLeaser bool
}

func newHarness(t testing.TB, o harnessOptions) *harness {
	t.Helper()
	if o.sim.Seed == 0 {
		o.sim.Seed = 7
	}
	sim, err := testinvitesim.NewServer(o.sim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)

	h := &harness{t: t, sim: sim, registry: prometheus.NewRegistry()}
	h.nc = runNATS(t)
	h.js, _ = jetstream.New(h.nc)
	ctx := testContext(t)

	pubCfg := publish.DefaultConfig()
	h.stream, err = publish.EnsureStream(ctx, h.js, pubCfg.Stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.pub, err = publish.NewPublisher(h.nc, pubCfg, nil, h.registry)
	if err != nil {
		t.Fatal(err)
	}
	if !o.noLeaser {
		h.leaser, err = publish.NewLeaser(ctx, h.js, pubCfg.Lease, "test-worker", nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	h.store = o.store
	if h.store == nil {
		h.store, err = checkpoint.NewJetStream(ctx, h.js, checkpoint.DefaultConfig(), nil, nil)
		if err != nil {
			t.Fatal(err)
		}
	}

	tcfg := testinvite.DefaultConfig()
	tcfg.BaseURL = sim.URL
	tcfg.OrganizationID = sim.OrganizationID()
	tcfg.PrivateKey = testinvite.Secret(sim.Credentials().PrivateKey)
	tcfg.RateLimit.RPS = 0
	tcfg.Retry.InitialBackoff = time.Millisecond
	tcfg.Retry.MaxBackoff = 10 * time.Millisecond
	tcfg.Retry.MaxAttempts = 8
	tcfg.RequestTimeout = 2 * time.Second
	if o.client != nil {
		o.client(&tcfg)
	}
	h.client, err = testinvite.New(tcfg, nil, nil, testinvite.WithHTTPClient(sim.Client()))
	if err != nil {
		t.Fatal(err)
	}

	h.cfg = DefaultConfig()
	h.cfg.Jitter = 0
	h.cfg.Timeout = time.Minute
	if o.poll != nil {
		o.poll(&h.cfg)
	}
	deps := Deps{Client: h.client, Store: h.store, Publisher: h.pub, Registerer: h.registry}
	if h.leaser != nil {
		deps.Leaser = h.leaser
	}
	h.poller, err = NewPoller(h.cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// runNATS starts an in-process nats-server with JetStream on a random loopback port.
func runNATS(t testing.TB) *nats.Conn {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// pollAll polls the task list and then the tickets and test sessions of every task the simulator
// has, and returns the summaries.
func (h *harness) pollAll() []Summary {
	h.t.Helper()
	ctx := testContext(h.t)
	var sums []Summary
	sum, err := h.poller.Poll(ctx, Request{Entity: schema.EntityTask})
	if err != nil {
		h.t.Fatalf("poll task list: %v", err)
	}
	sums = append(sums, sum)
	for _, task := range h.sim.TaskIDs() {
		for _, e := range []schema.Entity{schema.EntityTicket, schema.EntityTestSession} {
			sum, err := h.poller.Poll(ctx, Request{TaskID: task, Entity: e})
			if err != nil {
				h.t.Fatalf("poll %s of %s: %v", e, task, err)
			}
			sums = append(sums, sum)
		}
	}
	return sums
}

// lastSeq returns the stream's last sequence number.
func (h *harness) lastSeq() uint64 {
	h.t.Helper()
	info, err := h.stream.Info(testContext(h.t))
	if err != nil {
		h.t.Fatal(err)
	}
	return info.State.LastSeq
}

// events returns the events stored after sequence after, in stream order.
func (h *harness) events(after uint64) []schema.Event {
	h.t.Helper()
	ctx := testContext(h.t)
	last := h.lastSeq()
	var out []schema.Event
	for seq := after + 1; seq <= last; seq++ {
		msg, err := h.stream.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			h.t.Fatal(err)
		}
		var ev schema.Event
		if err := json.Unmarshal(msg.Data, &ev); err != nil {
			h.t.Fatalf("event %d: %v", seq, err)
		}
		if got := msg.Header.Get(jetstream.MsgIDHeader); got != ev.ID {
			h.t.Errorf("event %d: Nats-Msg-Id %q differs from id %q", seq, got, ev.ID)
		}
		out = append(out, ev)
	}
	return out
}

// recordKey names one record across entities.
type recordKey struct {
	entity schema.Entity
	id     string
}

// truth returns the simulator's current state, normalized as the poller normalizes API records.
func (h *harness) truth() map[recordKey]string {
	h.t.Helper()
	var buf bytes.Buffer
	if err := h.sim.WriteTruth(&buf); err != nil {
		h.t.Fatal(err)
	}
	var n diff.Normalizer
	out := map[recordKey]string{}
	sc := bufio.NewScanner(&buf)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Entity string          `json:"entity"`
			ID     string          `json:"id"`
			Record json.RawMessage `json:"record"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			h.t.Fatal(err)
		}
		e := schema.Entity(line.Entity)
		normalized, err := n.Append(nil, e, line.Record)
		if err != nil {
			h.t.Fatal(err)
		}
		out[recordKey{e, line.ID}] = string(normalized)
	}
	if err := sc.Err(); err != nil {
		h.t.Fatal(err)
	}
	return out
}

// truthOf returns the truth of one entity.
func (h *harness) truthOf(entity schema.Entity) map[recordKey]string {
	h.t.Helper()
	out := h.truth()
	for k := range out {
		if k.entity != entity {
			delete(out, k)
		}
	}
	return out
}

// replay applies events to a state map the way the ClickHouse current-state views do: per record,
// the event with the largest version wins, whatever the order of the stream.
func replay(state map[recordKey]string, events []schema.Event) {
	versions := map[recordKey]uint64{}
	for _, ev := range events {
		k := recordKey{ev.Data.Entity, ev.Data.EntityID}
		if v, seen := versions[k]; seen && v > ev.Data.Version {
			continue
		}
		versions[k] = ev.Data.Version
		if ev.Data.Op == schema.OpDeleted {
			delete(state, k)
			continue
		}
		state[k] = string(ev.Data.After)
	}
}

// assertSameState fails the test for every record whose state differs from the truth.
func assertSameState(t *testing.T, got, want map[recordKey]string) {
	t.Helper()
	shown := 0
	for k, w := range want {
		g, ok := got[k]
		if ok && g == w {
			continue
		}
		if shown++; shown <= 5 {
			if !ok {
				t.Errorf("%s %s missing from the events", k.entity, k.id)
			} else {
				t.Errorf("%s %s differs:\n got %s\nwant %s", k.entity, k.id, g, w)
			}
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			if shown++; shown <= 5 {
				t.Errorf("%s %s is in the events but not in the truth", k.entity, k.id)
			}
		}
	}
	if shown > 5 {
		t.Errorf("%d differences in all", shown)
	}
}

package checkpoint

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sync/diff"
)

var (
	t0        = time.Date(2025, 2, 1, 12, 0, 0, 0, time.UTC)
	ticketKey = Key{OrganizationID: "org1", TaskID: "task1", Entity: schema.EntityTicket}
)

// startServer runs an in-process nats-server with JetStream on a random port, storing under dir.
func startServer(tb testing.TB, dir string) *server.Server {
	tb.Helper()
	s, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		tb.Fatalf("create nats-server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("nats-server not ready within 10s")
	}
	tb.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

func connect(tb testing.TB, s *server.Server) jetstream.JetStream {
	tb.Helper()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}

// clock is a settable clock for WithClock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newJetStream(tb testing.TB, js jetstream.JetStream, c *clock) *JetStream {
	tb.Helper()
	cfg := DefaultConfig()
	cfg.Timeout = 20 * time.Second
	store, err := NewJetStream(context.Background(), js, cfg, nil, nil, WithClock(c.now))
	if err != nil {
		tb.Fatalf("NewJetStream: %v", err)
	}
	return store
}

// ticketJSON returns a small detailed ticket.
func ticketJSON(id string, v int) []byte {
	return fmt.Appendf(nil, `{"candidateId":%q,"taskId":"task1","loggedIn":%t,"email":"%s@example.com","rating":%d}`, id, v > 0, id, v)
}

// scanTickets scans tickets r0..r(n-1) in version v against prev and returns the result.
func scanTickets(tb testing.TB, meta Meta, prev *diff.Snapshot, n, v int, at time.Time) *diff.Result {
	tb.Helper()
	opts := meta.ScanOptions(prev)
	opts.ObservedAt = at
	s, err := diff.NewScan(opts)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("r%d", i)
		if err := s.Add(id, ticketJSON(id, v)); err != nil {
			tb.Fatal(err)
		}
	}
	res, err := s.Finish(diff.Complete, s.Missing())
	if err != nil {
		tb.Fatal(err)
	}
	return res
}

// records returns the records of a snapshot for comparisons.
func records(s *diff.Snapshot) []string {
	var out []string
	for r := range s.Records() {
		out = append(out, fmt.Sprintf("%s@%d:%s", r.ID, r.Revision, r.Data))
	}
	return out
}

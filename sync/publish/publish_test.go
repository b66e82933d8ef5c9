package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tisync/tisync/schema"
)

// runServer starts an in-process nats-server with JetStream on a random loopback port and a store
// in a temporary directory, and returns a connection to it.
func runServer(t testing.TB) (*server.Server, *nats.Conn) {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
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
	return srv, nc
}

func testContext(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testEvents returns n distinct ticket events of one task.
func testEvents(n int) []schema.Event {
	events := make([]schema.Event, n)
	observed := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for i := range events {
		entityID := fmt.Sprintf("ticket%05d", i)
		id := schema.EventID("org1", "task1", schema.EntityTicket, entityID, 1, uint64(i))
		events[i] = schema.Event{
			SpecVersion:     schema.SpecVersion,
			ID:              id,
			Source:          schema.Source("org1", "task1"),
			Type:            schema.EventType(schema.EntityTicket, schema.OpSnapshot),
			Subject:         entityID,
			Time:            observed,
			DataContentType: schema.DataContentType,
			DataSchema:      schema.DataSchemaV1,
			Data: schema.Data{
				OrganizationID: "org1",
				TaskID:         "task1",
				Entity:         schema.EntityTicket,
				EntityID:       entityID,
				Op:             schema.OpSnapshot,
				Revision:       1,
				Version:        uint64(observed.UnixMicro()),
				ObservedAt:     observed,
				ContentHash:    schema.FormatHash(uint64(i)),
				ChangedFields:  []string{},
				Before:         nil,
				After:          []byte(fmt.Sprintf(`{"candidateId":%q}`, entityID)),
			},
		}
	}
	return events
}

func TestEnsureStreamCreatesAndKeepsData(t *testing.T) {
	_, nc := runServer(t)
	ctx := testContext(t)
	js, _ := jetstream.New(nc)
	cfg := DefaultConfig().Stream

	stream, err := EnsureStream(ctx, js, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	info := stream.CachedInfo().Config
	if info.Storage != jetstream.FileStorage || info.Duplicates != 2*time.Hour || info.MaxAge != 30*24*time.Hour {
		t.Errorf("stream config = %+v", info)
	}
	if _, err := js.Publish(ctx, "testinvite.org1.task1.ticket.created", []byte("{}")); err != nil {
		t.Fatal(err)
	}

	// A second start with a longer duplicate window and an extra subject on the server keeps the
	// message and the subject.
	info.Subjects = append(info.Subjects, "legacy.>")
	if _, err := js.UpdateStream(ctx, info); err != nil {
		t.Fatal(err)
	}
	cfg.DuplicateWindow = 3 * time.Hour
	stream, err = EnsureStream(ctx, js, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.State.Msgs != 1 {
		t.Errorf("messages after update = %d, want 1", got.State.Msgs)
	}
	if got.Config.Duplicates != 3*time.Hour {
		t.Errorf("duplicate window = %s, want 3h", got.Config.Duplicates)
	}
	if len(got.Config.Subjects) != 2 {
		t.Errorf("subjects = %v, want testinvite.> and legacy.>", got.Config.Subjects)
	}
}

func TestEnsureStreamConflicts(t *testing.T) {
	tests := []struct {
		name   string
		change func(*StreamConfig)
		want   string
	}{
		{"storage change", func(c *StreamConfig) { c.Storage = "memory" }, "cannot change it in place"},
		{"max age shrink", func(c *StreamConfig) { c.MaxAge = time.Hour }, "stream.allow_retention_shrink"},
		{"max bytes shrink", func(c *StreamConfig) { c.MaxBytes = 1 << 20 }, "stream.allow_retention_shrink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, nc := runServer(t)
			ctx := testContext(t)
			js, _ := jetstream.New(nc)
			cfg := DefaultConfig().Stream
			if _, err := EnsureStream(ctx, js, cfg, nil); err != nil {
				t.Fatal(err)
			}
			tt.change(&cfg)
			_, err := EnsureStream(ctx, js, cfg, nil)
			if !errors.Is(err, ErrStreamConflict) {
				t.Fatalf("err = %v, want ErrStreamConflict", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestEnsureStreamAllowedShrink(t *testing.T) {
	_, nc := runServer(t)
	ctx := testContext(t)
	js, _ := jetstream.New(nc)
	cfg := DefaultConfig().Stream
	if _, err := EnsureStream(ctx, js, cfg, nil); err != nil {
		t.Fatal(err)
	}
	cfg.MaxAge = 3 * time.Hour
	cfg.AllowRetentionShrink = true
	stream, err := EnsureStream(ctx, js, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := stream.CachedInfo().Config.MaxAge; got != 3*time.Hour {
		t.Errorf("max age = %s, want 3h", got)
	}
}

func TestPublishStoresEventsOnce(t *testing.T) {
	_, nc := runServer(t)
	ctx := testContext(t)
	cfg := DefaultConfig()
	cfg.MaxInFlight = 16
	js, _ := jetstream.New(nc)
	stream, err := EnsureStream(ctx, js, cfg.Stream, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(nc, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	events := testEvents(500)

	var lastProgress int
	stats, err := p.Publish(ctx, events, func(n int) { lastProgress = n })
	if err != nil {
		t.Fatal(err)
	}
	if stats.Published != 500 || stats.Duplicates != 0 {
		t.Errorf("first publish stats = %+v, want 500 published, 0 duplicates", stats)
	}
	if lastProgress != 500 {
		t.Errorf("last progress = %d, want 500", lastProgress)
	}

	// Publishing the same events again, as a poll redone after a crash does, stores nothing new.
	stats, err = p.Publish(ctx, events, nil)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Duplicates != 500 {
		t.Errorf("second publish duplicates = %d, want 500", stats.Duplicates)
	}
	info, err := stream.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 500 {
		t.Errorf("stream holds %d messages, want 500", info.State.Msgs)
	}

	msg, err := stream.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != events[0].ID {
		t.Errorf("Nats-Msg-Id = %q, want %q", got, events[0].ID)
	}
	if got := msg.Header.Get("Content-Type"); got != ContentType {
		t.Errorf("Content-Type = %q", got)
	}
	if want := "testinvite.org1.task1.ticket.snapshot"; msg.Subject != want {
		t.Errorf("subject = %q, want %q", msg.Subject, want)
	}
}

func TestPublishWrongStream(t *testing.T) {
	_, nc := runServer(t)
	ctx := testContext(t)
	cfg := DefaultConfig()
	js, _ := jetstream.New(nc)
	if _, err := EnsureStream(ctx, js, cfg.Stream, nil); err != nil {
		t.Fatal(err)
	}
	cfg.Stream.Name = "SOMEONE_ELSE"
	p, err := NewPublisher(nc, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Publish(ctx, testEvents(3), nil)
	if !errors.Is(err, ErrWrongStream) {
		t.Fatalf("err = %v, want ErrWrongStream", err)
	}
}

func TestPublishGivesUpAfterMaxAttempts(t *testing.T) {
	_, nc := runServer(t)
	ctx := testContext(t)
	cfg := DefaultConfig()
	cfg.MaxAttempts = 2
	cfg.RetryBackoff = time.Millisecond
	cfg.AckTimeout = time.Second
	// No stream captures the subjects, so every publish fails with no responders.
	p, err := NewPublisher(nc, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stats, err := p.Publish(ctx, testEvents(4), nil)
	var pubErr *PublishError
	if !errors.As(err, &pubErr) {
		t.Fatalf("err = %v, want *PublishError", err)
	}
	if pubErr.Failed != 4 || pubErr.Attempts != 2 {
		t.Errorf("PublishError = %+v, want 4 failed after 2 attempts", pubErr)
	}
	if stats.Retried != 4 {
		t.Errorf("retried = %d, want 4", stats.Retried)
	}
}

func TestMessageRejectsBadIDs(t *testing.T) {
	ev := testEvents(1)[0]
	ev.Data.TaskID = "task.1"
	if _, err := Message(&ev); err == nil {
		t.Fatal("no error for a task id with a dot")
	}
	ev = testEvents(1)[0]
	ev.Data.Op = "merged"
	if _, err := Message(&ev); err == nil {
		t.Fatal("no error for an unknown op")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"stream name with dot", func(c *Config) { c.Stream.Name = "A.B" }, "stream.name"},
		{"foreign subject", func(c *Config) { c.Stream.Subjects = []string{"orders.>"} }, "stream.subjects"},
		{"storage", func(c *Config) { c.Stream.Storage = "disk" }, "stream.storage"},
		{"replicas", func(c *Config) { c.Stream.Replicas = 7 }, "stream.replicas"},
		{"zero max bytes", func(c *Config) { c.Stream.MaxBytes = 0 }, "stream.max_bytes"},
		{"duplicate window past max age", func(c *Config) { c.Stream.MaxAge = time.Hour }, "stream.duplicate_window"},
		{"in flight", func(c *Config) { c.MaxInFlight = 0 }, "max_in_flight"},
		{"attempts", func(c *Config) { c.MaxAttempts = 0 }, "max_attempts"},
		{"lease ttl", func(c *Config) { c.Lease.TTL = time.Second }, "lease.ttl"},
		{"lease bucket", func(c *Config) { c.Lease.Bucket = "a b" }, "lease.bucket"},
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tt.change(&cfg)
			err := cfg.Validate()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not name %s", err, tt.want)
			}
		})
	}
}

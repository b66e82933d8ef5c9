package e2e

import (
	"encoding/json"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nats-io/nats.go"
)

// Subjects of the checkpoint store with the daemon's default bucket names: the chunks of snapshot
// objects, and the metadata whose update commits a checkpoint.
const (
	checkpointChunks = "$O.tisync_checkpoints.C.>"
	checkpointMeta   = "$KV.tisync_checkpoint_meta.>"
)

// streamWatch subscribes to the events the pollers publish and to the checkpoints they store,
// through the daemon's embedded NATS server. A test learns from it when a poll has published events
// whose checkpoint is not stored yet, and can act at that moment.
type streamWatch struct {
	mu sync.Mutex
	// uncommitted maps a checkpoint (task/entity) to the events published for it since its
	// metadata last changed.
	uncommitted map[string]int

	// prepared is the number of checkpoints whose metadata names a pending snapshot.
	prepared map[string]bool

	events atomic.Int64
	chunks atomic.Int64
	// hook, when set, runs on each published event (kind "event"), on each chunk of a checkpoint
	// object being stored (kind "checkpoint") and on each metadata update that marks a checkpoint
	// pending (kind "prepared").
	hook atomic.Pointer[func(kind, subject string)]
}

// watchStream subscribes on nc, which must reconnect across daemon restarts.
func watchStream(t testing.TB, nc *nats.Conn) *streamWatch {
	t.Helper()
	w := &streamWatch{uncommitted: map[string]int{}, prepared: map[string]bool{}}
	subs := []struct {
		subject string
		fn      nats.MsgHandler
	}{
		{"testinvite.>", w.onEvent},
		{checkpointChunks, w.onChunk},
		{checkpointMeta, w.onMeta},
	}
	for _, s := range subs {
		sub, err := nc.Subscribe(s.subject, s.fn)
		if err != nil {
			t.Fatal(err)
		}
		// The initial load publishes thousands of events at once.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return w
}

// onEvent handles testinvite.<organization>.<task>.<entity>.<op>.
func (w *streamWatch) onEvent(msg *nats.Msg) {
	tokens := strings.Split(msg.Subject, ".")
	if len(tokens) != 5 {
		return
	}
	task, entity := tokens[2], tokens[3]
	if entity == "task" {
		task = "_" // the task list has one checkpoint for the organization
	}
	w.mu.Lock()
	w.uncommitted[task+"/"+entity]++
	w.mu.Unlock()
	w.events.Add(1)
	w.fire("event", msg.Subject)
}

func (w *streamWatch) onChunk(msg *nats.Msg) {
	w.chunks.Add(1)
	w.fire("checkpoint", msg.Subject)
}

// onMeta handles $KV.<bucket>.<organization>.<task>.<entity>.
func (w *streamWatch) onMeta(msg *nats.Msg) {
	tokens := strings.Split(msg.Subject, ".")
	if len(tokens) != 5 {
		return
	}
	key := tokens[3] + "/" + tokens[4]
	var meta struct {
		Pending string `json:"pending"`
	}
	_ = json.Unmarshal(msg.Data, &meta)
	w.mu.Lock()
	delete(w.uncommitted, key)
	if meta.Pending != "" {
		w.prepared[key] = true
	} else {
		delete(w.prepared, key)
	}
	w.mu.Unlock()
	if meta.Pending != "" {
		w.fire("prepared", msg.Subject)
	}
}

// preparedNow reports whether some checkpoint is pending: a poll between prepare and commit.
func (w *streamWatch) preparedNow() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.prepared) > 0
}

func (w *streamWatch) fire(kind, subject string) {
	if hook := w.hook.Load(); hook != nil {
		(*hook)(kind, subject)
	}
}

// publishedUncommitted returns the checkpoints with events published since their metadata last
// changed: polls between publish and checkpoint.
func (w *streamWatch) publishedUncommitted() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for k := range w.uncommitted {
		out = append(out, k)
	}
	return out
}

// forget clears the pending checkpoints, after the daemon was killed and its polls ended with it.
func (w *streamWatch) forget() {
	w.mu.Lock()
	clear(w.uncommitted)
	clear(w.prepared)
	w.mu.Unlock()
}

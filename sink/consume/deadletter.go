package consume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers of a dead letter. The original message's own headers are kept beside them, except the
// Nats-* headers that JetStream interprets, whose Nats-Msg-Id survives as HeaderOriginalMsgID.
const (
	HeaderReason          = "Tisync-Dlq-Reason"
	HeaderReasonKind      = "Tisync-Dlq-Reason-Kind"
	HeaderSubject         = "Tisync-Dlq-Subject"
	HeaderStream          = "Tisync-Dlq-Stream"
	HeaderSequence        = "Tisync-Dlq-Sequence"
	HeaderConsumer        = "Tisync-Dlq-Consumer"
	HeaderDeliveries      = "Tisync-Dlq-Deliveries"
	HeaderTime            = "Tisync-Dlq-Time"
	HeaderEventID         = "Tisync-Dlq-Event-Id"
	HeaderOriginalMsgID   = "Tisync-Dlq-Msg-Id"
	headerPrefix          = "Tisync-Dlq-"
	maxReasonHeaderLength = 2048
)

// DeadLetter is one message in the dead-letter stream.
type DeadLetter struct {
	// Sequence is the message's sequence in the dead-letter stream, the key of Show and Replay.
	Sequence uint64
	// Time is when the sink dead-lettered the message.
	Time time.Time
	// Subject, Stream and StreamSequence locate the original message.
	Subject        string
	Stream         string
	StreamSequence uint64
	// ReasonKind is decode, schema, insert or max_deliveries; Reason is the error text.
	ReasonKind string
	Reason     string
	// EventID is the event id read from the body, or "" when the body is not an event.
	EventID string
	// MsgID is the original Nats-Msg-Id, or "".
	MsgID string
	// Deliveries is how often the server had delivered the original message.
	Deliveries uint64
	// Header is every header of the dead letter; Data is the original body.
	Header nats.Header
	Data   []byte
}

// DeadLetterQueue reads and replays the dead-letter stream. It is safe for concurrent use.
type DeadLetterQueue struct {
	js     jetstream.JetStream
	stream string
	prefix string
}

// NewDeadLetterQueue returns the dead-letter queue named in cfg (DeadLetterStream and
// DeadLetterSubjectPrefix), without touching the server.
func NewDeadLetterQueue(js jetstream.JetStream, cfg Config) *DeadLetterQueue {
	return &DeadLetterQueue{js: js, stream: cfg.DeadLetterStream, prefix: cfg.DeadLetterSubjectPrefix}
}

// Ensure creates the dead-letter stream (file storage, subjects <prefix>.>) when it does not exist.
// An existing stream is kept as it is; Ensure returns an error when it does not capture the
// prefix's subjects.
func (q *DeadLetterQueue) Ensure(ctx context.Context) error {
	s, err := q.js.Stream(ctx, q.stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = q.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:        q.stream,
			Description: "Change events tisync could not write into ClickHouse, with the reason in headers.",
			Subjects:    []string{q.prefix + ".>"},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			Duplicates:  2 * time.Minute,
		})
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create dead-letter stream %s: %w", q.stream, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("look up dead-letter stream %s: %w", q.stream, err)
	}
	for _, subj := range s.CachedInfo().Config.Subjects {
		if subj == q.prefix+".>" || subj == ">" {
			return nil
		}
	}
	return fmt.Errorf("dead-letter stream %s exists with subjects %v, which do not include %s.>: add them or choose another dead_letter_stream",
		q.stream, s.CachedInfo().Config.Subjects, q.prefix)
}

// deadLetterInput is the message data and context that publish copies into a dead letter.
type deadLetterInput struct {
	subject    string
	header     nats.Header
	data       []byte
	stream     string
	sequence   uint64
	consumer   string
	deliveries uint64
	kind       string
	reason     string
}

// publish copies a message into the dead-letter stream and waits for the stream's acknowledgement.
// Its Nats-Msg-Id is derived from the original stream and sequence, so that two sinks dead-lettering
// the same message inside the duplicate window store it once.
func (q *DeadLetterQueue) publish(ctx context.Context, in deadLetterInput, now time.Time) error {
	h := nats.Header{}
	for k, vs := range in.header {
		if strings.HasPrefix(k, "Nats-") || strings.HasPrefix(k, headerPrefix) {
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	if id := in.header.Get(jetstream.MsgIDHeader); id != "" {
		h.Set(HeaderOriginalMsgID, id)
	}
	h.Set(HeaderReason, headerSafe(in.reason))
	h.Set(HeaderReasonKind, in.kind)
	h.Set(HeaderSubject, in.subject)
	h.Set(HeaderStream, in.stream)
	h.Set(HeaderSequence, strconv.FormatUint(in.sequence, 10))
	h.Set(HeaderConsumer, in.consumer)
	h.Set(HeaderDeliveries, strconv.FormatUint(in.deliveries, 10))
	h.Set(HeaderTime, now.UTC().Format(time.RFC3339Nano))
	if id := eventID(in.data); id != "" {
		h.Set(HeaderEventID, id)
	}
	msg := &nats.Msg{Subject: q.prefix + "." + in.subject, Header: h, Data: in.data}
	_, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(in.stream+"-"+strconv.FormatUint(in.sequence, 10)))
	if err != nil {
		return fmt.Errorf("publish dead letter for %s sequence %d: %w", in.stream, in.sequence, err)
	}
	return nil
}

// headerSafe makes an error text fit a header value: one line, bounded length.
func headerSafe(s string) string {
	s = strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	if len(s) > maxReasonHeaderLength {
		s = s[:maxReasonHeaderLength] + "..."
	}
	return s
}

// eventID reads the top-level id of a JSON body, or returns "" when there is none.
func eventID(data []byte) string {
	var v struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &v) != nil || len(v.ID) > 64 {
		return ""
	}
	return v.ID
}

// List returns every dead letter in stream order.
func (q *DeadLetterQueue) List(ctx context.Context) ([]DeadLetter, error) {
	s, err := q.js.Stream(ctx, q.stream)
	if err != nil {
		return nil, fmt.Errorf("look up dead-letter stream %s: %w", q.stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream %s info: %w", q.stream, err)
	}
	var out []DeadLetter
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		raw, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted after a replay
		}
		if err != nil {
			return out, fmt.Errorf("read dead letter %d: %w", seq, err)
		}
		out = append(out, toDeadLetter(raw))
	}
	return out, nil
}

// Show returns one dead letter with its headers and body, or ErrNotDeadLetter.
func (q *DeadLetterQueue) Show(ctx context.Context, seq uint64) (DeadLetter, error) {
	s, err := q.js.Stream(ctx, q.stream)
	if err != nil {
		return DeadLetter{}, fmt.Errorf("look up dead-letter stream %s: %w", q.stream, err)
	}
	raw, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, fmt.Errorf("sequence %d: %w", seq, ErrNotDeadLetter)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	return toDeadLetter(raw), nil
}

func toDeadLetter(raw *jetstream.RawStreamMsg) DeadLetter {
	h := raw.Header
	d := DeadLetter{
		Sequence:   raw.Sequence,
		Subject:    h.Get(HeaderSubject),
		Stream:     h.Get(HeaderStream),
		ReasonKind: h.Get(HeaderReasonKind),
		Reason:     h.Get(HeaderReason),
		EventID:    h.Get(HeaderEventID),
		MsgID:      h.Get(HeaderOriginalMsgID),
		Header:     h,
		Data:       raw.Data,
		Time:       raw.Time,
	}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(HeaderTime)); err == nil {
		d.Time = t
	}
	d.StreamSequence, _ = strconv.ParseUint(h.Get(HeaderSequence), 10, 64)
	d.Deliveries, _ = strconv.ParseUint(h.Get(HeaderDeliveries), 10, 64)
	return d
}

// Replay republishes one dead letter's body to its original subject with its original headers and
// Nats-Msg-Id, waits for the event stream's acknowledgement, and only then deletes it from the
// dead-letter stream. It returns ErrNotDeadLetter for an unknown sequence, a *DeadLetterError when
// the original subject is missing, and ErrReplayDuplicate (keeping the dead letter) when the event
// stream drops the message as a duplicate.
func (q *DeadLetterQueue) Replay(ctx context.Context, seq uint64) error {
	d, err := q.Show(ctx, seq)
	if err != nil {
		return err
	}
	if d.Subject == "" {
		return &DeadLetterError{Sequence: seq, Reason: "header " + HeaderSubject + " is missing"}
	}
	h := nats.Header{}
	for k, vs := range d.Header {
		if strings.HasPrefix(k, headerPrefix) || strings.HasPrefix(k, "Nats-") {
			continue
		}
		h[k] = append([]string(nil), vs...)
	}
	// NB: the event stream stored the original, and only the sink failed to write it. The original
	// Nats-Msg-Id would make the stream drop the copy while the original is inside its duplicate
	// window (2h for tisync's stream). A replay id made of the original and the dead letter's
	// sequence gets through, and the stream still drops a second replay of the same dead letter.
	// Consumers recognize the copy by its unchanged CloudEvents id, by which change_events
	// deduplicates.
	var opts []jetstream.PublishOpt
	if d.MsgID != "" {
		opts = append(opts, jetstream.WithMsgID(ReplayMsgID(d.MsgID, seq)))
	}
	ack, err := q.js.PublishMsg(ctx, &nats.Msg{Subject: d.Subject, Header: h, Data: d.Data}, opts...)
	if err != nil {
		return fmt.Errorf("replay dead letter %d to %s: %w", seq, d.Subject, err)
	}
	if ack.Duplicate {
		return fmt.Errorf("replay dead letter %d with Nats-Msg-Id %s to stream %s: %w", seq, ReplayMsgID(d.MsgID, seq), ack.Stream, ErrReplayDuplicate)
	}
	s, err := q.js.Stream(ctx, q.stream)
	if err != nil {
		return fmt.Errorf("look up dead-letter stream %s: %w", q.stream, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return fmt.Errorf("delete replayed dead letter %d (republished as %s sequence %d): %w", seq, ack.Stream, ack.Sequence, err)
	}
	return nil
}

// ReplayMsgID returns the Nats-Msg-Id of the replay of the dead letter at sequence seq whose original
// message had the id msgID.
func ReplayMsgID(msgID string, seq uint64) string {
	return msgID + ".replay." + strconv.FormatUint(seq, 10)
}

// ReplayResult counts the outcome of ReplayAll.
type ReplayResult struct {
	// Replayed dead letters were republished and deleted.
	Replayed int
	// Failed maps the sequence of each dead letter that stays in the stream to its error.
	Failed map[uint64]error
}

// ReplayAll replays every dead letter in stream order and reports each failure. It stops early only
// when ctx ends or the dead-letter stream cannot be listed.
func (q *DeadLetterQueue) ReplayAll(ctx context.Context) (ReplayResult, error) {
	res := ReplayResult{Failed: map[uint64]error{}}
	list, err := q.List(ctx)
	if err != nil {
		return res, err
	}
	for _, d := range list {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := q.Replay(ctx, d.Sequence); err != nil {
			res.Failed[d.Sequence] = err
			continue
		}
		res.Replayed++
	}
	return res, nil
}

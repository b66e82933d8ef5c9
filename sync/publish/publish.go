package publish

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tisync/tisync/schema"
)

// ContentType is the Content-Type header of every event message: a CloudEvents JSON document in
// structured mode.
const ContentType = "application/cloudevents+json"

// Publisher publishes change events to the stream and waits for JetStream to acknowledge each one.
// It is safe for concurrent use; concurrent Publish calls share the in-flight limit.
type Publisher struct {
	js      jetstream.JetStream
	cfg     Config
	log     *zap.Logger
	metrics *metrics
	sleep   func(context.Context, time.Duration) error
}

// Stats summarizes one Publish call.
type Stats struct {
	// Published counts the events JetStream acknowledged, duplicates included.
	Published int
	// Duplicates counts the events JetStream acknowledged as already stored: their message id was
	// seen inside the duplicate window.
	Duplicates int
	// Retried counts publishes that were repeated after an error or a missing acknowledgement.
	Retried int
	// Duration is the wall time of the call.
	Duration time.Duration
}

// NewPublisher returns a publisher on nc. It creates its own JetStream context, so that the
// in-flight limit and the acknowledgement timeout of cfg apply to its publishes only. reg may be nil.
func NewPublisher(nc *nats.Conn, cfg Config, log *zap.Logger, reg prometheus.Registerer) (*Publisher, error) {
	if log == nil {
		log = zap.NewNop()
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxInFlight),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout))
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Publisher{js: js, cfg: cfg, log: log, metrics: newMetrics(reg), sleep: sleepContext}, nil
}

// Message returns the NATS message of an event: its subject, the Nats-Msg-Id header set to the
// event id, and the CloudEvents JSON body.
func Message(ev *schema.Event) (*nats.Msg, error) {
	d := &ev.Data
	if !schema.ValidID(d.OrganizationID) || !schema.ValidID(d.TaskID) || !schema.ValidID(d.EntityID) {
		return nil, fmt.Errorf("event %s: invalid id in organization %q, task %q or entity %q: expected ASCII letters and digits", ev.ID, d.OrganizationID, d.TaskID, d.EntityID)
	}
	if !d.Entity.Valid() || !d.Op.Valid() {
		return nil, fmt.Errorf("event %s: invalid entity %q or op %q", ev.ID, d.Entity, d.Op)
	}
	body := appendEvent(make([]byte, 0, 512+len(d.Before)+len(d.After)), ev)
	msg := nats.NewMsg(schema.Subject(d.OrganizationID, d.TaskID, d.Entity, d.Op))
	msg.Header.Set(jetstream.MsgIDHeader, ev.ID)
	msg.Header.Set("Content-Type", ContentType)
	msg.Data = body
	return msg, nil
}

// Publish publishes every event and returns when JetStream has acknowledged all of them. Failed
// publishes are retried with the same message id, so a publish that was stored but whose
// acknowledgement was lost comes back as a duplicate instead of a second copy. It returns a
// *PublishError when some events stay unacknowledged after cfg.MaxAttempts, and an error wrapping
// ErrWrongStream when another stream stored an event. progress, if not nil, is called with the
// number of events acknowledged so far.
func (p *Publisher) Publish(ctx context.Context, events []schema.Event, progress func(acked int)) (Stats, error) {
	start := time.Now()
	stats := Stats{}
	msgs := make([]*nats.Msg, len(events))
	for i := range events {
		msg, err := Message(&events[i])
		if err != nil {
			return stats, err
		}
		msgs[i] = msg
	}

	todo := make([]int, len(msgs))
	for i := range todo {
		todo[i] = i
	}
	backoff := p.cfg.RetryBackoff
	var lastErr error
	for attempt := 1; len(todo) > 0; attempt++ {
		if attempt > 1 {
			if attempt > p.cfg.MaxAttempts {
				p.metrics.errors.WithLabelValues("exhausted").Add(float64(len(todo)))
				return stats, &PublishError{Failed: len(todo), Attempts: p.cfg.MaxAttempts, Last: lastErr}
			}
			p.log.Warn("retrying unacknowledged events",
				zap.Int("attempt", attempt), zap.Int("events", len(todo)), zap.Duration("backoff", backoff), zap.Error(lastErr))
			if err := p.sleep(ctx, backoff); err != nil {
				return stats, err
			}
			backoff = min(backoff*2, 10*time.Second)
			stats.Retried += len(todo)
			p.metrics.retries.Add(float64(len(todo)))
		}
		failed, err := p.round(ctx, msgs, events, todo, &stats, progress)
		if err != nil {
			return stats, err
		}
		if len(failed) > 0 {
			lastErr = failed[0].err
		}
		todo = todo[:0]
		for _, f := range failed {
			todo = append(todo, f.index)
		}
	}
	stats.Duration = time.Since(start)
	return stats, nil
}

type failure struct {
	index int
	err   error
}

type pending struct {
	index  int
	future jetstream.PubAckFuture
	sent   time.Time
}

// round publishes the messages at the indices todo once, with at most cfg.MaxInFlight awaiting an
// acknowledgement, and returns those that failed.
func (p *Publisher) round(ctx context.Context, msgs []*nats.Msg, events []schema.Event, todo []int, stats *Stats, progress func(int)) ([]failure, error) {
	// The channel's capacity bounds the publishes in flight: the sender blocks while the collector
	// still waits for the oldest acknowledgement.
	inFlight := make(chan pending, p.cfg.MaxInFlight)
	var (
		failed   []failure
		fatalErr error
	)
	collected := make(chan struct{})
	go func() {
		defer close(collected)
		for pend := range inFlight {
			select {
			case ack := <-pend.future.Ok():
				p.metrics.ackLatency.Observe(time.Since(pend.sent).Seconds())
				if ack.Stream != p.cfg.Stream.Name {
					if fatalErr == nil {
						fatalErr = fmt.Errorf("%w: event %s on %s was stored by stream %s, expected %s; make sure no other stream captures tisync's subjects",
							ErrWrongStream, events[pend.index].ID, pend.future.Msg().Subject, ack.Stream, p.cfg.Stream.Name)
					}
					continue
				}
				stats.Published++
				ev := &events[pend.index].Data
				p.metrics.events.WithLabelValues(string(ev.Entity), string(ev.Op)).Inc()
				if ack.Duplicate {
					stats.Duplicates++
					p.metrics.duplicates.Inc()
				}
				if progress != nil {
					progress(stats.Published)
				}
			case err := <-pend.future.Err():
				p.metrics.errors.WithLabelValues(errorReason(err)).Inc()
				if errors.Is(err, jetstream.ErrStreamNotFound) || isStreamMismatch(err) {
					if fatalErr == nil {
						fatalErr = fmt.Errorf("%w: event %s on %s: %v", ErrWrongStream, events[pend.index].ID, pend.future.Msg().Subject, err)
					}
					continue
				}
				failed = append(failed, failure{index: pend.index, err: err})
			}
		}
	}()

	var (
		sendErr    error
		sendFailed []failure
	)
	for _, i := range todo {
		if err := ctx.Err(); err != nil {
			sendErr = err
			break
		}
		future, err := p.js.PublishMsgAsync(msgs[i], jetstream.WithExpectStream(p.cfg.Stream.Name))
		if err != nil {
			if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrJetStreamPublisherClosed) {
				sendErr = fmt.Errorf("publish event %s: %w", events[i].ID, err)
				break
			}
			p.metrics.errors.WithLabelValues(errorReason(err)).Inc()
			sendFailed = append(sendFailed, failure{index: i, err: err})
			continue
		}
		inFlight <- pending{index: i, future: future, sent: time.Now()}
	}
	close(inFlight)
	<-collected

	if sendErr != nil {
		return nil, sendErr
	}
	if fatalErr != nil {
		return nil, fatalErr
	}
	return append(sendFailed, failed...), nil
}

// isStreamMismatch reports whether the server rejected a publish because the subject belongs to
// another stream than the expected one.
func isStreamMismatch(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == errCodeStreamNotMatch
}

// errCodeStreamNotMatch is nats-server's JSStreamNotMatchErr, "expected stream does not match",
// which nats.go does not export.
const errCodeStreamNotMatch jetstream.ErrorCode = 10060

func errorReason(err error) string {
	switch {
	case errors.Is(err, jetstream.ErrAsyncPublishTimeout), errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "timeout"
	case errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, nats.ErrNoResponders):
		return "no_responders"
	case errors.Is(err, jetstream.ErrStreamNotFound), isStreamMismatch(err):
		return "wrong_stream"
	case errors.Is(err, jetstream.ErrTooManyStalledMsgs):
		return "stalled"
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return "api_error"
	}
	return "other"
}

func sleepContext(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

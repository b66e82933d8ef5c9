package consume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/sink/clickhouse"
)

// Writer stores a batch of rows. *clickhouse.Client implements it. Write must not modify the batch,
// so that the consumer can retry it, and must report errors caused by the rows' content so that
// clickhouse.IsRowError recognizes them.
type Writer interface {
	Write(ctx context.Context, b *clickhouse.Batch) error
}

// Consumer moves events from the event stream into a Writer. Create it with New and start it with
// Run; one Consumer runs once.
type Consumer struct {
	cfg       Config
	js        jetstream.JetStream
	writer    Writer
	log       *zap.Logger
	metrics   *metrics
	dlq       *DeadLetterQueue
	validator *schema.EventValidator
	workers   int
	now       func() time.Time
	// batch is reused by every write of the writer goroutine, its only user.
	batch *clickhouse.Batch
}

// New returns a Consumer for cfg that reads through js and writes into w. A nil logger logs
// nothing; a nil registerer leaves the metrics unregistered. It returns an error when cfg is
// invalid.
func New(cfg Config, js jetstream.JetStream, w Writer, logger *zap.Logger, reg prometheus.Registerer) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("consume config: %w", err)
	}
	if logger == nil {
		logger = zap.NewNop()
	}
	workers := cfg.DecodeWorkers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	return &Consumer{
		cfg:       cfg,
		js:        js,
		writer:    w,
		log:       logger.Named("consume"),
		metrics:   newMetrics(reg),
		dlq:       NewDeadLetterQueue(js, cfg),
		validator: schema.NewEventValidator(cfg.ValidationCacheEntries),
		workers:   workers,
		now:       time.Now,
		batch:     clickhouse.NewBatch(),
	}, nil
}

// DeadLetters returns the consumer's dead-letter queue.
func (c *Consumer) DeadLetters() *DeadLetterQueue { return c.dlq }

// Run creates the dead-letter stream when missing, creates or updates the consumer (waiting for the
// event stream to exist), and consumes until ctx ends. It then stops fetching, flushes the batch in
// hand within Config.ShutdownTimeout, and returns nil once every goroutine it started has ended. It returns an error only when
// the streams or the consumer cannot be set up.
func (c *Consumer) Run(ctx context.Context) error {
	if err := c.dlq.Ensure(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cons, err := c.setup(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	name := cons.CachedInfo().Name
	c.log.Info("consuming", zap.String("stream", c.cfg.Stream), zap.String("consumer", name),
		zap.String("filter_subject", c.cfg.FilterSubject), zap.Int("batch_events", c.cfg.BatchEvents))

	subject := "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + c.cfg.Stream + "." + name
	sub, err := c.js.Conn().Subscribe(subject, func(m *nats.Msg) { c.onMaxDeliveries(ctx, name, m) })
	if err != nil {
		return fmt.Errorf("subscribe to %s: %w", subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	var wg sync.WaitGroup
	samplerCtx, stopSampler := context.WithCancel(ctx)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.samplePending(samplerCtx, cons)
	}()
	defer func() {
		stopSampler()
		wg.Wait()
	}()

	return c.consume(ctx, cons)
}

// setup creates or updates the consumer, retrying while the event stream does not exist yet.
func (c *Consumer) setup(ctx context.Context) (jetstream.Consumer, error) {
	cc := jetstream.ConsumerConfig{
		Name:          c.cfg.Consumer,
		Description:   "tisync ClickHouse sink",
		FilterSubject: c.cfg.FilterSubject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.cfg.AckWait,
		MaxDeliver:    c.cfg.MaxDeliver,
		BackOff:       c.cfg.BackOff,
		MaxAckPending: c.cfg.MaxAckPending,
	}
	if c.cfg.Durable {
		cc.Durable = c.cfg.Consumer
	} else {
		cc.InactiveThreshold = c.cfg.InactiveThreshold
	}
	delay := c.cfg.Retry.InitialBackoff
	for attempt := 1; ; attempt++ {
		cons, err := c.js.CreateOrUpdateConsumer(ctx, c.cfg.Stream, cc)
		if err == nil {
			return cons, nil
		}
		if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("create consumer %s on stream %s: %w", c.cfg.Consumer, c.cfg.Stream, err)
		}
		c.log.Info("waiting for the event stream to be created", zap.String("stream", c.cfg.Stream), zap.Int("attempt", attempt))
		if err := sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(2*delay, c.cfg.Retry.MaxBackoff)
	}
}

// batch is the messages of one flush, in arrival order.
type batch struct {
	msgs     []jetstream.Msg
	bytes    int
	deadline time.Time
}

// consume is the fetch loop. It fetches with pull requests sized to the room left in the batch and
// flushes the batch when it is full or old enough. Fetch, unlike a prefetching iterator, hands every
// delivered message to the batch at once, so that the in-progress heartbeats of a flush cover every
// message the server counts as delivered and a long insert retry causes no redeliveries.
func (c *Consumer) consume(ctx context.Context, cons jetstream.Consumer) error {
	// Inserts outlive ctx by up to ShutdownTimeout, so that a flush under way when ctx ends can
	// finish and be acknowledged.
	writeCtx, cancelWrite := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-writeCtx.Done():
			return
		case <-ctx.Done():
		}
		t := time.NewTimer(c.cfg.ShutdownTimeout)
		defer t.Stop()
		select {
		case <-writeCtx.Done():
		case <-t.C:
			cancelWrite()
		}
	}()
	defer func() {
		cancelWrite()
		wg.Wait()
	}()

	// Two stages: this goroutine fetches and decodes the next batch while the writer inserts the
	// previous one. The channel holds at most one sealed batch, so at most three batches are in
	// memory: one being written, one waiting, one filling.
	out := make(chan *sealed, 1)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for s := range out {
			c.settle(writeCtx, s)
		}
	}()
	// Runs before the deferred cancelWrite: the writer finishes the batches in hand first.
	defer func() {
		close(out)
		<-writerDone
	}()

	b := &batch{}
	delay := c.cfg.Retry.InitialBackoff
	oversized := false
	for {
		if ctx.Err() != nil {
			c.seal(b, "shutdown", out)
			c.log.Info("stopped consuming", zap.String("consumer", c.cfg.Consumer))
			return nil
		}
		wait := c.cfg.BatchWait
		if len(b.msgs) > 0 {
			wait = b.deadline.Sub(c.now())
			if wait <= 0 {
				c.seal(b, "wait", out)
				continue
			}
		}

		// NB: the fetch is bounded by FetchMaxWait, not by a context. Cancelling a fetch drops the
		// messages the server is still sending, which stay unacknowledged until the ack wait ends
		// and then count as redeliveries. A fetch that runs out waits for the server's timeout
		// status, which follows every message of the request. A shutdown therefore waits for the
		// current fetch, at most BatchWait.
		wait = max(wait, 10*time.Millisecond)
		want := c.cfg.BatchEvents - len(b.msgs)
		opts := []jetstream.FetchOpt{jetstream.FetchMaxWait(wait)}
		if oversized {
			// The next message alone exceeds BatchBytes: fetch it by itself, without a byte
			// budget, so that it cannot stall the consumer.
			want = 1
		} else {
			opts = append(opts, jetstream.FetchMaxBytes(c.cfg.BatchBytes-b.bytes))
		}
		started := c.now()
		mb, err := cons.Fetch(want, opts...)
		got := 0
		if err == nil {
			for msg := range mb.Messages() {
				c.add(b, msg, started)
				got++
			}
			err = mb.Error()
		}
		// The server ends a pull request before its expiry with fewer messages than requested
		// only when the next message does not fit the byte budget. The margin absorbs timer
		// granularity.
		budgetHit := !oversized && got < want && c.now().Sub(started) < wait*9/10
		oversized = false

		switch {
		case err == nil, ctx.Err() != nil, errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			delay = c.cfg.Retry.InitialBackoff
		default:
			// A failed pull request (connection lost, consumer deleted) is retried after a pause;
			// the messages received before the failure stay in the batch.
			c.log.Warn("fetching messages", zap.String("consumer", c.cfg.Consumer), zap.Duration("backoff", delay), zap.Error(err))
			_ = sleep(ctx, delay)
			delay = min(2*delay, c.cfg.Retry.MaxBackoff)
			continue
		}

		switch {
		case len(b.msgs) >= c.cfg.BatchEvents:
			c.seal(b, "events", out)
		case b.bytes >= c.cfg.BatchBytes || (budgetHit && len(b.msgs) > 0):
			c.seal(b, "bytes", out)
		case budgetHit && ctx.Err() == nil:
			oversized = true
		}
	}
}

func (c *Consumer) add(b *batch, msg jetstream.Msg, fetchStarted time.Time) {
	if len(b.msgs) == 0 {
		b.deadline = fetchStarted.Add(c.cfg.BatchWait)
	}
	b.msgs = append(b.msgs, msg)
	b.bytes += len(msg.Data())
	c.metrics.consumed.Inc()
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
		c.metrics.redeliveries.Inc()
	}
}

// decoded is one message of a batch after decoding.
type decoded struct {
	msg   jetstream.Msg
	event *schema.Decoded
	kind  string // dead-letter reason kind when err is set
	err   error
}

// sealed is a batch that is complete and decoded, on its way to the writer.
type sealed struct {
	reason        string
	bytes         int
	items         []decoded
	sealedAt      time.Time
	decodeTime    time.Duration
	stopHeartbeat func()
}

// seal closes the batch b, decodes its messages and hands it to the writer through out, blocking
// while the writer is busy with the batch before. The messages are marked in progress from now
// until settle has settled them. seal leaves b empty.
func (c *Consumer) seal(b *batch, reason string, out chan<- *sealed) {
	if len(b.msgs) == 0 {
		return
	}
	c.metrics.flushes.WithLabelValues(reason).Inc()
	c.metrics.batchEvents.Observe(float64(len(b.msgs)))
	c.metrics.batchBytes.Observe(float64(b.bytes))
	s := &sealed{reason: reason, bytes: b.bytes, sealedAt: c.now(), stopHeartbeat: c.heartbeat(b.msgs)}
	s.items = c.decodeAll(b.msgs)
	s.decodeTime = c.now().Sub(s.sealedAt)
	// The writer owns the messages now, so the batch starts a new slice.
	b.msgs, b.bytes = make([]jetstream.Msg, 0, cap(b.msgs)), 0
	out <- s
}

// settle writes a sealed batch and settles every message in it: acknowledged after a successful
// insert, dead-lettered and terminated when it can never be written, or returned to the server for
// redelivery when ctx ends first.
func (c *Consumer) settle(ctx context.Context, s *sealed) {
	defer s.stopHeartbeat()
	valid := make([]decoded, 0, len(s.items))
	deadLetters := 0
	for _, it := range s.items {
		if it.err != nil {
			if c.deadLetter(ctx, it.msg, it.kind, it.err) {
				deadLetters++
			}
			continue
		}
		valid = append(valid, it)
	}
	writeStart := c.now()
	stats := c.write(ctx, valid, c.batch)
	deadLetters += stats.deadLetters

	c.log.Info("flushed batch",
		zap.String("reason", s.reason),
		zap.Int("events", len(s.items)),
		zap.Int("bytes", s.bytes),
		zap.Int("acked", stats.acked),
		zap.Int("dead_letters", deadLetters),
		zap.Int("unsettled", stats.unsettled),
		zap.Duration("decode_duration", s.decodeTime),
		zap.Duration("write_duration", c.now().Sub(writeStart)),
		zap.Duration("duration", c.now().Sub(s.sealedAt)))
}

// decodeAll decodes and validates the messages on c.workers goroutines, keeping their order.
func (c *Consumer) decodeAll(msgs []jetstream.Msg) []decoded {
	out := make([]decoded, len(msgs))
	workers := min(c.workers, len(msgs))
	chunk := (len(msgs) + workers - 1) / workers
	var wg sync.WaitGroup
	for lo := 0; lo < len(msgs); lo += chunk {
		hi := min(lo+chunk, len(msgs))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				out[i] = c.decode(msgs[i])
			}
		}()
	}
	wg.Wait()
	return out
}

func (c *Consumer) decode(msg jetstream.Msg) decoded {
	d := decoded{msg: msg}
	data := msg.Data()
	ev, err := schema.DecodeRows(data)
	var se *schema.SchemaError
	if errors.As(err, &se) {
		d.kind, d.err = reasonDecode, err
		return d
	}
	if err != nil {
		d.kind, d.err = reasonSchema, err
		return d
	}
	if err := ev.CheckSubject(msg.Subject()); err != nil {
		d.kind, d.err = reasonSchema, err
		return d
	}
	if c.cfg.ValidateSchema {
		if err := c.validator.ValidateDecoded(data, ev); err != nil {
			d.kind, d.err = reasonSchema, err
			return d
		}
	}
	d.event = ev
	return d
}

// writeStats counts how the messages of one write ended.
type writeStats struct {
	acked, deadLetters, unsettled int
}

func (s *writeStats) add(o writeStats) {
	s.acked += o.acked
	s.deadLetters += o.deadLetters
	s.unsettled += o.unsettled
}

// write inserts the rows of items and settles their messages. Errors unrelated to the rows are
// retried with backoff. A row error splits the items in halves, recursively, until the message that
// ClickHouse rejects is alone. That message is dead-lettered and every other one is written.
//
// b is the batch to fill, reused between calls to keep its column memory, or nil for a new one.
func (c *Consumer) write(ctx context.Context, items []decoded, b *clickhouse.Batch) writeStats {
	if len(items) == 0 {
		return writeStats{}
	}
	// The rows stay in items, and Write leaves the batch as it is, so every attempt sends the same
	// rows. Each half of a split builds its own batch from its items.
	if b == nil {
		b = clickhouse.NewBatch()
	}
	b.Reset()
	for _, it := range items {
		b.AddDecoded(it.event)
	}
	err := c.writeRetrying(ctx, b, len(items))
	switch {
	case err == nil:
		for _, it := range items {
			if err := it.msg.Ack(); err != nil {
				// The server redelivers the message after the ack wait; its rows are deduplicated.
				c.log.Warn("acknowledging message", zap.String("subject", it.msg.Subject()), zap.Error(err))
				continue
			}
			c.metrics.acks.WithLabelValues("ack").Inc()
		}
		return writeStats{acked: len(items)}
	case clickhouse.IsRowError(err):
		if len(items) == 1 {
			if c.deadLetter(ctx, items[0].msg, reasonInsert, err) {
				return writeStats{deadLetters: 1}
			}
			return writeStats{unsettled: 1}
		}
		c.log.Debug("splitting batch to find the rejected row", zap.Int("events", len(items)), zap.Error(err))
		var s writeStats
		half := len(items) / 2
		s.add(c.write(ctx, items[:half], b))
		s.add(c.write(ctx, items[half:], nil))
		return s
	default:
		// The context ended or the attempts ran out: hand the messages back for redelivery.
		delay := c.cfg.Retry.MaxBackoff
		if ctx.Err() != nil {
			delay = 0
		}
		for _, it := range items {
			if it.msg.NakWithDelay(delay) == nil {
				c.metrics.acks.WithLabelValues("nak").Inc()
			}
		}
		c.log.Warn("batch not written; messages returned for redelivery", zap.Int("events", len(items)), zap.Error(err))
		return writeStats{unsettled: len(items)}
	}
}

// writeRetrying calls the writer until it succeeds, fails with a row error, ctx ends or
// Retry.MaxAttempts is reached.
func (c *Consumer) writeRetrying(ctx context.Context, b *clickhouse.Batch, events int) error {
	start := c.now()
	defer func() { c.metrics.insertDuration.Observe(c.now().Sub(start).Seconds()) }()
	delay := c.cfg.Retry.InitialBackoff
	for attempt := 1; ; attempt++ {
		err := c.writer.Write(ctx, b)
		if err == nil || clickhouse.IsRowError(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("write batch: %w (after %v)", ctx.Err(), err)
		}
		if c.cfg.Retry.MaxAttempts > 0 && attempt >= c.cfg.Retry.MaxAttempts {
			return fmt.Errorf("write batch: giving up after %d attempts: %w", attempt, err)
		}
		c.metrics.insertRetries.Inc()
		c.log.Warn("insert failed; retrying", zap.Int("attempt", attempt), zap.Int("events", events),
			zap.Duration("backoff", delay), zap.Error(err))
		if err := sleep(ctx, delay); err != nil {
			return fmt.Errorf("write batch: %w", err)
		}
		delay = min(2*delay, c.cfg.Retry.MaxBackoff)
	}
}

// heartbeat marks msgs as in progress every InProgressInterval until the returned function is
// called, so that a slow or retried insert does not make the server redeliver them.
func (c *Consumer) heartbeat(msgs []jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.cfg.InProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

// deadLetter copies msg into the dead-letter stream and terminates it. It reports whether both
// succeeded; when the copy fails the message is returned to the server for a later attempt, so it
// is never dropped.
func (c *Consumer) deadLetter(ctx context.Context, msg jetstream.Msg, kind string, cause error) bool {
	in := deadLetterInput{
		subject:  msg.Subject(),
		header:   msg.Headers(),
		data:     msg.Data(),
		consumer: c.cfg.Consumer,
		kind:     kind,
		reason:   cause.Error(),
	}
	if md, err := msg.Metadata(); err == nil {
		in.stream, in.sequence, in.deliveries = md.Stream, md.Sequence.Stream, md.NumDelivered
		in.consumer = md.Consumer
	}
	if err := c.dlq.publish(ctx, in, c.now()); err != nil {
		c.log.Error("dead-lettering failed; message returned for redelivery",
			zap.String("subject", in.subject), zap.Uint64("stream_sequence", in.sequence), zap.String("reason", kind), zap.Error(err))
		if msg.NakWithDelay(c.cfg.Retry.MaxBackoff) == nil {
			c.metrics.acks.WithLabelValues("nak").Inc()
		}
		return false
	}
	c.metrics.deadLetters.WithLabelValues(kind).Inc()
	c.log.Warn("dead-lettered message", zap.String("subject", in.subject), zap.Uint64("stream_sequence", in.sequence),
		zap.String("reason", kind), zap.Error(cause))
	if err := msg.TermWithReason(kind); err != nil {
		// The copy exists; a redelivery is dead-lettered again under the same Nats-Msg-Id.
		c.log.Warn("terminating dead-lettered message", zap.Uint64("stream_sequence", in.sequence), zap.Error(err))
		return true
	}
	c.metrics.acks.WithLabelValues("term").Inc()
	return true
}

// maxDeliveriesAdvisory is the part of JetStream's max-deliveries advisory the sink reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// onMaxDeliveries copies a message the server stopped redelivering into the dead-letter stream,
// so that no message leaves the consumer without a trace.
func (c *Consumer) onMaxDeliveries(ctx context.Context, consumer string, m *nats.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil {
		c.log.Error("decoding max-deliveries advisory", zap.Error(err))
		return
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	stream, err := c.js.Stream(ctx, adv.Stream)
	var raw *jetstream.RawStreamMsg
	if err == nil {
		raw, err = stream.GetMsg(ctx, adv.StreamSeq)
	}
	if err != nil {
		c.log.Error("reading message after max deliveries", zap.String("stream", adv.Stream),
			zap.Uint64("stream_sequence", adv.StreamSeq), zap.Error(err))
		return
	}

	in := deadLetterInput{
		subject:    raw.Subject,
		header:     raw.Header,
		data:       raw.Data,
		stream:     adv.Stream,
		sequence:   adv.StreamSeq,
		consumer:   consumer,
		deliveries: adv.Deliveries,
		kind:       reasonMaxDeliveries,
		reason:     fmt.Sprintf("the server stopped redelivering the message after %d deliveries", adv.Deliveries),
	}
	if err := c.dlq.publish(ctx, in, c.now()); err != nil {
		c.log.Error("dead-lettering message after max deliveries", zap.Uint64("stream_sequence", adv.StreamSeq), zap.Error(err))
		return
	}
	c.metrics.deadLetters.WithLabelValues(reasonMaxDeliveries).Inc()
	c.log.Warn("dead-lettered message after max deliveries", zap.String("subject", raw.Subject),
		zap.Uint64("stream_sequence", adv.StreamSeq), zap.Uint64("deliveries", adv.Deliveries))
}

// samplePending updates the pending gauges from the consumer's info every PendingInterval.
func (c *Consumer) samplePending(ctx context.Context, cons jetstream.Consumer) {
	t := time.NewTicker(c.cfg.PendingInterval)
	defer t.Stop()
	for {
		info, err := cons.Info(ctx)
		if err == nil {
			c.metrics.pending.Set(float64(info.NumPending))
			c.metrics.ackPending.Set(float64(info.NumAckPending))
		} else if ctx.Err() == nil {
			c.log.Debug("sampling consumer info", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sleep waits for d or until ctx ends, returning ctx's error in the latter case.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

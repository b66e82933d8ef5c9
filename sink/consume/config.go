// Package consume reads change events from the TESTINVITE JetStream stream with a durable pull
// consumer and writes them into ClickHouse in batches. A message is acknowledged only after the
// insert that holds it succeeded. A message that can never be written goes to a dead-letter stream
// with its reason.
package consume

import (
	"fmt"
	"strings"
	"time"

	"github.com/tisync/tisync/schema"
)

// Config configures the consumer, its batches, its retries and its dead-letter stream. The zero
// value is invalid; start from DefaultConfig.
type Config struct {
	// Stream is the JetStream stream of change events. Default "TESTINVITE".
	Stream string `yaml:"stream"`
	// Consumer is the consumer name. Default "tisync-clickhouse".
	Consumer string `yaml:"consumer"`
	// Durable keeps the consumer and its position on the server when the sink stops. Set it to
	// false for a one-off consumer that the server removes after InactiveThreshold. Default true.
	Durable bool `yaml:"durable"`
	// InactiveThreshold is how long the server keeps a non-durable consumer without a client.
	// Default 5m.
	InactiveThreshold time.Duration `yaml:"inactive_threshold"`
	// FilterSubject selects the events to consume. Default "testinvite.>".
	FilterSubject string `yaml:"filter_subject"`

	// BatchEvents flushes a batch when it holds this many events. Each event becomes one row in its
	// entity table and one in change_events, so it also bounds the rows of one insert per table.
	// Default 10000.
	BatchEvents int `yaml:"batch_events"`
	// BatchBytes flushes a batch when its message bodies reach this many bytes. Default 16 MiB.
	BatchBytes int `yaml:"batch_bytes"`
	// BatchWait flushes a batch this long after its first message arrived. Default 1s.
	BatchWait time.Duration `yaml:"batch_wait"`

	// AckWait is how long the server waits for an acknowledgement before it redelivers a message.
	// The server uses BackOff[0] instead when BackOff is set. Default 60s.
	AckWait time.Duration `yaml:"ack_wait"`
	// BackOff lists the redelivery delays of successive unacknowledged deliveries; the last one
	// repeats. It must have fewer entries than MaxDeliver. Default [30s, 1m, 5m, 15m].
	BackOff []time.Duration `yaml:"back_off"`
	// MaxDeliver is the maximum number of deliveries of one message. A message the server gives up
	// on (only after crashes or stalls longer than the ack wait, because the sink retries insert
	// errors itself) is copied to the dead-letter stream. Default 10.
	MaxDeliver int `yaml:"max_deliver"`
	// MaxAckPending limits unacknowledged messages on the server; at least BatchEvents. The sink
	// holds up to three batches at once (one being written, one decoded and waiting, one filling),
	// so three times BatchEvents keeps the pipeline busy. Default 30000.
	MaxAckPending int `yaml:"max_ack_pending"`
	// InProgressInterval is how often messages held by the sink (in a batch or in an insert being
	// retried) are marked as in progress, which resets their ack timer. It must be shorter than the
	// effective ack wait. Default 10s.
	InProgressInterval time.Duration `yaml:"in_progress_interval"`

	// DeadLetterStream is the stream that keeps messages the sink cannot write. It is created when
	// missing and never deleted. Default "TESTINVITE_DLQ".
	DeadLetterStream string `yaml:"dead_letter_stream"`
	// DeadLetterSubjectPrefix starts the subject of every dead letter: <prefix>.<original subject>.
	// Default "tisync.dlq".
	DeadLetterSubjectPrefix string `yaml:"dead_letter_subject_prefix"`

	// Retry governs retries of inserts that failed for a reason unrelated to the rows.
	Retry RetryConfig `yaml:"retry"`

	// ValidateSchema also checks every event with a generic JSON Schema validator
	// (github.com/santhosh-tekuri/jsonschema/v6) against schema.EventSchemaV1, on top of the native
	// checks of schema.DecodeRows, which always run and enforce the schema themselves:
	//
	//   - every required member of the envelope, of data and of the task, ticket, test session,
	//     result, scoreboard and task step records, in both images;
	//   - the JSON type of every member the schema declares, nullable ones included, and arrays
	//     of strings or of objects where the schema requires them;
	//   - the id, event id, content hash and source patterns, the constants and the enumerations;
	//   - RFC 3339 date-times and distinct changed fields;
	//   - the integer ranges: revision and version at least 1, timestamps 0 to 2^32-1, rating 1 to
	//     5, attempt limit at least -1, question count 0 to 2^32-1;
	//   - before and after as objects or null, as the op requires.
	//
	// Members the schema does not declare are allowed, as the schema allows them. The native checks
	// are stricter than the schema only where a value cannot be stored: a declared member twice in
	// one object, integers beyond the 64-bit columns, numbers beyond a float64, and date-times
	// that time.Time cannot hold (leap seconds). They also check what the schema cannot express:
	// the type, subject and source agree with the data, and the record belongs to the event. The
	// validator therefore rejects no event that the native checks accept. It costs about 60 µs of
	// CPU per event, twice the rest of the sink's work per event, on the 2-core machine of
	// BENCHMARKS.md. Default false.
	ValidateSchema bool `yaml:"validate_schema"`
	// ValidationCacheEntries is how many accepted record images the validator of ValidateSchema
	// remembers, so that the before image of an update, seen earlier as the after image of the
	// previous change, is not validated again. 0 validates every image. Default 100000 (about
	// 5 MB).
	ValidationCacheEntries int `yaml:"validation_cache_entries"`
	// DecodeWorkers is the number of goroutines that decode and validate a batch. Default 0, which
	// means GOMAXPROCS.
	DecodeWorkers int `yaml:"decode_workers"`
	// ShutdownTimeout bounds flushing the last batch after the context ends. Default 30s.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// PendingInterval is how often the consumer's pending counts are sampled for metrics.
	// Default 15s.
	PendingInterval time.Duration `yaml:"pending_interval"`
}

// RetryConfig is an exponential backoff policy.
type RetryConfig struct {
	// InitialBackoff is the delay before the first retry. Default 500ms.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	// MaxBackoff caps the delay, which doubles after each attempt. Default 30s.
	MaxBackoff time.Duration `yaml:"max_backoff"`
	// MaxAttempts ends retrying after this many attempts and returns the batch to the server for a
	// later redelivery, which counts towards MaxDeliver. Default 0: retry until the insert succeeds or
	// the sink stops, so that an outage never dead-letters events.
	MaxAttempts int `yaml:"max_attempts"`
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Stream:                  "TESTINVITE",
		Consumer:                "tisync-clickhouse",
		Durable:                 true,
		InactiveThreshold:       5 * time.Minute,
		FilterSubject:           schema.StreamSubjects,
		BatchEvents:             10000,
		BatchBytes:              16 << 20,
		BatchWait:               time.Second,
		AckWait:                 60 * time.Second,
		BackOff:                 []time.Duration{30 * time.Second, time.Minute, 5 * time.Minute, 15 * time.Minute},
		MaxDeliver:              10,
		MaxAckPending:           30000,
		InProgressInterval:      10 * time.Second,
		DeadLetterStream:        "TESTINVITE_DLQ",
		DeadLetterSubjectPrefix: "tisync.dlq",
		Retry: RetryConfig{
			InitialBackoff: 500 * time.Millisecond,
			MaxBackoff:     30 * time.Second,
		},
		ValidateSchema:         false,
		ValidationCacheEntries: 100000,
		ShutdownTimeout:        30 * time.Second,
		PendingInterval:        15 * time.Second,
	}
}

// effectiveAckWait is the ack wait of a first delivery: the server replaces AckWait with
// BackOff[0] when BackOff is set.
func (c Config) effectiveAckWait() time.Duration {
	if len(c.BackOff) > 0 {
		return c.BackOff[0]
	}
	return c.AckWait
}

// Validate returns an error naming the first invalid field, its value and what is expected.
func (c Config) Validate() error {
	names := []struct{ field, value string }{
		{"stream", c.Stream},
		{"consumer", c.Consumer},
		{"dead_letter_stream", c.DeadLetterStream},
	}
	for _, n := range names {
		if n.value == "" || strings.ContainsAny(n.value, " \t\r\n.*>/\\") {
			return fmt.Errorf("%s: %q is invalid: expected a JetStream name without spaces, dots, wildcards or slashes", n.field, n.value)
		}
	}
	if c.Stream == c.DeadLetterStream {
		return fmt.Errorf("dead_letter_stream: %q is invalid: it must differ from stream", c.DeadLetterStream)
	}

	if !validSubject(c.FilterSubject, true) {
		return fmt.Errorf("filter_subject: %q is invalid: expected a NATS subject, wildcards allowed", c.FilterSubject)
	}
	if !validSubject(c.DeadLetterSubjectPrefix, false) {
		return fmt.Errorf("dead_letter_subject_prefix: %q is invalid: expected NATS subject tokens without wildcards", c.DeadLetterSubjectPrefix)
	}
	if strings.HasPrefix(c.DeadLetterSubjectPrefix+".", schema.SubjectRoot+".") {
		return fmt.Errorf("dead_letter_subject_prefix: %q is invalid: it must not start with %q, the event stream's subjects", c.DeadLetterSubjectPrefix, schema.SubjectRoot)
	}

	if c.BatchEvents < 1 || c.BatchEvents > 1_000_000 {
		return fmt.Errorf("batch_events: %d is invalid: expected 1 to 1000000", c.BatchEvents)
	}
	if c.BatchBytes < 1024 {
		return fmt.Errorf("batch_bytes: %d is invalid: expected at least 1024", c.BatchBytes)
	}

	positive := []struct {
		name string
		d    time.Duration
	}{
		{"batch_wait", c.BatchWait},
		{"ack_wait", c.AckWait},
		{"in_progress_interval", c.InProgressInterval},
		{"retry.initial_backoff", c.Retry.InitialBackoff},
		{"retry.max_backoff", c.Retry.MaxBackoff},
		{"shutdown_timeout", c.ShutdownTimeout},
		{"pending_interval", c.PendingInterval},
		{"inactive_threshold", c.InactiveThreshold},
	}
	for _, p := range positive {
		if p.d <= 0 {
			return fmt.Errorf("%s: %s is invalid: expected a positive duration", p.name, p.d)
		}
	}

	for i, d := range c.BackOff {
		if d <= 0 {
			return fmt.Errorf("back_off[%d]: %s is invalid: expected a positive duration", i, d)
		}
	}
	if c.MaxDeliver < 2 {
		return fmt.Errorf("max_deliver: %d is invalid: expected at least 2", c.MaxDeliver)
	}
	if len(c.BackOff) >= c.MaxDeliver {
		return fmt.Errorf("back_off: %d delays are invalid with max_deliver %d: expected fewer delays than deliveries", len(c.BackOff), c.MaxDeliver)
	}
	if c.MaxAckPending < c.BatchEvents {
		return fmt.Errorf("max_ack_pending: %d is invalid: expected at least batch_events (%d)", c.MaxAckPending, c.BatchEvents)
	}
	if c.InProgressInterval >= c.effectiveAckWait() {
		return fmt.Errorf("in_progress_interval: %s is invalid: expected less than the ack wait %s (back_off[0] when set, else ack_wait)", c.InProgressInterval, c.effectiveAckWait())
	}
	if c.BatchWait >= c.effectiveAckWait() {
		return fmt.Errorf("batch_wait: %s is invalid: expected less than the ack wait %s", c.BatchWait, c.effectiveAckWait())
	}

	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		return fmt.Errorf("retry.max_backoff: %s is invalid: expected at least retry.initial_backoff (%s)", c.Retry.MaxBackoff, c.Retry.InitialBackoff)
	}
	if c.Retry.MaxAttempts < 0 {
		return fmt.Errorf("retry.max_attempts: %d is invalid: expected 0 (unlimited) or more", c.Retry.MaxAttempts)
	}
	if c.ValidationCacheEntries < 0 || c.ValidationCacheEntries > 10_000_000 {
		return fmt.Errorf("validation_cache_entries: %d is invalid: expected 0 to 10000000", c.ValidationCacheEntries)
	}
	if c.DecodeWorkers < 0 || c.DecodeWorkers > 256 {
		return fmt.Errorf("decode_workers: %d is invalid: expected 0 (GOMAXPROCS) to 256", c.DecodeWorkers)
	}
	return nil
}

// validSubject reports whether s is a NATS subject of non-empty tokens without whitespace, with
// the wildcards * and > (last token only) when wildcards is set.
func validSubject(s string, wildcards bool) bool {
	if s == "" {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		if t == "" || strings.ContainsAny(t, " \t\r\n") {
			return false
		}
		if t == "*" || t == ">" {
			if !wildcards || (t == ">" && i != len(tokens)-1) {
				return false
			}
			continue
		}
		if strings.ContainsAny(t, "*>") {
			return false
		}
	}
	return true
}

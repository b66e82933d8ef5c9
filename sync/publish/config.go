// Package publish provisions the JetStream stream that carries tisync's change events, publishes
// events to it with deterministic message ids, and hands out per-task leases so that two tisync
// processes never poll the same task at once.
package publish

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tisync/tisync/schema"
)

// Config configures the stream, the publisher and the task leases.
type Config struct {
	Stream StreamConfig `yaml:"stream"`
	// MaxInFlight caps the events published but not yet acknowledged. Default: 512.
	MaxInFlight int `yaml:"max_in_flight"`
	// AckTimeout is how long one publish waits for its acknowledgement before it counts as failed
	// and is retried. Default: 30s.
	AckTimeout time.Duration `yaml:"ack_timeout"`
	// MaxAttempts caps how often one event is published before the batch fails. Default: 5.
	MaxAttempts int `yaml:"max_attempts"`
	// RetryBackoff is the pause before the first retry round; it doubles each round up to 10s.
	// Default: 250ms.
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	Lease        LeaseConfig   `yaml:"lease"`
}

// StreamConfig describes the stream that tisync creates, or updates, at start-up.
type StreamConfig struct {
	// Name of the stream. Default: TESTINVITE.
	Name string `yaml:"name"`
	// Subjects the stream captures; each must lie below testinvite. Default: [testinvite.>].
	Subjects []string `yaml:"subjects"`
	// Storage is file or memory. Default: file.
	Storage string `yaml:"storage"`
	// Replicas is the number of copies in a JetStream cluster, 1 to 5. Default: 1.
	Replicas int `yaml:"replicas"`
	// MaxAge drops events older than this; 0 keeps them until MaxBytes is reached. Default: 720h
	// (30 days).
	MaxAge time.Duration `yaml:"max_age"`
	// MaxBytes caps the stream's size; the oldest events go first. -1 is unlimited. Default:
	// 10737418240 (10 GiB).
	MaxBytes int64 `yaml:"max_bytes"`
	// DuplicateWindow is how long JetStream remembers message ids to drop re-published events. It
	// must be longer than the longest poll, so that a poll redone after a crash publishes no
	// duplicates. Default: 2h.
	DuplicateWindow time.Duration `yaml:"duplicate_window"`
	// AllowRetentionShrink lets start-up lower MaxAge or MaxBytes of an existing stream, which
	// deletes the events past the new limits at once. Default: false.
	AllowRetentionShrink bool `yaml:"allow_retention_shrink"`
}

// LeaseConfig configures the per-task leases in a JetStream key-value bucket.
type LeaseConfig struct {
	// Bucket is the key-value bucket of the leases. Default: tisync_leases.
	Bucket string `yaml:"bucket"`
	// TTL is how long a lease lives without renewal; the holder renews it every TTL/3. A crashed
	// holder's tasks become free after at most TTL. Default: 1m.
	TTL time.Duration `yaml:"ttl"`
	// Replicas of the bucket in a JetStream cluster. Default: 1.
	Replicas int `yaml:"replicas"`
}

// DefaultConfig returns the settings used when the configuration leaves them unset.
func DefaultConfig() Config {
	return Config{
		Stream: StreamConfig{
			Name:            "TESTINVITE",
			Subjects:        []string{schema.StreamSubjects},
			Storage:         "file",
			Replicas:        1,
			MaxAge:          30 * 24 * time.Hour,
			MaxBytes:        10 << 30,
			DuplicateWindow: 2 * time.Hour,
		},
		MaxInFlight:  512,
		AckTimeout:   30 * time.Second,
		MaxAttempts:  5,
		RetryBackoff: 250 * time.Millisecond,
		Lease: LeaseConfig{
			Bucket:   "tisync_leases",
			TTL:      time.Minute,
			Replicas: 1,
		},
	}
}

// Validate checks the settings, naming each bad one with its value and what is expected.
func (c Config) Validate() error {
	var errs []error
	errs = append(errs, c.Stream.validate()...)
	if c.MaxInFlight < 1 || c.MaxInFlight > 65536 {
		errs = append(errs, fmt.Errorf("max_in_flight: %d is invalid: expected 1 to 65536", c.MaxInFlight))
	}
	if c.AckTimeout <= 0 {
		errs = append(errs, fmt.Errorf("ack_timeout: %s is invalid: expected a positive duration such as 30s", c.AckTimeout))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("max_attempts: %d is invalid: expected 1 or more", c.MaxAttempts))
	}
	if c.RetryBackoff < 0 {
		errs = append(errs, fmt.Errorf("retry_backoff: %s is invalid: expected 0 or a positive duration", c.RetryBackoff))
	}
	if !validBucketName(c.Lease.Bucket) {
		errs = append(errs, fmt.Errorf("lease.bucket: %q is invalid: expected letters, digits, - and _", c.Lease.Bucket))
	}
	if c.Lease.TTL < 3*time.Second {
		errs = append(errs, fmt.Errorf("lease.ttl: %s is invalid: expected at least 3s", c.Lease.TTL))
	}
	if c.Lease.Replicas < 1 || c.Lease.Replicas > 5 {
		errs = append(errs, fmt.Errorf("lease.replicas: %d is invalid: expected 1 to 5", c.Lease.Replicas))
	}
	return errors.Join(errs...)
}

func (s StreamConfig) validate() []error {
	var errs []error
	if !validStreamName(s.Name) {
		errs = append(errs, fmt.Errorf("stream.name: %q is invalid: expected letters, digits, - and _", s.Name))
	}
	if len(s.Subjects) == 0 {
		errs = append(errs, errors.New("stream.subjects: [] is invalid: expected at least one subject, such as testinvite.>"))
	}
	for _, subject := range s.Subjects {
		if subject != schema.StreamSubjects && !strings.HasPrefix(subject, schema.SubjectRoot+".") {
			errs = append(errs, fmt.Errorf("stream.subjects: %q is invalid: expected a subject below %s, such as %s", subject, schema.SubjectRoot, schema.StreamSubjects))
		}
	}
	if s.Storage != "file" && s.Storage != "memory" {
		errs = append(errs, fmt.Errorf("stream.storage: %q is invalid: expected file or memory", s.Storage))
	}
	if s.Replicas < 1 || s.Replicas > 5 {
		errs = append(errs, fmt.Errorf("stream.replicas: %d is invalid: expected 1 to 5", s.Replicas))
	}
	if s.MaxAge < 0 {
		errs = append(errs, fmt.Errorf("stream.max_age: %s is invalid: expected 0 (no limit) or a positive duration", s.MaxAge))
	}
	if s.MaxBytes == 0 || s.MaxBytes < -1 {
		errs = append(errs, fmt.Errorf("stream.max_bytes: %d is invalid: expected -1 (no limit) or a positive size", s.MaxBytes))
	}
	if s.DuplicateWindow < time.Second {
		errs = append(errs, fmt.Errorf("stream.duplicate_window: %s is invalid: expected at least 1s, and longer than the longest poll", s.DuplicateWindow))
	}
	if s.MaxAge > 0 && s.DuplicateWindow > s.MaxAge {
		errs = append(errs, fmt.Errorf("stream.duplicate_window: %s is longer than stream.max_age %s: expected at most max_age", s.DuplicateWindow, s.MaxAge))
	}
	return errs
}

func validStreamName(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	for _, c := range name {
		if !(c == '-' || c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

func validBucketName(name string) bool { return validStreamName(name) }

package publish

import (
	"errors"
	"fmt"
	"time"
)

var (
	// ErrWrongStream reports an acknowledgement from a stream other than the configured one: another
	// stream captures tisync's subjects.
	ErrWrongStream = errors.New("event stored by the wrong stream")
	// ErrStreamConflict reports an existing stream whose settings cannot be changed to the configured
	// ones without losing data.
	ErrStreamConflict = errors.New("existing stream conflicts with the configuration")
	// ErrLeaseHeld reports a task lease that another process holds.
	ErrLeaseHeld = errors.New("task lease held by another process")
	// ErrLeaseLost reports a lease that expired or was taken over while its holder worked.
	ErrLeaseLost = errors.New("task lease lost")
)

// PublishError reports events that were not acknowledged after every attempt.
type PublishError struct {
	// Failed is the number of events without an acknowledgement.
	Failed int
	// Attempts is how often each of them was published.
	Attempts int
	// Last is the error of the last failed attempt.
	Last error
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("%d events not acknowledged after %d attempts: %v", e.Failed, e.Attempts, e.Last)
}

func (e *PublishError) Unwrap() error { return e.Last }

// LeaseHeldError names the holder of a lease that could not be acquired.
type LeaseHeldError struct {
	Key    string
	Holder string
	// Since is when the holder acquired the lease.
	Since time.Time
}

func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("task lease %s held by %s since %s", e.Key, e.Holder, e.Since.UTC().Format(time.RFC3339))
}

func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }

package testinvite

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Sentinel errors. Test for them with errors.Is; the concrete errors are *APIError, *DecodeError,
// *PaginationError and *RetryError.
var (
	// ErrBadRequest matches an HTTP 400 response. It is not retried.
	ErrBadRequest = errors.New("testinvite: bad request")
	// ErrUnauthorized matches an HTTP 401 response: the credentials were rejected. It is not retried.
	ErrUnauthorized = errors.New("testinvite: unauthorized")
	// ErrForbidden matches an HTTP 403 response, for example deleting a candidate that has logged in.
	// It is not retried.
	ErrForbidden = errors.New("testinvite: forbidden")
	// ErrNotFound matches an HTTP 404 response: the task, candidate or test instance does not exist.
	// It is not retried.
	ErrNotFound = errors.New("testinvite: not found")
	// ErrRateLimited matches an HTTP 429 response, returned once the retries are used up.
	ErrRateLimited = errors.New("testinvite: rate limited")
	// ErrServer matches an HTTP 5xx response, returned once the retries are used up.
	ErrServer = errors.New("testinvite: server error")
	// ErrMalformedResponse matches a 200 response whose body cannot be decoded or lacks a required
	// part. Truncated and syntactically invalid bodies are retried; other decoding failures are not.
	ErrMalformedResponse = errors.New("testinvite: malformed response")
	// ErrRetriesExhausted matches a *RetryError: a transient failure outlasted the attempt cap or
	// the total-time cap.
	ErrRetriesExhausted = errors.New("testinvite: retries exhausted")
	// ErrRepeatedPage matches a scan that received a page with the same records, in the same
	// order, as an earlier page of the scan.
	ErrRepeatedPage = errors.New("testinvite: repeated page")
	// ErrCursorNotAdvancing matches a cursor search whose next cursor is one it already used.
	ErrCursorNotAdvancing = errors.New("testinvite: cursor not advancing")
	// ErrInconsistentPagination matches a scan whose pagination contradicts itself, for example an
	// empty page that is not the last, or more pages than the server reported.
	ErrInconsistentPagination = errors.New("testinvite: inconsistent pagination")
	// ErrInvalidID matches an id that is not a non-empty string of ASCII letters and digits. The
	// client checks ids before it puts them in a URL.
	ErrInvalidID = errors.New("testinvite: invalid id")
	// ErrTooManyUsers matches a legacy create-tickets call with more users than LegacyMaxUsers.
	ErrTooManyUsers = errors.New("testinvite: too many users")
	// ErrLegacyKind matches a legacy response whose kind is not a success kind.
	ErrLegacyKind = errors.New("testinvite: legacy call failed")
)

// maxExcerpt is the most bytes of a response body kept in an error.
const maxExcerpt = 512

// APIError is an HTTP response outside 2xx. Its Body is a bounded excerpt with the credentials
// removed.
type APIError struct {
	// StatusCode is the HTTP status, for example 404.
	StatusCode int
	// Method is the HTTP method.
	Method string
	// Endpoint is the route template, for example "GET /tasks/{taskId}/candidates".
	Endpoint string
	// RequestID is the X-Request-Id (or X-Correlation-Id) of the response, if any.
	RequestID string
	// RetryAfter is the wait the server asked for with Retry-After, or 0.
	RetryAfter time.Duration
	// Body is at most 512 bytes of the response body, credentials replaced by [REDACTED].
	Body string
}

// Error returns a one-line description: endpoint, status, request id and body excerpt.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "testinvite: %s: %d %s", e.Endpoint, e.StatusCode, http.StatusText(e.StatusCode))
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	if e.Body != "" {
		fmt.Fprintf(&b, ": %s", e.Body)
	}
	return b.String()
}

// Is matches the sentinel of the status: ErrBadRequest, ErrUnauthorized, ErrForbidden,
// ErrNotFound, ErrRateLimited or ErrServer.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized
	case ErrForbidden:
		return e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrServer:
		return e.StatusCode >= 500 && e.StatusCode <= 599
	}
	return false
}

// Temporary reports whether the status is worth retrying: 429 or 5xx.
func (e *APIError) Temporary() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500 && e.StatusCode <= 599
}

// DecodeError is a 200 response whose body could not be decoded.
type DecodeError struct {
	// Endpoint is the route template.
	Endpoint string
	// Body is at most 512 bytes around the failure, credentials replaced by [REDACTED].
	Body string
	// Err is the decoding error.
	Err error
	// retryable marks a truncated or syntactically invalid body.
	retryable bool
}

// Error returns the endpoint, the cause and the body excerpt.
func (e *DecodeError) Error() string {
	msg := fmt.Sprintf("testinvite: %s: decode response: %v", e.Endpoint, e.Err)
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// Unwrap returns the decoding error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Is matches ErrMalformedResponse.
func (e *DecodeError) Is(target error) bool { return target == ErrMalformedResponse }

// Temporary reports whether the body was truncated or syntactically invalid, which a retry may
// cure.
func (e *DecodeError) Temporary() bool { return e.retryable }

// PaginationError is a scan stopped because its pages contradict each other.
type PaginationError struct {
	// Endpoint is the route template.
	Endpoint string
	// Page is the 1-based number of the page read last in the scan.
	Page int
	// Cursor is the lastDocId sent with that page, for cursor searches.
	Cursor string
	// Reason describes the contradiction.
	Reason string
	// Kind is ErrRepeatedPage, ErrCursorNotAdvancing or ErrInconsistentPagination.
	Kind error
}

// Error returns the endpoint, page and reason.
func (e *PaginationError) Error() string {
	where := fmt.Sprintf("page %d", e.Page)
	if e.Cursor != "" {
		where += " after cursor " + e.Cursor
	}
	return fmt.Sprintf("testinvite: %s: %s: %s", e.Endpoint, where, e.Reason)
}

// Unwrap returns Kind, so that errors.Is matches the sentinel.
func (e *PaginationError) Unwrap() error { return e.Kind }

// RetryError ends a request whose transient failures outlasted the attempt cap or the total-time
// cap. Err is the last failure, so errors.Is(err, ErrServer) and errors.As(err, &apiErr) still
// work.
type RetryError struct {
	// Endpoint is the route template.
	Endpoint string
	// Attempts is the number of attempts made.
	Attempts int
	// Elapsed is the time from the first attempt to giving up.
	Elapsed time.Duration
	// Reason is "max_attempts" or "max_elapsed".
	Reason string
	// Err is the last failure.
	Err error
}

// Error returns the endpoint, the attempts and the last failure.
func (e *RetryError) Error() string {
	return fmt.Sprintf("testinvite: %s: giving up after %d attempts in %v (%s): %v", e.Endpoint, e.Attempts, e.Elapsed.Round(time.Millisecond), e.Reason, e.Err)
}

// Unwrap returns the last failure.
func (e *RetryError) Unwrap() error { return e.Err }

// Is matches ErrRetriesExhausted.
func (e *RetryError) Is(target error) bool { return target == ErrRetriesExhausted }

// LegacyError is a legacy response that is not a success: an unexpected kind, or an HTTP status
// outside 2xx (then StatusCode is set and errors.Is matches the status sentinels too).
type LegacyError struct {
	// Endpoint is the route template, for example "POST /fatih/fetch-tasks".
	Endpoint string
	// StatusCode is the HTTP status.
	StatusCode int
	// Kind is the kind of the response envelope.
	Kind string
	// Payload is at most 512 bytes of the payload, credentials replaced by [REDACTED].
	Payload string
}

// Error returns the endpoint, status, kind and payload excerpt.
func (e *LegacyError) Error() string {
	return fmt.Sprintf("testinvite: %s: %d kind %q: %s", e.Endpoint, e.StatusCode, e.Kind, e.Payload)
}

// Is matches ErrLegacyKind and the sentinel of the HTTP status.
func (e *LegacyError) Is(target error) bool {
	if target == ErrLegacyKind {
		return true
	}
	return (&APIError{StatusCode: e.StatusCode}).Is(target)
}

package testinvite_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/tisync/tisync/sync/testinvite"
)

func TestErrorsMatchSentinels(t *testing.T) {
	apiErr := func(status int) error {
		return fmt.Errorf("scan page 2: %w", &testinvite.APIError{StatusCode: status, Method: "GET", Endpoint: testinvite.EndpointGetTask})
	}
	cases := []struct {
		name string
		err  error
		is   []error
		not  []error
	}{
		{"400", apiErr(400), []error{testinvite.ErrBadRequest}, []error{testinvite.ErrNotFound, testinvite.ErrServer}},
		{"401", apiErr(401), []error{testinvite.ErrUnauthorized}, []error{testinvite.ErrForbidden}},
		{"403", apiErr(403), []error{testinvite.ErrForbidden}, []error{testinvite.ErrUnauthorized}},
		{"404", apiErr(404), []error{testinvite.ErrNotFound}, []error{testinvite.ErrBadRequest}},
		{"429", apiErr(429), []error{testinvite.ErrRateLimited}, []error{testinvite.ErrServer}},
		{"502", apiErr(502), []error{testinvite.ErrServer}, []error{testinvite.ErrRateLimited}},
		{"decode", &testinvite.DecodeError{Endpoint: "GET /tasks", Err: errors.New("x")}, []error{testinvite.ErrMalformedResponse}, []error{testinvite.ErrServer}},
		{"retry", &testinvite.RetryError{Endpoint: "GET /tasks", Attempts: 3, Err: apiErr(503)}, []error{testinvite.ErrRetriesExhausted, testinvite.ErrServer}, []error{testinvite.ErrNotFound}},
		{"repeated page", &testinvite.PaginationError{Kind: testinvite.ErrRepeatedPage}, []error{testinvite.ErrRepeatedPage}, []error{testinvite.ErrCursorNotAdvancing}},
		{"cursor", &testinvite.PaginationError{Kind: testinvite.ErrCursorNotAdvancing}, []error{testinvite.ErrCursorNotAdvancing}, []error{testinvite.ErrRepeatedPage}},
		{"inconsistent", &testinvite.PaginationError{Kind: testinvite.ErrInconsistentPagination}, []error{testinvite.ErrInconsistentPagination}, nil},
		{"legacy", &testinvite.LegacyError{StatusCode: 200, Kind: "failure"}, []error{testinvite.ErrLegacyKind}, []error{testinvite.ErrServer}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for _, target := range tc.is {
				if !errors.Is(tc.err, target) {
					t.Errorf("errors.Is(%v, %v) = false", tc.err, target)
				}
			}
			for _, target := range tc.not {
				if errors.Is(tc.err, target) {
					t.Errorf("errors.Is(%v, %v) = true", tc.err, target)
				}
			}
		})
	}
}

func TestErrorsAsTypes(t *testing.T) {
	wrapped := &testinvite.RetryError{Err: fmt.Errorf("x: %w", &testinvite.APIError{StatusCode: 503, RequestID: "req-1"})}
	var apiErr *testinvite.APIError
	if !errors.As(wrapped, &apiErr) || apiErr.RequestID != "req-1" {
		t.Errorf("errors.As APIError through RetryError failed")
	}
	var re *testinvite.RetryError
	if !errors.As(fmt.Errorf("scan: %w", wrapped), &re) {
		t.Errorf("errors.As RetryError failed")
	}
	var de *testinvite.DecodeError
	if !errors.As(fmt.Errorf("scan: %w", &testinvite.DecodeError{Err: errors.New("bad")}), &de) {
		t.Errorf("errors.As DecodeError failed")
	}
	var pe *testinvite.PaginationError
	if !errors.As(fmt.Errorf("scan: %w", &testinvite.PaginationError{Kind: testinvite.ErrRepeatedPage, Page: 4}), &pe) || pe.Page != 4 {
		t.Errorf("errors.As PaginationError failed")
	}
	var le *testinvite.LegacyError
	if !errors.As(fmt.Errorf("x: %w", &testinvite.LegacyError{Kind: "k"}), &le) || le.Kind != "k" {
		t.Errorf("errors.As LegacyError failed")
	}
}

func TestAPIErrorMessage(t *testing.T) {
	err := &testinvite.APIError{StatusCode: 404, Method: "GET", Endpoint: testinvite.EndpointGetCandidate, RequestID: "abc", Body: `{"message":"nope"}`}
	want := `testinvite: GET /tasks/{taskId}/candidates/{candidateId}: 404 Not Found (request id abc): {"message":"nope"}`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

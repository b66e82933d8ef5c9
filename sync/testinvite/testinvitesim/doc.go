// Package testinvitesim is an in-memory simulator of TestInvite's REST integration API, for tests,
// demos and benchmarks, like net/http/httptest beside net/http.
//
// The simulator serves every documented route of /api/integration/rest/v1 with the documented
// shapes. It also serves each route without the v1 segment, because the documentation shows
// tasks/filter and the expand call that way. It implements basic and detailed modes, offset pages
// with limit (default 10) and page (default 1) whose next and previous links are query strings
// such as "?limit=5&page=3&mode=basic", the cursor search of test instances with lastDocId,
// candidate create, update and delete with the documented delete rule, and the expand call.
// Optionally it also serves the legacy /api/v1/fatih endpoints, which authenticate with a
// requester object in the JSON body.
//
// # State
//
// New builds a seeded organization: the same Options give byte-identical state. Timestamps are
// simulated time that starts at Options.Epoch and advances with churn; they do not follow the
// wall clock, so that a seed reproduces the same records.
//
// Every list is ordered newest first by creation, and that order never changes for the records it
// already holds: a record created during a scan appears at the front, which shifts the later pages
// of an offset scan by one place, as on a live service. Test instances copy the group, labels and
// tags of their candidate when they start and keep those values when the candidate is edited later.
//
// # Assumptions
//
// TestInvite does not document REST authentication, error bodies, rate limits, the maximum page
// size or the ordering of lists. The simulator checks credentials in one of the client's schemes
// (HTTP basic with organization id and private key, bearer token, or custom headers), responds to
// errors with {"status": <code>, "message": "..."}, accepts any positive limit unless a page-size
// cap is injected, and compares the from and to bounds of the test-instance search (milliseconds,
// both inclusive) with the time the test instance started.
//
// # Faults
//
// Options.Faults, SetFaults and the admin endpoint POST /_admin/faults inject latency, 429 responses
// with Retry-After, 5xx responses, hanging requests, truncated or malformed JSON bodies, a server-side
// page-size cap and pagination drift (records created or deleted between the pages of a scan).
// Each fault fires at a rate in 0..1 drawn from a random number generator seeded from Options.Seed,
// so the same sequence of requests meets the same faults. Concurrent requests draw in the order
// they arrive, which the seed does not fix.
//
// # Admin endpoints
//
// The admin endpoints are not authenticated, so bind the simulator to a loopback address:
//
//	GET  /_admin/faults   current faults as JSON
//	POST /_admin/faults   replace the faults with the JSON body
//	GET  /_admin/truth    the whole state as JSON lines (see WriteTruth)
//	GET  /_admin/stats    request counters per route template (see Stats)
//	POST /_admin/churn?n=N apply N churn events now
package testinvitesim

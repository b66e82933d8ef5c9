// Package testinvite is a client of TestInvite's REST integration API (/api/integration/rest/v1)
// and of its legacy RPC API (/api/v1/fatih), for one organization.
//
// # Reading
//
// Tasks, candidates (the REST name of tickets) and test instances (test sessions) are read with
// Get methods for one record and with Scanners for lists. ListTasks, FilterTasks, ListCandidates
// and ListTestInstances use offset paging (limit, page). SearchTestInstances uses the cursor
// search (lastDocId).
//
// A Scanner returns one Page per Next call, so a caller can process records page by page in
// bounded memory. Its Stats report whether the scan was exhaustive: every page read without
// error, the totals of all pages the same, and no record missing. A Scanner drops records seen
// twice in one scan, because offset paging over changing data repeats some. It builds each request
// from its own counters with the same filters instead of following the next link, because the
// documentation does not say whether that link keeps the filters. It adapts to a server-side
// page-size cap. It stops with a *PaginationError when the server repeats a page or a cursor does
// not advance.
//
// Every record keeps the exact bytes the server sent in its Raw field, unknown fields included;
// the typed fields are decoded tolerantly: result may be false, null or an object, unknown enum
// values are kept as strings, a field of an unexpected JSON type is left empty (and counted), and
// responses may be bare or wrapped in {"payload": ...}. Reads use mode detailed unless configured
// otherwise.
//
// # Authentication
//
// TestInvite does not document how REST requests authenticate; only the legacy API documents its
// credentials (organization id and private key in a requester object of the body). The client
// therefore makes the scheme configurable, and the default, HTTP basic authentication with the
// organization id as user name and the private key as password, is an assumption. The other
// schemes are a bearer token and custom headers whose values may refer to {organization_id},
// {private_key} and {token}. The private key and token never appear in logs, errors or metrics.
//
// # Failures
//
// Requests that fail with 429, 5xx, a timeout, a connection error or a truncated or malformed
// body are retried with exponential backoff and full jitter, honouring Retry-After in seconds or
// as an HTTP date, up to Config.Retry.MaxAttempts attempts and Config.Retry.MaxElapsed in total.
// Calls that create records are retried only on 429. 400, 401, 403 and 404 are not retried: test
// for them with errors.Is and ErrBadRequest, ErrUnauthorized, ErrForbidden and ErrNotFound, and
// read the details with errors.As and *APIError. A client-side rate limit
// (golang.org/x/time/rate) covers every request of one Client, so share one Client per
// organization.
package testinvite

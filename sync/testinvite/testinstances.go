package testinvite

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// Route templates of the test-instance endpoints.
const (
	EndpointListTestInstances   = "GET /tasks/{taskId}/test-instances"
	EndpointSearchTestInstances = "POST /tasks/{taskId}/test-instances/filter"
	EndpointGetTestInstance     = "GET /tasks/{taskId}/test-instances/{testInstanceId}"
	EndpointExpandTestInstance  = "POST /tasks/{taskId}/test-instances/{testInstanceId}/expand"
)

// TestInstanceQuery filters GET /tasks/{taskId}/test-instances. CandidateID and ExternalID cannot
// be combined.
type TestInstanceQuery struct {
	// CandidateID keeps the test instances of one candidate. The documentation names this
	// parameter ticketId in its table and candidateId in its text, so the client sends both.
	CandidateID string
	// ExternalID keeps the test instances whose candidate has this external id.
	ExternalID string
	// Mode overrides the client's mode when set.
	Mode Mode
	// PageSize overrides Config.PageSize when above zero.
	PageSize int
	// RawOnly skips decoding the typed fields: records carry only their id and Raw. It is for
	// callers that use the raw bytes alone, such as the poller, and saves most of the decoding
	// work. Field type mismatches are then not counted.
	RawOnly bool
}

// ListTestInstances returns a Scanner over the test instances (test sessions) of a task with offset
// paging. Invalid ids or a query combining CandidateID and ExternalID make the first Next return
// the error.
func (c *Client) ListTestInstances(taskID string, q TestInstanceQuery) *Scanner[TestInstance] {
	if err := checkID("task id", taskID); err != nil {
		return failedScanner[TestInstance](c, EndpointListTestInstances, err)
	}
	if q.CandidateID != "" {
		if err := checkID("candidate id", q.CandidateID); err != nil {
			return failedScanner[TestInstance](c, EndpointListTestInstances, err)
		}
		if q.ExternalID != "" {
			return failedScanner[TestInstance](c, EndpointListTestInstances,
				fmt.Errorf("testinvite: %s: candidate id and external id cannot be combined", EndpointListTestInstances))
		}
	}
	mode := c.modeOr(q.Mode)
	return newScanner(c, EndpointListTestInstances, false, q.PageSize, func(ctx context.Context, limit, page int, _ string) ([]TestInstance, Pagination, error) {
		query := offsetQuery(mode, limit, page)
		if q.CandidateID != "" {
			query.Set("ticketId", q.CandidateID)
			query.Set("candidateId", q.CandidateID)
		}
		if q.ExternalID != "" {
			query.Set("externalId", q.ExternalID)
		}
		return fetchPage[TestInstance](ctx, c, call{endpoint: EndpointListTestInstances, method: "GET",
			path: restV1 + "/tasks/" + taskID + "/test-instances", query: query, rawOnly: q.RawOnly})
	})
}

// SearchKind selects the body shape of the test-instance search.
type SearchKind string

// Search kinds.
const (
	// SearchMeta filters by group, label, step, status and time window.
	SearchMeta SearchKind = "meta"
	// SearchInfo looks test instances up by candidate identity.
	SearchInfo SearchKind = "info"
)

// TestInstanceSearch is the body of POST /tasks/{taskId}/test-instances/filter. Kind meta (the
// default) takes Group, Label, StepID, Status, From and To; kind info takes DisplayName, Email,
// Credential1, Code and UniqID. Set filters are AND-combined.
type TestInstanceSearch struct {
	Kind   SearchKind
	Group  string
	Label  string
	StepID string
	Status Status
	// From and To bound the window; they are sent in Unix milliseconds, the unit of this filter.
	// TestInvite does not document which timestamp they compare with or whether they are
	// inclusive.
	From, To time.Time

	DisplayName string
	Email       string
	Credential1 string
	Code        string
	UniqID      string

	// Mode overrides the client's mode when set.
	Mode Mode
	// PageSize overrides Config.PageSize when above zero.
	PageSize int
}

// body returns the JSON body of the search, or an error for fields of the other kind.
func (s TestInstanceSearch) body() (map[string]any, error) {
	kind := s.Kind
	if kind == "" {
		kind = SearchMeta
	}
	b := map[string]any{"kind": string(kind)}
	set := func(name, v string) {
		if v != "" {
			b[name] = v
		}
	}
	meta := s.Group != "" || s.Label != "" || s.StepID != "" || s.Status != "" || !s.From.IsZero() || !s.To.IsZero()
	info := s.DisplayName != "" || s.Email != "" || s.Credential1 != "" || s.Code != "" || s.UniqID != ""
	switch kind {
	case SearchMeta:
		if info {
			return nil, fmt.Errorf("search kind meta: displayName, email, credential1, code and uniqId belong to kind info")
		}
		set("group", s.Group)
		set("label", s.Label)
		set("stepId", s.StepID)
		set("status", string(s.Status))
		if !s.From.IsZero() {
			b["from"] = s.From.UnixMilli()
		}
		if !s.To.IsZero() {
			b["to"] = s.To.UnixMilli()
		}
	case SearchInfo:
		if meta {
			return nil, fmt.Errorf("search kind info: group, label, stepId, status, from and to belong to kind meta")
		}
		set("displayName", s.DisplayName)
		set("email", s.Email)
		set("credential1", s.Credential1)
		set("code", s.Code)
		set("uniqId", s.UniqID)
	default:
		return nil, fmt.Errorf("search kind %q is invalid: expected meta or info", kind)
	}
	return b, nil
}

// SearchTestInstances returns a Scanner over the test instances matching s, with cursor paging
// (lastDocId). Invalid ids or fields of the wrong kind make the first Next return the error.
func (c *Client) SearchTestInstances(taskID string, s TestInstanceSearch) *Scanner[TestInstance] {
	if err := checkID("task id", taskID); err != nil {
		return failedScanner[TestInstance](c, EndpointSearchTestInstances, err)
	}
	body, err := s.body()
	if err != nil {
		return failedScanner[TestInstance](c, EndpointSearchTestInstances, fmt.Errorf("testinvite: %s: %w", EndpointSearchTestInstances, err))
	}
	mode := c.modeOr(s.Mode)
	return newScanner(c, EndpointSearchTestInstances, true, s.PageSize, func(ctx context.Context, limit, _ int, cursor string) ([]TestInstance, Pagination, error) {
		query := url.Values{"mode": {string(mode)}, "limit": {strconv.Itoa(limit)}}
		if cursor != "" {
			query.Set("lastDocId", cursor)
		}
		return fetchPage[TestInstance](ctx, c, call{endpoint: EndpointSearchTestInstances, method: "POST",
			path: restV1 + "/tasks/" + taskID + "/test-instances/filter", query: query, body: body})
	})
}

// GetTestInstance returns one test instance. It returns an error matching ErrNotFound when the task
// or test instance does not exist and ErrInvalidID for an id that is not letters and digits.
func (c *Client) GetTestInstance(ctx context.Context, taskID, testInstanceID string) (TestInstance, error) {
	if err := checkID("task id", taskID); err != nil {
		return TestInstance{}, err
	}
	if err := checkID("test instance id", testInstanceID); err != nil {
		return TestInstance{}, err
	}
	return getRecord[TestInstance](ctx, c, EndpointGetTestInstance, restV1+"/tasks/"+taskID+"/test-instances/"+testInstanceID)
}

// Expand keywords of ExpandTestInstance.
const (
	ExpandTest          = "test"
	ExpandUniqID        = "uniqId"
	ExpandCreditCost    = "creditCost"
	ExpandRoomForm      = "roomForm"
	ExpandIdentityPhoto = "identityPhoto"
)

// ExpandTestInstance returns the detailed test instance with the blocks named by expand (see the
// Expand constants) filled in.
func (c *Client) ExpandTestInstance(ctx context.Context, taskID, testInstanceID string, expand ...string) (TestInstance, error) {
	if err := checkID("task id", taskID); err != nil {
		return TestInstance{}, err
	}
	if err := checkID("test instance id", testInstanceID); err != nil {
		return TestInstance{}, err
	}
	if expand == nil {
		expand = []string{}
	}
	var out TestInstance
	err := c.do(ctx, &call{
		endpoint: EndpointExpandTestInstance, method: "POST",
		path: restNoV1 + "/tasks/" + taskID + "/test-instances/" + testInstanceID + "/expand",
		body: map[string]any{"expand": expand}, idempotent: true,
		decode: func(body []byte) error {
			var err error
			out, err = decodeRecord[TestInstance](EndpointExpandTestInstance, body)
			return err
		},
	})
	return out, err
}

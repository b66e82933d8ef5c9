package testinvite

import (
	"context"
	"encoding/json"
	"net/url"
)

// Route templates of the candidate endpoints.
const (
	EndpointListCandidates  = "GET /tasks/{taskId}/candidates"
	EndpointGetCandidate    = "GET /tasks/{taskId}/candidates/{candidateId}"
	EndpointCreateCandidate = "POST /tasks/{taskId}/candidates"
	EndpointUpdateCandidate = "PATCH /tasks/{taskId}/candidates/{candidateId}"
	EndpointDeleteCandidate = "DELETE /tasks/{taskId}/candidates/{candidateId}"
)

// CandidateQuery filters GET /tasks/{taskId}/candidates. Each filter is an exact, case-sensitive
// match.
type CandidateQuery struct {
	Fullname string
	Email    string
	// Code is the invitation code.
	Code string
	// Mode overrides the client's mode when set.
	Mode Mode
	// PageSize overrides Config.PageSize when above zero.
	PageSize int
	// RawOnly skips decoding the typed fields: records carry only their id and Raw. It is for
	// callers that use the raw bytes alone, such as the poller, and saves most of the decoding
	// work. Field type mismatches are then not counted.
	RawOnly bool
}

// ListCandidates returns a Scanner over the candidates (tickets) of a task. A task id that is not
// letters and digits makes the first Next return an error matching ErrInvalidID.
func (c *Client) ListCandidates(taskID string, q CandidateQuery) *Scanner[Candidate] {
	if err := checkID("task id", taskID); err != nil {
		return failedScanner[Candidate](c, EndpointListCandidates, err)
	}
	mode := c.modeOr(q.Mode)
	return newScanner(c, EndpointListCandidates, false, q.PageSize, func(ctx context.Context, limit, page int, _ string) ([]Candidate, Pagination, error) {
		query := offsetQuery(mode, limit, page)
		for k, v := range map[string]string{"fullname": q.Fullname, "email": q.Email, "code": q.Code} {
			if v != "" {
				query.Set(k, v)
			}
		}
		return fetchPage[Candidate](ctx, c, call{endpoint: EndpointListCandidates, method: "GET",
			path: restV1 + "/tasks/" + taskID + "/candidates", query: query, rawOnly: q.RawOnly})
	})
}

// GetCandidate returns one candidate. It returns an error matching ErrNotFound when the task or
// candidate does not exist and ErrInvalidID for an id that is not letters and digits.
func (c *Client) GetCandidate(ctx context.Context, taskID, candidateID string) (Candidate, error) {
	if err := checkID("task id", taskID); err != nil {
		return Candidate{}, err
	}
	if err := checkID("candidate id", candidateID); err != nil {
		return Candidate{}, err
	}
	return getRecord[Candidate](ctx, c, EndpointGetCandidate, restV1+"/tasks/"+taskID+"/candidates/"+candidateID)
}

// Candidate kinds of NewCandidate.Kind.
const (
	KindTemporaryCandidate = "temporary-candidate"
	KindInternalCandidate  = "internal-candidate"
)

// NewCandidate is the body of POST /tasks/{taskId}/candidates. Kind is required; ID is the user
// id of an internal candidate; the personal fields and Tracking only apply to temporary ones.
type NewCandidate struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`

	Fullname    string    `json:"fullname,omitempty"`
	Email       string    `json:"email,omitempty"`
	Credential1 string    `json:"credential1,omitempty"`
	Credential2 string    `json:"credential2,omitempty"`
	Tracking    *Tracking `json:"tracking,omitempty"`

	Group           string            `json:"group,omitempty"`
	Labels          []string          `json:"labels,omitempty"`
	Tags            map[string]string `json:"tags,omitempty"`
	ExternalID      string            `json:"externalId,omitempty"`
	ExternalData    json.RawMessage   `json:"externalData,omitempty"`
	Lang            string            `json:"lang,omitempty"`
	ProgramIDs      []string          `json:"programIds,omitempty"`
	ExtraEmails     []string          `json:"extraEmails,omitempty"`
	Dates           *CandidateDates   `json:"dates,omitempty"`
	InviteByEmail   *InviteByEmail    `json:"inviteByEmail,omitempty"`
	Callback        *Callback         `json:"callback,omitempty"`
	CustomizedSteps []json.RawMessage `json:"customizedSteps,omitempty"`
}

// Tracking makes UniqID unique within Scope (task, group, labels or programs; default task).
type Tracking struct {
	UniqID string `json:"uniqId"`
	Scope  string `json:"scope,omitempty"`
}

// CandidateDates is the access window of a candidate, in Unix seconds.
type CandidateDates struct {
	Before *int64 `json:"before,omitempty"`
	After  *int64 `json:"after,omitempty"`
}

// InviteByEmail sends the invitation with an e-mail template of the task.
type InviteByEmail struct {
	EmailTemplateName string `json:"emailTemplateName"`
	DateToSend        *int64 `json:"dateToSend,omitempty"`
}

// Callback requests TestInvite to send each completed test instance of the candidate to URL.
type Callback struct {
	URL      string            `json:"url"`
	Params   map[string]string `json:"params,omitempty"`
	Resource Mode              `json:"resource"`
}

// CreateCandidate creates a candidate and returns it as the server returned it. It is retried only on
// 429, because a retry after another failure could create the candidate twice.
func (c *Client) CreateCandidate(ctx context.Context, taskID string, nc NewCandidate) (Candidate, error) {
	if err := checkID("task id", taskID); err != nil {
		return Candidate{}, err
	}
	var out Candidate
	err := c.do(ctx, &call{
		endpoint: EndpointCreateCandidate, method: "POST", path: restV1 + "/tasks/" + taskID + "/candidates", body: nc,
		decode: func(body []byte) error {
			var err error
			out, err = decodeRecord[Candidate](EndpointCreateCandidate, body)
			return err
		},
	})
	return out, err
}

// CandidateUpdate is the body of PATCH /tasks/{taskId}/candidates/{candidateId}. Unset fields are
// left unchanged.
type CandidateUpdate struct {
	Fields CandidateFields `json:"fields"`
	// Steps maps step ids to step customizations, passed through as JSON objects such as
	// {"limit": {"isDefault": false, "value": 2}}.
	Steps map[string]json.RawMessage `json:"steps,omitempty"`
}

// CandidateFields are the candidate fields a PATCH may change; timestamps are Unix seconds.
type CandidateFields struct {
	Fullname     *string      `json:"fullname,omitempty"`
	Email        *string      `json:"email,omitempty"`
	Group        *string      `json:"group,omitempty"`
	Labels       *LabelChange `json:"labels,omitempty"`
	Favorite     *bool        `json:"favorite,omitempty"`
	Active       *bool        `json:"active,omitempty"`
	ActiveAfter  *int64       `json:"activeAfter,omitempty"`
	ActiveBefore *int64       `json:"activeBefore,omitempty"`
}

// LabelChange adds and removes labels.
type LabelChange struct {
	Add    []string `json:"add,omitempty"`
	Remove []string `json:"remove,omitempty"`
}

// UpdateCandidate changes a candidate and returns the detailed candidate the server returned.
func (c *Client) UpdateCandidate(ctx context.Context, taskID, candidateID string, u CandidateUpdate) (Candidate, error) {
	if err := checkID("task id", taskID); err != nil {
		return Candidate{}, err
	}
	if err := checkID("candidate id", candidateID); err != nil {
		return Candidate{}, err
	}
	var out Candidate
	err := c.do(ctx, &call{
		endpoint: EndpointUpdateCandidate, method: "PATCH", path: restV1 + "/tasks/" + taskID + "/candidates/" + candidateID,
		body: u, idempotent: true,
		decode: func(body []byte) error {
			var err error
			out, err = decodeRecord[Candidate](EndpointUpdateCandidate, body)
			return err
		},
	})
	return out, err
}

// DeleteCandidate deletes a candidate that never logged in and has no test instance. It returns an
// error matching ErrForbidden for any other candidate and ErrNotFound for an unknown one.
func (c *Client) DeleteCandidate(ctx context.Context, taskID, candidateID string) error {
	if err := checkID("task id", taskID); err != nil {
		return err
	}
	if err := checkID("candidate id", candidateID); err != nil {
		return err
	}
	return c.do(ctx, &call{
		endpoint: EndpointDeleteCandidate, method: "DELETE", path: restV1 + "/tasks/" + taskID + "/candidates/" + candidateID,
		query: url.Values{}, idempotent: true,
	})
}

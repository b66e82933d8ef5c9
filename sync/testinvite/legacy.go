package testinvite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
)

// The legacy integration API (/api/v1/fatih) is RPC over POST: every body carries a requester
// object with the organization id and private key, and every response is an envelope
// {"kind": ..., "payload": ...}. TestInvite documents only that a successful kind begins with
// "zeto" and does not document the payloads, so these calls return the payload as raw JSON and
// decode the parts they need tolerantly.

// Route templates of the legacy endpoints.
const (
	EndpointLegacyFetchTasks       = "POST /fatih/fetch-tasks"
	EndpointLegacyQueryTestResults = "POST /fatih/query-test-results"
	EndpointLegacyCreateTickets    = "POST /fatih/create-tickets"
)

// LegacyMaxUsers is the most users one create-tickets call accepts.
const LegacyMaxUsers = 200

// LegacyResponse is the envelope of a legacy response.
type LegacyResponse struct {
	// Kind is the outcome; successful kinds begin with "zeto".
	Kind string
	// Payload is the payload exactly as sent.
	Payload json.RawMessage
}

type legacyRequester struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Auth    struct {
		OrganizationID string `json:"organizationId"`
		PrivateKey     string `json:"privateKey"`
	} `json:"auth"`
}

func (c *Client) requester() legacyRequester {
	r := legacyRequester{Name: c.cfg.LegacyRequesterName}
	r.Auth.OrganizationID = c.cfg.OrganizationID
	r.Auth.PrivateKey = c.cfg.PrivateKey.Reveal()
	return r
}

// legacyCall sends body to a legacy endpoint and decodes the envelope. A response without a
// kind member is taken as a bare payload.
func (c *Client) legacyCall(ctx context.Context, endpoint, action string, body any, idempotent bool) (LegacyResponse, error) {
	var out LegacyResponse
	err := c.do(ctx, &call{
		endpoint: endpoint, method: "POST", path: legacyPath + "/" + action, body: body, noAuth: true, idempotent: idempotent,
		decode: func(data []byte) error {
			var env struct {
				Kind    *string         `json:"kind"`
				Payload json.RawMessage `json:"payload"`
			}
			if err := json.Unmarshal(data, &env); err != nil {
				return newDecodeError(endpoint, data, err)
			}
			if env.Kind == nil {
				out = LegacyResponse{Payload: data}
				return nil
			}
			out = LegacyResponse{Kind: *env.Kind, Payload: env.Payload}
			if !strings.HasPrefix(strings.ToLower(out.Kind), "zeto") {
				return &LegacyError{Endpoint: endpoint, StatusCode: 200, Kind: out.Kind,
					Payload: c.scrub.scrub(string(excerpt(env.Payload, 0)))}
			}
			return nil
		},
	})
	return out, err
}

// LegacyFetchTasks calls fetch-tasks and returns the tasks found in the payload, which may be an
// array of tasks or an object with a tasks array, with the envelope.
func (c *Client) LegacyFetchTasks(ctx context.Context) ([]Task, LegacyResponse, error) {
	body := map[string]any{"requester": c.requester()}
	resp, err := c.legacyCall(ctx, EndpointLegacyFetchTasks, "fetch-tasks", body, true)
	if err != nil {
		return nil, resp, err
	}
	var tasks []Task
	list := resp.Payload
	var wrapper struct {
		Tasks json.RawMessage `json:"tasks"`
	}
	if json.Unmarshal(list, &wrapper) == nil && wrapper.Tasks != nil {
		list = wrapper.Tasks
	}
	if err := json.Unmarshal(list, &tasks); err != nil {
		de := newDecodeError(EndpointLegacyFetchTasks, resp.Payload, fmt.Errorf("payload contains no task list: %w", err))
		de.Body = c.scrub.scrub(de.Body)
		return nil, resp, de
	}
	return tasks, resp, nil
}

// LegacyTicketQuery names one ticket of query-test-results.
type LegacyTicketQuery struct {
	TicketID                string           `json:"ticketId"`
	StepTestCustomReporting *CustomReporting `json:"stepTestCustomReporting,omitempty"`
}

// CustomReporting selects the report of a ticket's results: kind default or custom with ReportID.
type CustomReporting struct {
	Kind     string `json:"kind"`
	ReportID string `json:"reportId,omitempty"`
}

// LegacyQueryTestResults calls query-test-results for tickets of one task (kind by-ticket, the only
// documented kind). The payload's shape is not documented, so it is returned as sent.
func (c *Client) LegacyQueryTestResults(ctx context.Context, taskID string, tickets []LegacyTicketQuery) (LegacyResponse, error) {
	if err := checkID("task id", taskID); err != nil {
		return LegacyResponse{}, err
	}
	body := map[string]any{"requester": c.requester(), "taskId": taskID, "kind": "by-ticket", "tickets": tickets}
	return c.legacyCall(ctx, EndpointLegacyQueryTestResults, "query-test-results", body, true)
}

// LegacyUser is one user of create-tickets. Only Fullname is documented and required; the other
// field names are assumed to mirror the REST candidate fields.
type LegacyUser struct {
	Fullname   string            `json:"fullname"`
	Email      string            `json:"email,omitempty"`
	Group      string            `json:"group,omitempty"`
	Labels     []string          `json:"labels,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	ExternalID string            `json:"externalId,omitempty"`
}

// LegacyTicketOptions are the optional parts of create-tickets, passed through as JSON because
// their inner fields are not documented.
type LegacyTicketOptions struct {
	Emailing json.RawMessage
	Callback json.RawMessage
}

// LegacyTicket is one created ticket as far as the client could read it.
type LegacyTicket struct {
	// TicketID is the ticket id (member ticketId, or id).
	TicketID string
	// AccessURL is the personal access link (member accessUrl, accessLink or link).
	AccessURL string
	// Raw is the ticket object as sent.
	Raw json.RawMessage
}

// LegacyCreateTickets creates tickets for up to LegacyMaxUsers users in one call. It returns an
// error matching ErrTooManyUsers without sending anything for more users, and ErrBadRequest from
// the server for invalid ones. It is retried only on 429, because a retry after another failure
// could create the tickets twice.
func (c *Client) LegacyCreateTickets(ctx context.Context, taskID string, users []LegacyUser, opts LegacyTicketOptions) ([]LegacyTicket, LegacyResponse, error) {
	if err := checkID("task id", taskID); err != nil {
		return nil, LegacyResponse{}, err
	}
	if len(users) == 0 || len(users) > LegacyMaxUsers {
		return nil, LegacyResponse{}, fmt.Errorf("testinvite: %s: %d users: %w: expected 1 to %d", EndpointLegacyCreateTickets, len(users), ErrTooManyUsers, LegacyMaxUsers)
	}
	for i, u := range users {
		if u.Fullname == "" {
			return nil, LegacyResponse{}, fmt.Errorf("testinvite: %s: users[%d].fullname: missing", EndpointLegacyCreateTickets, i)
		}
	}
	body := map[string]any{"requester": c.requester(), "task": map[string]string{"taskId": taskID}, "users": users}
	if opts.Emailing != nil {
		body["emailing"] = opts.Emailing
	}
	if opts.Callback != nil {
		body["callback"] = opts.Callback
	}
	resp, err := c.legacyCall(ctx, EndpointLegacyCreateTickets, "create-tickets", body, false)
	if err != nil {
		return nil, resp, err
	}
	return legacyTickets(resp.Payload), resp, nil
}

// legacyTickets reads the tickets of a create-tickets payload: an array, or an object with a
// tickets array. Entries it cannot read are skipped.
func legacyTickets(payload json.RawMessage) []LegacyTicket {
	list := payload
	var wrapper struct {
		Tickets json.RawMessage `json:"tickets"`
	}
	if json.Unmarshal(list, &wrapper) == nil && wrapper.Tickets != nil {
		list = wrapper.Tickets
	}
	var raws []json.RawMessage
	if json.Unmarshal(list, &raws) != nil {
		return nil
	}
	out := make([]LegacyTicket, 0, len(raws))
	for _, raw := range raws {
		var t struct {
			TicketID   string `json:"ticketId"`
			ID         string `json:"id"`
			AccessURL  string `json:"accessUrl"`
			AccessLink string `json:"accessLink"`
			Link       string `json:"link"`
		}
		if json.Unmarshal(raw, &t) != nil {
			continue
		}
		lt := LegacyTicket{TicketID: t.TicketID, AccessURL: t.AccessURL, Raw: raw}
		if lt.TicketID == "" {
			lt.TicketID = t.ID
		}
		for _, u := range []string{t.AccessLink, t.Link} {
			if lt.AccessURL == "" {
				lt.AccessURL = u
			}
		}
		out = append(out, lt)
	}
	return out
}

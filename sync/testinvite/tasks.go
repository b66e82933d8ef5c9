package testinvite

import (
	"context"
	"net/url"
	"strconv"
)

// Route templates of the task endpoints, the endpoint of errors, metrics and scan statistics.
const (
	EndpointListTasks   = "GET /tasks"
	EndpointFilterTasks = "POST /tasks/filter"
	EndpointGetTask     = "GET /tasks/{taskId}"
)

// TaskQuery filters GET /tasks.
type TaskQuery struct {
	// Title keeps the tasks whose title contains it, ignoring case.
	Title string
	// Mode overrides the client's mode when set.
	Mode Mode
	// PageSize overrides Config.PageSize when above zero.
	PageSize int
	// RawOnly skips decoding the typed fields: records carry only their id and Raw. It is for
	// callers that use the raw bytes alone, such as the poller, and saves most of the decoding
	// work. Field type mismatches are then not counted.
	RawOnly bool
}

// TaskFilter is the body of POST /tasks/filter; set fields are AND-combined.
type TaskFilter struct {
	Folder   []string `json:"folder,omitempty"`
	Labels   []string `json:"labels,omitempty"`
	Favorite *bool    `json:"favorite,omitempty"`
	// Title keeps the tasks whose title contains it, ignoring case.
	Title string `json:"title,omitempty"`

	// Mode overrides the client's mode when set.
	Mode Mode `json:"-"`
	// PageSize overrides Config.PageSize when above zero.
	PageSize int `json:"-"`
	// RawOnly skips decoding the typed fields: records carry only their id and Raw. It is for
	// callers that use the raw bytes alone, such as the poller, and saves most of the decoding
	// work. Field type mismatches are then not counted.
	RawOnly bool `json:"-"`
}

func (c *Client) modeOr(m Mode) Mode {
	if m == "" {
		return c.mode
	}
	return m
}

func offsetQuery(mode Mode, limit, page int) url.Values {
	return url.Values{"mode": {string(mode)}, "limit": {strconv.Itoa(limit)}, "page": {strconv.Itoa(page)}}
}

// fetchPage sends one page request of an offset list or cursor search and decodes it.
func fetchPage[T Record](ctx context.Context, c *Client, cl call) ([]T, Pagination, error) {
	var items []T
	var pg Pagination
	cl.idempotent = true
	cl.decode = func(body []byte) error {
		var err error
		items, pg, err = decodePage[T](cl.endpoint, body, cl.rawOnly)
		return err
	}
	err := c.do(ctx, &cl)
	return items, pg, err
}

// ListTasks returns a Scanner over the organization's tasks (GET /tasks).
func (c *Client) ListTasks(q TaskQuery) *Scanner[Task] {
	mode := c.modeOr(q.Mode)
	return newScanner(c, EndpointListTasks, false, q.PageSize, func(ctx context.Context, limit, page int, _ string) ([]Task, Pagination, error) {
		query := offsetQuery(mode, limit, page)
		if q.Title != "" {
			query.Set("title", q.Title)
		}
		return fetchPage[Task](ctx, c, call{endpoint: EndpointListTasks, method: "GET", path: restV1 + "/tasks", query: query, rawOnly: q.RawOnly})
	})
}

// FilterTasks returns a Scanner over the tasks matching f (POST /tasks/filter).
func (c *Client) FilterTasks(f TaskFilter) *Scanner[Task] {
	mode := c.modeOr(f.Mode)
	return newScanner(c, EndpointFilterTasks, false, f.PageSize, func(ctx context.Context, limit, page int, _ string) ([]Task, Pagination, error) {
		return fetchPage[Task](ctx, c, call{endpoint: EndpointFilterTasks, method: "POST", path: restNoV1 + "/tasks/filter",
			query: offsetQuery(mode, limit, page), body: f, rawOnly: f.RawOnly})
	})
}

// GetTask returns one task. It returns an error matching ErrNotFound when the task does not exist
// and ErrInvalidID for an id that is not letters and digits.
func (c *Client) GetTask(ctx context.Context, taskID string) (Task, error) {
	if err := checkID("task id", taskID); err != nil {
		return Task{}, err
	}
	return getRecord[Task](ctx, c, EndpointGetTask, restV1+"/tasks/"+taskID)
}

func getRecord[T Record](ctx context.Context, c *Client, endpoint, path string) (T, error) {
	var rec T
	err := c.do(ctx, &call{
		endpoint: endpoint, method: "GET", path: path, query: url.Values{"mode": {string(c.mode)}}, idempotent: true,
		decode: func(body []byte) error {
			var err error
			rec, err = decodeRecord[T](endpoint, body)
			return err
		},
	})
	return rec, err
}

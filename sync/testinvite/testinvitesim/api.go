package testinvitesim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const defaultLimit = 10

// maxParam bounds limit and page so that offsets cannot overflow.
const maxParam = 1_000_000_000

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// offsetParams are the parsed query parameters of an offset list.
type offsetParams struct {
	mode     string
	detailed bool
	limit    int // after the page-size cap
	page     int
}

func parseMode(q url.Values) (string, error) {
	switch m := q.Get("mode"); m {
	case "", "basic":
		return "basic", nil
	case "detailed":
		return m, nil
	default:
		return "", fmt.Errorf("mode: %q is invalid: expected basic or detailed", m)
	}
}

func parsePositive(q url.Values, name string, def int) (int, error) {
	v := q.Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 || n > maxParam {
		return 0, fmt.Errorf("%s: %q is invalid: expected an integer from 1 to %d", name, v, maxParam)
	}
	return n, nil
}

func parseLimit(r *http.Request) (int, error) {
	limit, err := parsePositive(r.URL.Query(), "limit", defaultLimit)
	if err != nil {
		return 0, err
	}
	if c := faultsOf(r).maxPageSize; c > 0 && limit > c {
		limit = c
	}
	return limit, nil
}

func parseOffset(r *http.Request) (offsetParams, error) {
	q := r.URL.Query()
	var p offsetParams
	var err error
	if p.mode, err = parseMode(q); err != nil {
		return p, err
	}
	p.detailed = p.mode == "detailed"
	if p.limit, err = parseLimit(r); err != nil {
		return p, err
	}
	if p.page, err = parsePositive(q, "page", 1); err != nil {
		return p, err
	}
	return p, nil
}

// appendOffsetPage appends {"<key>":[...],"pagination":{...}} for the n items of a newest-first
// view; at(i) returns the i-th item rendered.
func appendOffsetPage(b []byte, key string, n int, p offsetParams, render func(b []byte, i int) []byte) []byte {
	b = append(b, '{')
	b = appendKey(b, key)
	b = append(b, '[')
	first := (p.page - 1) * p.limit
	for i := first; i < n && i < first+p.limit; i++ {
		if i > first {
			b = append(b, ',')
		}
		b = render(b, i)
	}
	b = append(b, ']')
	totalPages := (n + p.limit - 1) / p.limit
	b = appendKey(b, "pagination")
	b = append(b, '{')
	b = appendKey(b, "totalItems")
	b = strconv.AppendInt(b, int64(n), 10)
	b = appendKey(b, "totalPages")
	b = strconv.AppendInt(b, int64(totalPages), 10)
	b = appendKey(b, "currentPage")
	b = strconv.AppendInt(b, int64(p.page), 10)
	b = appendKey(b, "limit")
	b = strconv.AppendInt(b, int64(p.limit), 10)
	b = appendKey(b, "next")
	if p.page < totalPages {
		b = appendString(b, pageQuery(p.limit, p.page+1, p.mode))
	} else {
		b = append(b, "null"...)
	}
	b = appendKey(b, "previous")
	if p.page > 1 {
		b = appendString(b, pageQuery(p.limit, p.page-1, p.mode))
	} else {
		b = append(b, "null"...)
	}
	return append(b, "}}"...)
}

// pageQuery returns a next or previous link. Like the documented example
// "?limit=5&page=3&mode=basic", it carries no filter.
func pageQuery(limit, page int, mode string) string {
	return "?limit=" + strconv.Itoa(limit) + "&page=" + strconv.Itoa(page) + "&mode=" + mode
}

func finish(b *[]byte, buf []byte) (int, []byte) {
	out := bytes.Clone(buf)
	*b = buf[:0]
	bufPool.Put(b)
	return http.StatusOK, out
}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

// decodeBody decodes a JSON request body into v, rejecting unknown fields.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 8<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %v", err)
	}
	if dec.More() {
		return errors.New("invalid JSON body: trailing data")
	}
	return nil
}

// lookupTask returns the task of the {taskId} path value; it must run under mu.
func (s *Sim) lookupTask(r *http.Request) (*task, bool) {
	tid, ok := parseID(r.PathValue("taskId"))
	if !ok {
		return nil, false
	}
	t, ok := s.org.taskByID[tid]
	return t, ok
}

func taskNotFound(r *http.Request) (int, []byte) {
	return apiError(http.StatusNotFound, "task "+strconv.Quote(r.PathValue("taskId"))+" not found")
}

// ---- tasks ----

func (s *Sim) listTasks(r *http.Request) (int, []byte) {
	p, err := parseOffset(r)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	title := strings.ToLower(r.URL.Query().Get("title"))
	s.maybeDrift(r, p.page > 1, "task")
	return s.serveTasks(p, func(t *task) bool {
		return title == "" || strings.Contains(strings.ToLower(t.title), title)
	})
}

// taskFilter is the body of POST /tasks/filter.
type taskFilter struct {
	Folder   []string `json:"folder"`
	Labels   []string `json:"labels"`
	Favorite *bool    `json:"favorite"`
	Title    *string  `json:"title"`
}

func (s *Sim) filterTasks(r *http.Request) (int, []byte) {
	p, err := parseOffset(r)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	var f taskFilter
	if err := decodeBody(r, &f); err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	s.maybeDrift(r, p.page > 1, "task")
	title := ""
	if f.Title != nil {
		title = strings.ToLower(*f.Title)
	}
	// Folder matches any listed folder; labels must all be present; conditions are AND-combined.
	return s.serveTasks(p, func(t *task) bool {
		if len(f.Folder) > 0 && !slices.Contains(f.Folder, t.folder) {
			return false
		}
		for _, l := range f.Labels {
			if !slices.Contains(t.labels, l) {
				return false
			}
		}
		if f.Favorite != nil && t.favorite != *f.Favorite {
			return false
		}
		return title == "" || strings.Contains(strings.ToLower(t.title), title)
	})
}

func (s *Sim) serveTasks(p offsetParams, match func(*task) bool) (int, []byte) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var view []*task
	for i := len(s.org.tasks) - 1; i >= 0; i-- {
		if t := s.org.tasks[i]; match(t) {
			view = append(view, t)
		}
	}
	bp := getBuf()
	b := appendOffsetPage(*bp, "tasks", len(view), p, func(b []byte, i int) []byte {
		return renderTask(b, view[i], s.org.id, p.detailed)
	})
	return finish(bp, b)
}

func (s *Sim) getTask(r *http.Request) (int, []byte) {
	mode, err := parseMode(r.URL.Query())
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.lookupTask(r)
	if !ok {
		return taskNotFound(r)
	}
	return http.StatusOK, renderTask(nil, t, s.org.id, mode == "detailed")
}

// ---- candidates ----

func (s *Sim) listCandidates(r *http.Request) (int, []byte) {
	p, err := parseOffset(r)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	q := r.URL.Query()
	fullname, email, code := q.Get("fullname"), q.Get("email"), q.Get("code")
	filtered := fullname != "" || email != "" || code != ""
	s.maybeDrift(r, p.page > 1, "ticket")

	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.lookupTask(r)
	if !ok {
		return taskNotFound(r)
	}
	all := t.candidates
	n := len(all)
	at := func(i int) *candidate { return all[n-1-i] }
	if filtered {
		// Each filter is an exact, case-sensitive match.
		var view []*candidate
		for i := n - 1; i >= 0; i-- {
			c := all[i]
			if (fullname == "" || c.fullname == fullname) && (email == "" || c.email == email) && (code == "" || c.code == code) {
				view = append(view, c)
			}
		}
		n = len(view)
		at = func(i int) *candidate { return view[i] }
	}
	bp := getBuf()
	b := appendOffsetPage(*bp, "candidates", n, p, func(b []byte, i int) []byte {
		return renderCandidate(b, at(i), s.org.id, s.opts.PublicURL, p.detailed)
	})
	return finish(bp, b)
}

func (s *Sim) lookupCandidate(r *http.Request) (*task, *candidate, int, []byte) {
	t, ok := s.lookupTask(r)
	if !ok {
		st, b := taskNotFound(r)
		return nil, nil, st, b
	}
	cid, ok := parseID(r.PathValue("candidateId"))
	c := t.candByID[cid]
	if !ok || c == nil {
		st, b := apiError(http.StatusNotFound, "candidate "+strconv.Quote(r.PathValue("candidateId"))+" not found")
		return nil, nil, st, b
	}
	return t, c, 0, nil
}

func (s *Sim) getCandidate(r *http.Request) (int, []byte) {
	mode, err := parseMode(r.URL.Query())
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	_, c, st, body := s.lookupCandidate(r)
	if c == nil {
		return st, body
	}
	return http.StatusOK, renderCandidate(nil, c, s.org.id, s.opts.PublicURL, mode == "detailed")
}

var candidateLangs = []string{"tr", "en", "es", "fr", "nl", "it", "sr", "sv", "de", "no", "ru", "pt"}

// createCandidateBody is the body of POST /tasks/:taskId/candidates, both kinds in one struct.
type createCandidateBody struct {
	Kind         string            `json:"kind"`
	ID           string            `json:"id"`
	Fullname     string            `json:"fullname"`
	Email        string            `json:"email"`
	Credential1  string            `json:"credential1"`
	Credential2  string            `json:"credential2"`
	Tracking     *trackingBody     `json:"tracking"`
	Group        string            `json:"group"`
	Labels       []string          `json:"labels"`
	Tags         map[string]string `json:"tags"`
	ExternalID   string            `json:"externalId"`
	ExternalData json.RawMessage   `json:"externalData"`
	Lang         string            `json:"lang"`
	ProgramIDs   []string          `json:"programIds"`
	ExtraEmails  []string          `json:"extraEmails"`
	Dates        *struct {
		Before *int64 `json:"before"`
		After  *int64 `json:"after"`
	} `json:"dates"`
	Price *struct {
		Amount   float64 `json:"amount"`
		Currency string  `json:"currency"`
	} `json:"price"`
	CustomizedSteps []struct {
		StepID        string          `json:"stepId"`
		Customization json.RawMessage `json:"customization"`
	} `json:"customizedSteps"`
	InviteByEmail *struct {
		EmailTemplateName string `json:"emailTemplateName"`
		DateToSend        *int64 `json:"dateToSend"`
	} `json:"inviteByEmail"`
	Callback *struct {
		URL      string          `json:"url"`
		Params   json.RawMessage `json:"params"`
		Resource string          `json:"resource"`
	} `json:"callback"`
}

type trackingBody struct {
	UniqID string `json:"uniqId"`
	Scope  string `json:"scope"`
}

func (s *Sim) createCandidate(r *http.Request) (int, []byte) {
	var body createCandidateBody
	if err := decodeBody(r, &body); err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	if msg := validateCreate(&body); msg != "" {
		return apiError(http.StatusBadRequest, msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.lookupTask(r)
	if !ok {
		return taskNotFound(r)
	}
	for _, cs := range body.CustomizedSteps {
		if !t.hasStep(cs.StepID) {
			return apiError(http.StatusBadRequest, "customizedSteps: step "+strconv.Quote(cs.StepID)+" not found in task")
		}
	}
	if body.InviteByEmail != nil && !slices.ContainsFunc(t.emailTemplates, func(e [2]string) bool { return e[0] == body.InviteByEmail.EmailTemplateName }) {
		return apiError(http.StatusBadRequest, "inviteByEmail: email template "+strconv.Quote(body.InviteByEmail.EmailTemplateName)+" not found in task")
	}
	spec := CandidateSpec{
		Fullname: body.Fullname, Email: body.Email, Group: body.Group, Labels: body.Labels,
		Tags: body.Tags, ExternalID: body.ExternalID,
	}
	if body.Tracking != nil {
		spec.UniqID = body.Tracking.UniqID
	}
	if body.Kind == "internal-candidate" {
		i := slices.IndexFunc(s.org.users, func(u orgUser) bool { return u.id == body.ID })
		if i < 0 {
			return apiError(http.StatusNotFound, "user "+strconv.Quote(body.ID)+" not found in organization")
		}
		u := s.org.users[i]
		spec.Fullname, spec.Email, spec.UniqID = u.fullname, u.email, u.username
		spec.internal = true
		spec.userTags = u.tags
	}
	if spec.UniqID != "" {
		if _, dup := t.uniqIDs[spec.UniqID]; dup {
			return apiError(http.StatusBadRequest, "tracking.uniqId "+strconv.Quote(spec.UniqID)+" is already used in this task")
		}
	}
	if body.Dates != nil {
		if body.Dates.After != nil {
			spec.activeAfter = body.Dates.After
		}
		if body.Dates.Before != nil {
			spec.activeBefore = body.Dates.Before
		}
	}
	c := s.addCandidateLocked(t, spec)
	return http.StatusOK, renderCandidate(nil, c, s.org.id, s.opts.PublicURL, true)
}

func validateCreate(b *createCandidateBody) string {
	switch b.Kind {
	case "temporary-candidate":
		if b.ID != "" {
			return "id: only internal-candidate takes a user id"
		}
		if b.Tracking != nil {
			if b.Tracking.UniqID == "" {
				return "tracking.uniqId: missing"
			}
			switch b.Tracking.Scope {
			case "", "task", "group", "labels", "programs":
			default:
				return "tracking.scope: " + strconv.Quote(b.Tracking.Scope) + " is invalid: expected task, group, labels or programs"
			}
		}
	case "internal-candidate":
		if b.ID == "" {
			return "id: missing user id of internal-candidate"
		}
		if b.Fullname != "" || b.Email != "" || b.Credential1 != "" || b.Credential2 != "" || b.Tracking != nil {
			return "internal-candidate takes name, e-mail and credentials from the user"
		}
	case "":
		return "kind: missing, expected temporary-candidate or internal-candidate"
	default:
		return "kind: " + strconv.Quote(b.Kind) + " is invalid: expected temporary-candidate or internal-candidate"
	}
	if b.Lang != "" && !slices.Contains(candidateLangs, b.Lang) {
		return "lang: " + strconv.Quote(b.Lang) + " is invalid"
	}
	if b.Price != nil && !slices.Contains([]string{"USD", "EUR", "TRY"}, b.Price.Currency) {
		return "price.currency: " + strconv.Quote(b.Price.Currency) + " is invalid: expected USD, EUR or TRY"
	}
	if b.Callback != nil {
		if b.Callback.URL == "" {
			return "callback.url: missing"
		}
		if b.Callback.Resource != "basic" && b.Callback.Resource != "detailed" {
			return "callback.resource: " + strconv.Quote(b.Callback.Resource) + " is invalid: expected basic or detailed"
		}
	}
	if b.InviteByEmail != nil && b.InviteByEmail.EmailTemplateName == "" {
		return "inviteByEmail.emailTemplateName: missing"
	}
	return ""
}

func (t *task) hasStep(stepID string) bool {
	return slices.ContainsFunc(t.steps, func(s step) bool { return s.id == stepID })
}

// patchCandidateBody is the body of PATCH /tasks/:taskId/candidates/:id.
type patchCandidateBody struct {
	Fields *struct {
		Fullname *string `json:"fullname"`
		Email    *string `json:"email"`
		Group    *string `json:"group"`
		Labels   *struct {
			Add    []string `json:"add"`
			Remove []string `json:"remove"`
		} `json:"labels"`
		Favorite     *bool  `json:"favorite"`
		Active       *bool  `json:"active"`
		ActiveAfter  *int64 `json:"activeAfter"`
		ActiveBefore *int64 `json:"activeBefore"`
	} `json:"fields"`
	Steps map[string]json.RawMessage `json:"steps"`
}

func (s *Sim) patchCandidate(r *http.Request) (int, []byte) {
	var body patchCandidateBody
	if err := decodeBody(r, &body); err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	if body.Fields == nil {
		return apiError(http.StatusBadRequest, "fields: missing")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, c, st, errBody := s.lookupCandidate(r)
	if c == nil {
		return st, errBody
	}
	for stepID, v := range body.Steps {
		if !t.hasStep(stepID) {
			return apiError(http.StatusBadRequest, "steps: step "+strconv.Quote(stepID)+" not found in task")
		}
		if msg := validateStepPatch(v); msg != "" {
			return apiError(http.StatusBadRequest, "steps."+stepID+": "+msg)
		}
	}
	f := body.Fields
	if f.Fullname != nil {
		c.fullname = *f.Fullname
	}
	if f.Email != nil {
		c.email = *f.Email
	}
	if f.Group != nil {
		c.group = *f.Group
	}
	if f.Labels != nil {
		c.labels = editLabels(c.labels, f.Labels.Add, f.Labels.Remove)
	}
	if f.Favorite != nil {
		c.favorite = *f.Favorite
	}
	if f.Active != nil {
		c.active = *f.Active
	}
	if f.ActiveAfter != nil {
		c.activeAfter = *f.ActiveAfter
	}
	if f.ActiveBefore != nil {
		c.activeBefore = *f.ActiveBefore
	}
	return http.StatusOK, renderCandidate(nil, c, s.org.id, s.opts.PublicURL, true)
}

// validateStepPatch checks one entry of the steps map: every present key is {isDefault: true} or
// {isDefault: false, value: ...}.
func validateStepPatch(raw json.RawMessage) string {
	var step map[string]json.RawMessage
	if err := json.Unmarshal(raw, &step); err != nil {
		return "expected an object"
	}
	for key, v := range step {
		switch key {
		case "active", "dates", "limit":
		default:
			return "unknown key " + strconv.Quote(key)
		}
		var d struct {
			IsDefault *bool           `json:"isDefault"`
			Value     json.RawMessage `json:"value"`
		}
		if err := json.Unmarshal(v, &d); err != nil || d.IsDefault == nil {
			return key + ": expected {isDefault: true} or {isDefault: false, value: ...}"
		}
		if !*d.IsDefault && len(d.Value) == 0 {
			return key + ": value missing with isDefault false"
		}
	}
	return ""
}

// editLabels returns a new slice: labels minus remove, plus the new labels of add.
func editLabels(labels, add, remove []string) []string {
	out := make([]string, 0, len(labels)+len(add))
	for _, l := range labels {
		if !slices.Contains(remove, l) {
			out = append(out, l)
		}
	}
	for _, l := range add {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

func (s *Sim) deleteCandidate(r *http.Request) (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, c, st, body := s.lookupCandidate(r)
	if c == nil {
		return st, body
	}
	if c.touched() {
		return apiError(http.StatusForbidden, "candidate has logged in or has test instances and cannot be deleted")
	}
	t.removeCandidate(c)
	return http.StatusOK, []byte("{}")
}

// ---- test instances ----

func (s *Sim) listSessions(r *http.Request) (int, []byte) {
	p, err := parseOffset(r)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	q := r.URL.Query()
	// The documentation names the owner filter ticketId in one place and candidateId in another.
	owner := q.Get("candidateId")
	if ticket := q.Get("ticketId"); ticket != "" {
		if owner != "" && owner != ticket {
			return apiError(http.StatusBadRequest, "ticketId and candidateId name different candidates")
		}
		owner = ticket
	}
	externalID := q.Get("externalId")
	if owner != "" && externalID != "" {
		return apiError(http.StatusBadRequest, "candidateId (ticketId) and externalId cannot be combined")
	}
	s.maybeDrift(r, p.page > 1, "test_session")

	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.lookupTask(r)
	if !ok {
		return taskNotFound(r)
	}
	all := t.sessions
	n := len(all)
	at := func(i int) *session { return all[n-1-i] }
	if owner != "" || externalID != "" {
		var view []*session
		if owner != "" {
			if cid, ok := parseID(owner); ok {
				if c := t.candByID[cid]; c != nil {
					for i := len(c.sessions) - 1; i >= 0; i-- {
						view = append(view, c.sessions[i])
					}
				}
			}
		} else {
			for i := n - 1; i >= 0; i-- {
				if all[i].cand.externalID == externalID {
					view = append(view, all[i])
				}
			}
		}
		n = len(view)
		at = func(i int) *session { return view[i] }
	}
	bp := getBuf()
	b := appendOffsetPage(*bp, "testInstances", n, p, func(b []byte, i int) []byte {
		return renderSession(b, at(i), s.org.id, p.detailed)
	})
	return finish(bp, b)
}

// searchBody is the body of POST /tasks/:taskId/test-instances/filter, both kinds in one struct.
type searchBody struct {
	Kind        string  `json:"kind"`
	Group       *string `json:"group"`
	Label       *string `json:"label"`
	StepID      *string `json:"stepId"`
	Status      *string `json:"status"`
	From        *int64  `json:"from"`
	To          *int64  `json:"to"`
	DisplayName *string `json:"displayName"`
	Email       *string `json:"email"`
	Credential1 *string `json:"credential1"`
	Code        *string `json:"code"`
	UniqID      *string `json:"uniqId"`
}

func (b *searchBody) matcher() (func(*session) bool, string) {
	eq := func(p *string, v string) bool { return p == nil || *p == v }
	switch b.Kind {
	case "meta":
		if b.DisplayName != nil || b.Email != nil || b.Credential1 != nil || b.Code != nil || b.UniqID != nil {
			return nil, "kind meta takes group, label, stepId, status, from and to"
		}
		var status uint8
		if b.Status != nil {
			var ok bool
			if status, ok = parseStatus(*b.Status); !ok {
				return nil, "status: " + strconv.Quote(*b.Status) + " is invalid: expected STARTED, COMPLETE or RESETUP"
			}
		}
		return func(s *session) bool {
			ms := s.startedAt * 1000
			return eq(b.Group, s.group) &&
				(b.Label == nil || slices.Contains(s.labels, *b.Label)) &&
				eq(b.StepID, s.cand.task.steps[s.step].id) &&
				(b.Status == nil || s.status == status) &&
				(b.From == nil || ms >= *b.From) &&
				(b.To == nil || ms <= *b.To)
		}, ""
	case "info":
		if b.Group != nil || b.Label != nil || b.StepID != nil || b.Status != nil || b.From != nil || b.To != nil {
			return nil, "kind info takes displayName, email, credential1, code and uniqId"
		}
		return func(s *session) bool {
			c := s.cand
			return eq(b.DisplayName, c.fullname) && eq(b.Email, c.email) && eq(b.Credential1, c.uniqID) &&
				eq(b.Code, c.code) && eq(b.UniqID, c.uniqID)
		}, ""
	case "":
		return nil, "kind: missing, expected meta or info"
	}
	return nil, "kind: " + strconv.Quote(b.Kind) + " is invalid: expected meta or info"
}

func (s *Sim) searchSessions(r *http.Request) (int, []byte) {
	q := r.URL.Query()
	mode, err := parseMode(q)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	limit, err := parseLimit(r)
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	var body searchBody
	if err := decodeBody(r, &body); err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	match, msg := body.matcher()
	if msg != "" {
		return apiError(http.StatusBadRequest, msg)
	}
	lastDocID := q.Get("lastDocId")
	s.maybeDrift(r, lastDocID != "", "test_session")

	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.lookupTask(r)
	if !ok {
		return taskNotFound(r)
	}
	all := t.sessions
	// Newest first: walk the creation-order slice backwards from just before the cursor.
	start := len(all) - 1
	if lastDocID != "" {
		cid, ok := parseID(lastDocID)
		var seq uint64
		if ok {
			if cur := t.sessByID[cid]; cur != nil {
				seq = cur.seq
			} else if gone, found := t.deletedSessions[cid]; found {
				seq = gone
			} else {
				ok = false
			}
		}
		if !ok {
			return apiError(http.StatusBadRequest, "lastDocId: "+strconv.Quote(lastDocID)+" is not a test instance of this task")
		}
		start = indexBySeq(all, seq, sessSeq) - 1
	}
	detailed := mode == "detailed"
	bp := getBuf()
	b := append(*bp, `{"testInstances":[`...)
	var last *session
	n := 0
	i := start
	for ; i >= 0 && n < limit; i-- {
		if !match(all[i]) {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		b = renderSession(b, all[i], s.org.id, detailed)
		last = all[i]
		n++
	}
	more := false
	for ; i >= 0 && last != nil; i-- {
		if match(all[i]) {
			more = true
			break
		}
	}
	b = append(b, ']')
	b = appendKey(b, "pagination")
	b = append(b, '{')
	b = appendKey(b, "limit")
	b = strconv.AppendInt(b, int64(limit), 10)
	b = appendKey(b, "lastDocId")
	if more {
		b = append(b, '"')
		b = append(b, last.id[:]...)
		b = append(b, '"')
	} else {
		b = append(b, "null"...)
	}
	b = appendKey(b, "next")
	if more {
		b = appendString(b, "?limit="+strconv.Itoa(limit)+"&lastDocId="+last.id.String()+"&mode="+mode)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, "}}"...)
	return finish(bp, b)
}

func (s *Sim) lookupSession(r *http.Request) (*session, int, []byte) {
	t, ok := s.lookupTask(r)
	if !ok {
		st, b := taskNotFound(r)
		return nil, st, b
	}
	sid, ok := parseID(r.PathValue("testInstanceId"))
	ses := t.sessByID[sid]
	if !ok || ses == nil {
		st, b := apiError(http.StatusNotFound, "test instance "+strconv.Quote(r.PathValue("testInstanceId"))+" not found")
		return nil, st, b
	}
	return ses, 0, nil
}

func (s *Sim) getSession(r *http.Request) (int, []byte) {
	mode, err := parseMode(r.URL.Query())
	if err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ses, st, body := s.lookupSession(r)
	if ses == nil {
		return st, body
	}
	return http.StatusOK, renderSession(nil, ses, s.org.id, mode == "detailed")
}

func (s *Sim) expandSession(r *http.Request) (int, []byte) {
	var body struct {
		Expand []string `json:"expand"`
	}
	if err := decodeBody(r, &body); err != nil {
		return apiError(http.StatusBadRequest, err.Error())
	}
	for _, k := range body.Expand {
		if !expandKeywords[k] {
			return apiError(http.StatusBadRequest, "expand: "+strconv.Quote(k)+" is invalid: expected test, uniqId, creditCost, roomForm or identityPhoto")
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	ses, st, errBody := s.lookupSession(r)
	if ses == nil {
		return st, errBody
	}
	return http.StatusOK, renderExpanded(nil, ses, s.org.id, s.opts.PublicURL, slices.Compact(body.Expand))
}

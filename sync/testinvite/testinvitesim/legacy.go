package testinvitesim

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// LegacyKindSuccess is the kind of a successful legacy response. TestInvite documents only that the
// success kind begins with "zeto". The rest of the word is not in the documentation, so the
// simulator uses this stand-in.
const LegacyKindSuccess = "zeto-success"

// Legacy error kinds of the simulator.
const (
	legacyKindUnauthorized = "unauthorized"
	legacyKindBadRequest   = "bad-request"
	legacyKindNotFound     = "not-found"
)

// LegacyMaxUsers is the most users one create-tickets call accepts.
const LegacyMaxUsers = 200

type requester struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Auth    struct {
		OrganizationID string `json:"organizationId"`
		PrivateKey     string `json:"privateKey"`
	} `json:"auth"`
}

func legacyAnswer(status int, kind string, payload []byte) (int, []byte) {
	b := []byte(`{"kind":`)
	b = appendString(b, kind)
	b = append(b, `,"payload":`...)
	if payload == nil {
		payload = []byte("null")
	}
	b = append(b, payload...)
	return status, append(b, '}')
}

func legacyError(status int, kind, msg string) (int, []byte) {
	return legacyAnswer(status, kind, appendString(nil, msg))
}

// legacyDecode decodes a legacy body into v, which must embed a Requester field, and checks the
// requester. It returns ok false with the response to send when the body or requester is invalid.
func (s *Sim) legacyDecode(r *http.Request, v any, req *requester) (int, []byte, bool) {
	if err := decodeBody(r, v); err != nil {
		st, b := legacyError(http.StatusBadRequest, legacyKindBadRequest, err.Error())
		return st, b, false
	}
	if req.Name == "" {
		st, b := legacyError(http.StatusBadRequest, legacyKindBadRequest, "requester.name: missing")
		return st, b, false
	}
	if !equal(req.Auth.OrganizationID, s.org.id) || !equal(req.Auth.PrivateKey, s.opts.Credentials.PrivateKey) {
		st, b := legacyError(http.StatusUnauthorized, legacyKindUnauthorized, "invalid requester credentials")
		return st, b, false
	}
	return 0, nil, true
}

func (s *Sim) legacyFetchTasks(r *http.Request) (int, []byte) {
	var body struct {
		Requester requester `json:"requester"`
	}
	if st, b, ok := s.legacyDecode(r, &body, &body.Requester); !ok {
		return st, b
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	b := []byte(`{"tasks":[`)
	for i := len(s.org.tasks) - 1; i >= 0; i-- {
		if i < len(s.org.tasks)-1 {
			b = append(b, ',')
		}
		b = renderTask(b, s.org.tasks[i], s.org.id, true)
	}
	return legacyAnswer(http.StatusOK, LegacyKindSuccess, append(b, "]}"...))
}

func (s *Sim) legacyQueryTestResults(r *http.Request) (int, []byte) {
	var body struct {
		Requester requester `json:"requester"`
		TaskID    string    `json:"taskId"`
		Kind      string    `json:"kind"`
		Tickets   []struct {
			TicketID                string `json:"ticketId"`
			StepTestCustomReporting *struct {
				Kind     string `json:"kind"`
				ReportID string `json:"reportId"`
			} `json:"stepTestCustomReporting"`
		} `json:"tickets"`
	}
	if st, b, ok := s.legacyDecode(r, &body, &body.Requester); !ok {
		return st, b
	}
	if body.Kind != "by-ticket" {
		return legacyError(http.StatusBadRequest, legacyKindBadRequest, "kind: "+strconv.Quote(body.Kind)+" is invalid: expected by-ticket")
	}
	for _, tk := range body.Tickets {
		if rep := tk.StepTestCustomReporting; rep != nil && rep.Kind != "default" && rep.Kind != "custom" {
			return legacyError(http.StatusBadRequest, legacyKindBadRequest, "stepTestCustomReporting.kind: expected default or custom")
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, err := s.taskLocked(body.TaskID)
	if err != nil {
		return legacyError(http.StatusNotFound, legacyKindNotFound, "task "+strconv.Quote(body.TaskID)+" not found")
	}
	b := []byte(`{"results":[`)
	for i, tk := range body.Tickets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ticketId":`...)
		b = appendString(b, tk.TicketID)
		cid, ok := parseID(tk.TicketID)
		c := t.candByID[cid]
		b = append(b, `,"found":`...)
		b = appendBool(b, ok && c != nil)
		b = append(b, `,"testInstances":[`...)
		if ok && c != nil {
			for j, ses := range c.sessions {
				if j > 0 {
					b = append(b, ',')
				}
				b = renderSession(b, ses, s.org.id, true)
			}
		}
		b = append(b, "]}"...)
	}
	return legacyAnswer(http.StatusOK, LegacyKindSuccess, append(b, "]}"...))
}

func (s *Sim) legacyCreateTickets(r *http.Request) (int, []byte) {
	var body struct {
		Requester requester `json:"requester"`
		Task      struct {
			TaskID string `json:"taskId"`
		} `json:"task"`
		Users []struct {
			Fullname   string            `json:"fullname"`
			Email      string            `json:"email"`
			Group      string            `json:"group"`
			Labels     []string          `json:"labels"`
			Tags       map[string]string `json:"tags"`
			ExternalID string            `json:"externalId"`
		} `json:"users"`
		Emailing json.RawMessage `json:"emailing"`
		Callback json.RawMessage `json:"callback"`
	}
	if st, b, ok := s.legacyDecode(r, &body, &body.Requester); !ok {
		return st, b
	}
	switch {
	case len(body.Users) == 0:
		return legacyError(http.StatusBadRequest, legacyKindBadRequest, "users: expected 1 to 200 users")
	case len(body.Users) > LegacyMaxUsers:
		return legacyError(http.StatusBadRequest, legacyKindBadRequest, "users: "+strconv.Itoa(len(body.Users))+" users is more than the 200 allowed per call")
	}
	for i, u := range body.Users {
		if u.Fullname == "" {
			return legacyError(http.StatusBadRequest, legacyKindBadRequest, "users["+strconv.Itoa(i)+"].fullname: missing")
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, err := s.taskLocked(body.Task.TaskID)
	if err != nil {
		return legacyError(http.StatusNotFound, legacyKindNotFound, "task "+strconv.Quote(body.Task.TaskID)+" not found")
	}
	b := []byte(`{"tickets":[`)
	for i, u := range body.Users {
		c := s.addCandidateLocked(t, CandidateSpec{
			Fullname: u.Fullname, Email: u.Email, Group: u.Group, Labels: u.Labels, Tags: u.Tags, ExternalID: u.ExternalID,
		})
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"ticketId":"`...)
		b = append(b, c.id[:]...)
		b = append(b, `","fullname":`...)
		b = appendString(b, c.fullname)
		b = append(b, `,"invitationCode":`...)
		b = appendString(b, c.code)
		b = append(b, `,"accessUrl":`...)
		b = appendString(b, directAccessURL(s.opts.PublicURL, c))
		b = append(b, '}')
	}
	return legacyAnswer(http.StatusOK, LegacyKindSuccess, append(b, "]}"...))
}

func (s *Sim) legacyFetchMonitoringAssets(r *http.Request) (int, []byte) {
	var body struct {
		Requester      requester `json:"requester"`
		TaskID         string    `json:"taskId"`
		TestInstanceID string    `json:"testInstanceId"`
	}
	if st, b, ok := s.legacyDecode(r, &body, &body.Requester); !ok {
		return st, b
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if _, _, err := s.sessionLocked(body.TaskID, body.TestInstanceID); err != nil {
		return legacyError(http.StatusNotFound, legacyKindNotFound, "test instance "+strconv.Quote(body.TestInstanceID)+" not found")
	}
	return legacyAnswer(http.StatusOK, LegacyKindSuccess, []byte(`{"assets":[]}`))
}

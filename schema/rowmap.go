package schema

import (
	json "github.com/goccy/go-json"
	"math"
	"sort"
)

// Rows maps an event that passed DecodeEvent to its ClickHouse rows. It decodes the record image
// (After, or Before for a deleted event, whose row gets is_deleted = 1) and checks that the record
// belongs to the event (its id, task and organization match the event's data) and that its
// timestamps and numbers fit their columns. Every error it returns matches ErrInvalidEvent. It is
// safe for concurrent use.
func Rows(ev *Event) (EventRows, error) {
	image := ev.Image()
	if IsNull(image) {
		return EventRows{}, semantic("data", "%s event has no record image", ev.Data.Op)
	}
	ch := changeSource{ev: ev}
	var entity Row
	switch ev.Data.Entity {
	case EntityTask:
		var rec Task
		if err := decodeImage(image, &rec); err != nil {
			return EventRows{}, err
		}
		if err := checkTask(ev, &rec); err != nil {
			return EventRows{}, err
		}
		entity = Row{TableTasks, values(taskColumns, &source[Task]{ev, &rec, image})}
	case EntityTicket:
		var rec Ticket
		if err := decodeImage(image, &rec); err != nil {
			return EventRows{}, err
		}
		if err := checkTicket(ev, &rec); err != nil {
			return EventRows{}, err
		}
		ch.ticketID = ev.Data.EntityID
		entity = Row{TableTickets, values(ticketColumns, &source[Ticket]{ev, &rec, image})}
	case EntityTestSession:
		var rec TestSession
		if err := decodeImage(image, &rec); err != nil {
			return EventRows{}, err
		}
		if err := checkTestSession(ev, &rec); err != nil {
			return EventRows{}, err
		}
		ch.ticketID, ch.stepID = rec.TicketID, rec.StepID
		switch ev.Data.Op {
		case OpDeleted:
			ch.statusBefore = rec.Status
		case OpUpdated:
			var before struct {
				Status string `json:"status"`
			}
			if err := json.Unmarshal(ev.Data.Before, &before); err != nil {
				return EventRows{}, semantic("data.before", "decode: %v", err)
			}
			ch.statusBefore, ch.statusAfter = before.Status, rec.Status
		default:
			ch.statusAfter = rec.Status
		}
		entity = Row{TableTestSessions, values(testSessionColumns, &source[TestSession]{ev, &rec, image})}
	default:
		return EventRows{}, semantic("data.entity", "%q is not task, ticket or test_session", ev.Data.Entity)
	}
	return EventRows{Entity: entity, Change: Row{TableChangeEvents, values(changeColumns, &ch)}}, nil
}

func decodeImage(image json.RawMessage, rec any) error {
	if err := json.Unmarshal(image, rec); err != nil {
		return semantic("data.after", "decode record: %v", err)
	}
	return nil
}

// imageField names a member of the record image in errors.
func imageField(ev *Event, name string) string {
	if ev.Data.Op == OpDeleted {
		return "data.before." + name
	}
	return "data.after." + name
}

func checkOwner(ev *Event, idName, id, taskID, orgID string) error {
	if id != ev.Data.EntityID {
		return semantic(imageField(ev, idName), "%q is not the event's entity_id %q", id, ev.Data.EntityID)
	}
	if taskID != "" && taskID != ev.Data.TaskID {
		return semantic(imageField(ev, "taskId"), "%q is not the event's task_id %q", taskID, ev.Data.TaskID)
	}
	if orgID != "" && orgID != ev.Data.OrganizationID {
		return semantic(imageField(ev, "organizationId"), "%q is not the event's organization_id %q", orgID, ev.Data.OrganizationID)
	}
	return nil
}

// checkSeconds reports an error when a Unix time does not fit ClickHouse's DateTime, which holds
// 0 to 2^32-1 seconds and would otherwise wrap around silently.
func checkSeconds(ev *Event, name string, sec *int64) error {
	if sec != nil && (*sec < 0 || *sec > math.MaxUint32) {
		return semantic(imageField(ev, name), "%d is out of range: expected Unix seconds from 0 to %d", *sec, uint64(math.MaxUint32))
	}
	return nil
}

func checkTask(ev *Event, t *Task) error {
	if err := checkOwner(ev, "taskId", t.TaskID, "", t.OrganizationID); err != nil {
		return err
	}
	checks := []struct {
		name string
		sec  *int64
	}{{"createdAt", &t.CreatedAt}, {"activeAfter", t.ActiveAfter}, {"activeBefore", t.ActiveBefore}}
	for i := range t.Steps {
		checks = append(checks,
			struct {
				name string
				sec  *int64
			}{"steps.activeAfter", t.Steps[i].ActiveAfter},
			struct {
				name string
				sec  *int64
			}{"steps.activeBefore", t.Steps[i].ActiveBefore})
	}
	for _, c := range checks {
		if err := checkSeconds(ev, c.name, c.sec); err != nil {
			return err
		}
	}
	return nil
}

func checkTicket(ev *Event, t *Ticket) error {
	if err := checkOwner(ev, "candidateId", t.CandidateID, t.TaskID, t.OrganizationID); err != nil {
		return err
	}
	if err := checkSeconds(ev, "activeAfter", t.ActiveAfter); err != nil {
		return err
	}
	if err := checkSeconds(ev, "activeBefore", t.ActiveBefore); err != nil {
		return err
	}
	if t.Rating != nil && (*t.Rating < 1 || *t.Rating > 5) {
		return semantic(imageField(ev, "rating"), "%d is out of range: expected 1 to 5 or null", *t.Rating)
	}
	return nil
}

func checkTestSession(ev *Event, s *TestSession) error {
	if err := checkOwner(ev, "testInstanceId", s.TestInstanceID, s.TaskID, s.OrganizationID); err != nil {
		return err
	}
	if s.Result == nil {
		return nil
	}
	if err := checkSeconds(ev, "result.completedAt", &s.Result.CompletedAt); err != nil {
		return err
	}
	if n := s.Result.Scoreboard.NoOfQuestions; n != nil && (*n < 0 || *n > math.MaxUint32 || *n != math.Trunc(*n)) {
		return semantic(imageField(ev, "result.scoreboard.noOfQuestions"), "%v is invalid: expected a whole number from 0 to %d", *n, uint64(math.MaxUint32))
	}
	return nil
}

// Sorted returns the tag keys in ascending order and the values in the same order, as the parallel
// tag_keys and tag_values columns store them. Both slices are empty, not nil, for an empty map.
func (t Tags) Sorted() (keys, values []string) {
	keys = make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = t[k]
	}
	return keys, values
}

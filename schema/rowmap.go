package schema

import (
	"sort"
	"time"
)

// Rows maps an event that passed DecodeEvent to its ClickHouse rows. It decodes the record image
// (After, or Before for a deleted event, whose row gets is_deleted = 1) and checks it, and the
// other image of an updated event, against the record definition of EventSchemaV1 for the entity:
// required members, the JSON type of each declared member, the id pattern, and the ranges of
// timestamps (0 to 2^32-1 Unix seconds), ratings (1 to 5), attempt limits (at least -1) and
// question counts (0 to 2^32-1). It also checks that the record belongs to the event: its id, task
// and organization match the event's data. Every error it returns matches ErrInvalidEvent. It is
// safe for concurrent use.
//
// Rows is stricter than the JSON Schema in three cases. A member the schema declares may appear
// only once in an object. An attempt limit must fit an Int64 column and a score a Float64 column.
func Rows(ev *Event) (EventRows, error) {
	before, after := imageText(ev.Data.Before), imageText(ev.Data.After)
	var d Decoded
	if err := decodeRows(ev, before, after, &d); err != nil {
		return EventRows{}, invalid(err)
	}
	var entity Row
	switch {
	case d.task != nil:
		entity = Row{TableTasks, values(taskColumns, d.task)}
	case d.ticket != nil:
		entity = Row{TableTickets, values(ticketColumns, d.ticket)}
	case d.testSession != nil:
		entity = Row{TableTestSessions, values(testSessionColumns, d.testSession)}
	}
	return EventRows{Entity: entity, Change: Row{TableChangeEvents, values(changeColumns, &d.change)}}, nil
}

// imageText returns raw JSON as text: "" for a missing or null value.
func imageText(raw []byte) string {
	if IsNull(raw) {
		return ""
	}
	return string(raw)
}

// Decoded is an event that passed every check of DecodeRows, held as the two rows it produces. It
// keeps no reference to the bytes it was decoded from. Add it to blocks with Block.AddDecoded. It
// is immutable and safe for concurrent reads.
type Decoded struct {
	// Exactly one of the entity rows is set.
	task        *taskRow
	ticket      *ticketRow
	testSession *testSessionRow
	change      changeRow
}

// DecodeRows decodes one JSON-encoded event and maps it to its rows in one pass: it runs the
// checks of DecodeEvent and of Rows, with the same errors, and needs no Event. It copies b once;
// every string of the rows, the raw JSON columns included, shares that copy. It is safe for
// concurrent use.
func DecodeRows(b []byte) (*Decoded, error) {
	var ev Event
	s := string(b)
	// The images are decoded below, which checks their grammar, so the envelope only finds them.
	before, after, err := decodeEnvelope(s, &ev, false)
	if err != nil {
		return nil, invalid(err)
	}
	if err := checkEvent(&ev, before != "", after != ""); err != nil {
		return nil, err
	}
	d := &Decoded{}
	if err := decodeRows(&ev, before, after, d); err != nil {
		return nil, invalid(err)
	}
	return d, nil
}

// EventID returns the event's id.
func (d *Decoded) EventID() string { return d.change.eventID }

// Entity returns the event's entity.
func (d *Decoded) Entity() Entity { return Entity(d.change.entity) }

// Images returns the text of the event's before and after images, "" for null.
func (d *Decoded) Images() (before, after string) { return d.change.before, d.change.after }

// CheckSubject reports an error matching ErrInvalidEvent when subject, the NATS subject a message
// arrived on, is not the one the event's data implies (see Subject).
func (d *Decoded) CheckSubject(subject string) error {
	c := &d.change
	return checkSubject(subject, c.organizationID, c.taskID, Entity(c.entity), Op(c.op))
}

// decodeRows decodes the images of ev, whose texts are before and after ("" for null), and fills
// d's rows.
func decodeRows(ev *Event, before, after string, d *Decoded) error {
	data := &ev.Data
	image, where, other, otherWhere := after, whereAfter, before, whereBefore
	if data.Op == OpDeleted {
		image, where, other, otherWhere = before, whereBefore, after, whereAfter
	}
	if image == "" {
		return semantic("data", "%s event has no record image", data.Op)
	}
	h := rowHead{
		organizationID: data.OrganizationID,
		taskID:         data.TaskID,
		entityID:       data.EntityID,
		version:        data.Version,
		revision:       data.Revision,
		isDeleted:      flag(data.Op == OpDeleted),
		op:             string(data.Op),
		eventID:        ev.ID,
		contentHash:    data.ContentHash,
		observedAt:     data.ObservedAt.UTC().Truncate(time.Second),
	}
	d.change = changeRow{
		organizationID: data.OrganizationID,
		taskID:         data.TaskID,
		entity:         string(data.Entity),
		entityID:       data.EntityID,
		eventID:        ev.ID,
		op:             string(data.Op),
		revision:       data.Revision,
		version:        data.Version,
		observedAt:     h.observedAt,
		eventTime:      ev.Time.UTC().Truncate(time.Second),
		changedFields:  data.ChangedFields,
		before:         before,
		after:          after,
		contentHash:    data.ContentHash,
	}
	if d.change.changedFields == nil {
		d.change.changedFields = []string{}
	}

	// NB: the JSON Schema applies the record definition to both images, so the other image (the
	// before image of an update) is checked as fully as the row's image. Only its status is kept.
	switch data.Entity {
	case EntityTask:
		r := &taskRow{head: h, raw: image}
		if err := decodeTask(image, where, r); err != nil {
			return err
		}
		if err := checkOwner(ev, where, "taskId", r.recordID, "", r.organizationIDField); err != nil {
			return err
		}
		if other != "" {
			if err := decodeTask(other, otherWhere, &taskRow{}); err != nil {
				return err
			}
		}
		d.task = r
	case EntityTicket:
		r := &ticketRow{head: h, raw: image}
		if err := decodeTicket(image, where, r); err != nil {
			return err
		}
		if err := checkOwner(ev, where, "candidateId", r.recordID, r.taskIDField, r.organizationIDField); err != nil {
			return err
		}
		if other != "" {
			if err := decodeTicket(other, otherWhere, &ticketRow{}); err != nil {
				return err
			}
		}
		d.ticket = r
		d.change.ticketID = data.EntityID
	case EntityTestSession:
		r := &testSessionRow{head: h, raw: image}
		if err := decodeTestSession(image, where, r); err != nil {
			return err
		}
		if err := checkOwner(ev, where, "testInstanceId", r.recordID, r.taskIDField, r.organizationIDField); err != nil {
			return err
		}
		var otherRow testSessionRow
		if other != "" {
			if err := decodeTestSession(other, otherWhere, &otherRow); err != nil {
				return err
			}
		}
		d.testSession = r
		d.change.ticketID, d.change.stepID = r.ticketID, r.stepID
		switch data.Op {
		case OpDeleted:
			d.change.statusBefore = r.status
		case OpUpdated:
			d.change.statusBefore, d.change.statusAfter = otherRow.status, r.status
		default:
			d.change.statusAfter = r.status
		}
	default:
		return semantic("data.entity", "%q is not task, ticket or test_session", data.Entity)
	}
	return nil
}

// checkOwner checks that a record belongs to the event: its id is the entity id, and its task and
// organization, where the record names them, are the event's.
func checkOwner(ev *Event, where, idName, id, taskID, orgID string) error {
	if id != ev.Data.EntityID {
		return semantic(join(where, idName), "%q is not the event's entity_id %q", id, ev.Data.EntityID)
	}
	if taskID != "" && taskID != ev.Data.TaskID {
		return semantic(join(where, "taskId"), "%q is not the event's task_id %q", taskID, ev.Data.TaskID)
	}
	if orgID != "" && orgID != ev.Data.OrganizationID {
		return semantic(join(where, "organizationId"), "%q is not the event's organization_id %q", orgID, ev.Data.OrganizationID)
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

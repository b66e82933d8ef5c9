package schema

import (
	"bytes"
	"fmt"
	json "github.com/goccy/go-json"
	"strings"
)

// DecodeEvent decodes one JSON-encoded event and checks what JSON Schema cannot express. The type must
// match the entity and op, the subject must be the entity id, and the source must name the
// organization and task. A task event's task id must be its entity id. The event id, content hash and
// TestInvite ids must be well formed, and before and after must be present or null as the op requires.
// DecodeEvent neither validates the records against the schema (ValidateEvent does) nor decodes them
// (Rows does). Every error it returns matches ErrInvalidEvent: a *SchemaError when b is not a JSON
// event, a *SemanticError otherwise. It is safe for concurrent use.
func DecodeEvent(b []byte) (Event, error) {
	var ev Event
	if err := json.Unmarshal(b, &ev); err != nil {
		return Event{}, &SchemaError{Reason: "decode: " + err.Error()}
	}
	if err := CheckEvent(&ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// CheckEvent runs the semantic checks of DecodeEvent on an event that is already decoded.
func CheckEvent(ev *Event) error {
	d := &ev.Data
	switch {
	case ev.SpecVersion != SpecVersion:
		return semantic("specversion", "%q is not %q", ev.SpecVersion, SpecVersion)
	case ev.DataContentType != DataContentType:
		return semantic("datacontenttype", "%q is not %q", ev.DataContentType, DataContentType)
	case ev.DataSchema != DataSchemaV1:
		return semantic("dataschema", "%q is not %q", ev.DataSchema, DataSchemaV1)
	case !validHex(ev.ID, 32):
		return semantic("id", "%q is not 32 lowercase hex digits", ev.ID)
	case ev.Time.IsZero():
		return semantic("time", "missing")
	case !d.Entity.Valid():
		return semantic("data.entity", "%q is not task, ticket or test_session", d.Entity)
	case !d.Op.Valid():
		return semantic("data.op", "%q is not snapshot, created, updated or deleted", d.Op)
	case ev.Type != EventType(d.Entity, d.Op):
		return semantic("type", "%q does not match entity %s and op %s (expected %q)", ev.Type, d.Entity, d.Op, EventType(d.Entity, d.Op))
	case !ValidID(d.OrganizationID):
		return semantic("data.organization_id", "%q is not 1 to 128 ASCII letters and digits", d.OrganizationID)
	case !ValidID(d.TaskID):
		return semantic("data.task_id", "%q is not 1 to 128 ASCII letters and digits", d.TaskID)
	case !ValidID(d.EntityID):
		return semantic("data.entity_id", "%q is not 1 to 128 ASCII letters and digits", d.EntityID)
	case d.Entity == EntityTask && d.TaskID != d.EntityID:
		return semantic("data.entity_id", "task event for %q carries task_id %q", d.EntityID, d.TaskID)
	case ev.Subject != d.EntityID:
		return semantic("subject", "%q is not the entity id %q", ev.Subject, d.EntityID)
	case ev.Source != Source(d.OrganizationID, d.TaskID):
		return semantic("source", "%q is not %q", ev.Source, Source(d.OrganizationID, d.TaskID))
	case d.Revision == 0:
		return semantic("data.revision", "0 is invalid: revisions start at 1")
	case d.Version == 0:
		return semantic("data.version", "0 is invalid: expected Unix microseconds")
	case d.ObservedAt.IsZero():
		return semantic("data.observed_at", "missing")
	case !validHex(d.ContentHash, 16):
		return semantic("data.content_hash", "%q is not 16 lowercase hex digits", d.ContentHash)
	}

	hasBefore, hasAfter := !IsNull(d.Before), !IsNull(d.After)
	switch d.Op {
	case OpSnapshot, OpCreated:
		if hasBefore {
			return semantic("data.before", "must be null for a %s event", d.Op)
		}
		if !hasAfter {
			return semantic("data.after", "missing for a %s event", d.Op)
		}
	case OpUpdated:
		if !hasBefore || !hasAfter {
			return semantic("data", "an updated event needs both before and after")
		}
	case OpDeleted:
		if !hasBefore {
			return semantic("data.before", "missing for a deleted event")
		}
		if hasAfter {
			return semantic("data.after", "must be null for a deleted event")
		}
	}
	return nil
}

// CheckSubject reports an error matching ErrInvalidEvent when subject, the NATS subject a message
// arrived on, is not the one the event's data implies (see Subject).
func CheckSubject(ev *Event, subject string) error {
	d := &ev.Data
	if want := Subject(d.OrganizationID, d.TaskID, d.Entity, d.Op); subject != want {
		return semantic("subject", "message subject %q does not match the event (expected %q)", subject, want)
	}
	return nil
}

// Image returns the record image that describes the entity's state after the event: After, or
// Before for a deleted event.
func (ev *Event) Image() json.RawMessage {
	if ev.Data.Op == OpDeleted {
		return ev.Data.Before
	}
	return ev.Data.After
}

// IsNull reports whether a raw JSON value is missing or the literal null.
func IsNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func semantic(field, format string, args ...any) *SemanticError {
	return &SemanticError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

func validHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !('0' <= r && r <= '9' || 'a' <= r && r <= 'f')
	}) < 0
}

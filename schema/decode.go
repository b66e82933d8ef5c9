package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// DecodeEvent decodes one JSON-encoded event and checks it natively, without a generic JSON Schema
// validator, against the envelope and data definitions of EventSchemaV1:
//
//   - every required member is present, and every declared member has its JSON type;
//   - the ids, the event id, the content hash and the source match their patterns;
//   - specversion, datacontenttype and dataschema equal their constants, and type, entity and op
//     are values of their enumerations;
//   - time and observed_at are RFC 3339 date-times, and revision and version are integers of at
//     least 1;
//   - changed_fields holds distinct strings, and before and after are objects or null.
//
// Members the schema does not declare are allowed. DecodeEvent then runs CheckEvent. Rows checks
// and decodes the record images, DecodeEvent does not. Every error it returns matches
// ErrInvalidEvent: a *SchemaError when b is not JSON or not a JSON object, and a *SemanticError
// naming the offending member otherwise. It is safe for concurrent use.
//
// DecodeEvent is stricter than the JSON Schema in cases that no producer of valid events creates
// and that the typed Event cannot hold. A member the schema declares may appear only once in an
// object. Revision and version must be below 2^64. Date-times must fit time.Time, so a leap
// second or a sign inside a numeric field is rejected.
func DecodeEvent(b []byte) (Event, error) {
	var ev Event
	before, after, err := decodeEnvelope(string(b), &ev, true)
	if err != nil {
		return Event{}, invalid(err)
	}
	ev.Data.Before, ev.Data.After = rawImage(before), rawImage(after)
	if err := CheckEvent(&ev); err != nil {
		return Event{}, err
	}
	return ev, nil
}

// rawImage returns the text of an image as raw JSON: null for "".
func rawImage(s string) json.RawMessage {
	if s == "" {
		return json.RawMessage("null")
	}
	return json.RawMessage(s)
}

// invalid turns a JSON grammar violation into a *SchemaError and returns other errors as they are.
func invalid(err error) error {
	var se *syntaxError
	if errors.As(err, &se) {
		return &SchemaError{Reason: "invalid JSON: " + se.Error()}
	}
	return err
}

var envelopeMembers = []string{"specversion", "id", "source", "type", "subject", "time", "datacontenttype",
	"dataschema", "data"}

// eventTypes are the values of the envelope's type, by entity and op.
var eventTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range Entities {
		for _, op := range []Op{OpSnapshot, OpCreated, OpUpdated, OpDeleted} {
			m[EventType(e, op)] = true
		}
	}
	return m
}()

// decodeEnvelope decodes the event document s into ev, leaving ev.Data.Before and ev.Data.After
// unset, and returns the text of the before and after images ("" for null). It applies the JSON
// Schema's envelope and data checks described at DecodeEvent. With checkImages false it only finds
// where the images end, and the caller must decode both images, which checks their grammar.
func decodeEnvelope(s string, ev *Event, checkImages bool) (before, after string, err error) {
	sc := &scanner{s: s}
	if k := sc.peek(); k != kindObject {
		// Not JSON at all is reported as such, before the JSON type.
		if _, err := sc.skip(0); err != nil {
			return "", "", err
		}
		if err := sc.end(); err != nil {
			return "", "", err
		}
		return "", "", &SchemaError{Reason: "at /: expected object, got " + k.String()}
	}
	sc.objectStart()
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return "", "", err
		}
		if !more {
			break
		}
		bit := uint32(0)
		switch name {
		case "specversion":
			bit = 1 << 0
			ev.SpecVersion, err = readConst(sc, name, SpecVersion)
		case "id":
			bit = 1 << 1
			if ev.ID, err = readString(sc, "", name); err == nil && !validHex(ev.ID, 32) {
				err = semantic(name, "%q is not 32 lowercase hex digits", ev.ID)
			}
		case "source":
			bit = 1 << 2
			if ev.Source, err = readString(sc, "", name); err == nil && !validSource(ev.Source) {
				err = semantic(name, "%q is invalid: expected /testinvite/organizations/<id>/tasks/<id>", ev.Source)
			}
		case "type":
			bit = 1 << 3
			if ev.Type, err = readString(sc, "", name); err == nil && !eventTypes[ev.Type] {
				err = semantic(name, "%q is invalid: expected com.testinvite.<entity>.<op>", ev.Type)
			}
		case "subject":
			bit = 1 << 4
			ev.Subject, err = readID(sc, "", name)
		case "time":
			bit = 1 << 5
			err = readDateTime(sc, "", name, &ev.Time)
		case "datacontenttype":
			bit = 1 << 6
			ev.DataContentType, err = readConst(sc, name, DataContentType)
		case "dataschema":
			bit = 1 << 7
			ev.DataSchema, err = readConst(sc, name, DataSchemaV1)
		case "data":
			bit = 1 << 8
			before, after, err = decodeData(sc, &ev.Data, checkImages)
		default:
			_, err = sc.skip(1)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, "", name)
		}
		if err != nil {
			return "", "", err
		}
	}
	if err := sc.end(); err != nil {
		return "", "", err
	}
	if err := requireAll(seen, 1<<len(envelopeMembers)-1, "", envelopeMembers); err != nil {
		return "", "", err
	}
	return before, after, nil
}

var dataMembers = []string{"organization_id", "task_id", "entity", "entity_id", "op", "revision", "version",
	"observed_at", "content_hash", "changed_fields", "before", "after"}

// decodeData decodes the data member into d, returning the texts of the images.
func decodeData(sc *scanner, d *Data, checkImages bool) (before, after string, err error) {
	const where = "data"
	if err := startObject(sc, "", where); err != nil {
		return "", "", err
	}
	var seen uint32
	for first := true; ; {
		name, more, err := sc.member(&first)
		if err != nil {
			return "", "", err
		}
		if !more {
			break
		}
		bit := uint32(0)
		switch name {
		case "organization_id":
			bit = 1 << 0
			d.OrganizationID, err = readID(sc, where, name)
		case "task_id":
			bit = 1 << 1
			d.TaskID, err = readID(sc, where, name)
		case "entity":
			bit = 1 << 2
			var s string
			if s, err = readString(sc, where, name); err == nil {
				if d.Entity = Entity(s); !d.Entity.Valid() {
					err = semantic(join(where, name), "%q is not task, ticket or test_session", s)
				}
			}
		case "entity_id":
			bit = 1 << 3
			d.EntityID, err = readID(sc, where, name)
		case "op":
			bit = 1 << 4
			var s string
			if s, err = readString(sc, where, name); err == nil {
				if d.Op = Op(s); !d.Op.Valid() {
					err = semantic(join(where, name), "%q is not snapshot, created, updated or deleted", s)
				}
			}
		case "revision":
			bit = 1 << 5
			d.Revision, err = readPositive(sc, where, name)
		case "version":
			bit = 1 << 6
			d.Version, err = readPositive(sc, where, name)
		case "observed_at":
			bit = 1 << 7
			err = readDateTime(sc, where, name, &d.ObservedAt)
		case "content_hash":
			bit = 1 << 8
			if d.ContentHash, err = readString(sc, where, name); err == nil && !validHex(d.ContentHash, 16) {
				err = semantic(join(where, name), "%q is not 16 lowercase hex digits", d.ContentHash)
			}
		case "changed_fields":
			bit = 1 << 9
			d.ChangedFields, err = readChangedFields(sc, where, name)
		case "before":
			bit = 1 << 10
			before, err = readImage(sc, where, name, checkImages)
		case "after":
			bit = 1 << 11
			after, err = readImage(sc, where, name, checkImages)
		default:
			_, err = sc.skip(2)
		}
		if err == nil && bit != 0 {
			err = mark(&seen, bit, where, name)
		}
		if err != nil {
			return "", "", err
		}
	}
	if err := requireAll(seen, 1<<len(dataMembers)-1, where, dataMembers); err != nil {
		return "", "", err
	}
	return before, after, nil
}

// readConst reads a string that must equal want.
func readConst(sc *scanner, name, want string) (string, error) {
	s, err := readString(sc, "", name)
	if err == nil && s != want {
		err = semantic(name, "%q is not %q", s, want)
	}
	return s, err
}

// readDateTime reads an RFC 3339 date-time into *dst.
func readDateTime(sc *scanner, where, name string, dst *time.Time) error {
	s, err := readString(sc, where, name)
	if err != nil {
		return err
	}
	t, ok := dateTime(s)
	if !ok {
		return semantic(join(where, name), "%q is not an RFC 3339 date-time", s)
	}
	*dst = t
	return nil
}

// readImage reads a record image, an object or null, and returns its text ("" for null). With check
// false it leaves the grammar inside the object to the caller.
func readImage(sc *scanner, where, name string, check bool) (string, error) {
	switch k := sc.peek(); k {
	case kindNull:
		return "", sc.literal("null")
	case kindObject:
		if !check {
			return sc.skipContainer()
		}
		s, _, err := sc.span(2)
		return s, err
	default:
		return "", sc.mismatch(k, where, name, "object or null")
	}
}

// readChangedFields reads null or an array of distinct strings.
func readChangedFields(sc *scanner, where, name string) ([]string, error) {
	if sc.peek() == kindNull {
		return nil, sc.literal("null")
	}
	fields, err := readStrings(sc, where, name, []string{})
	if err != nil {
		return nil, err
	}
	// Publishers sort the list, so one comparison per element proves it distinct; any other order
	// is checked pair by pair.
	sorted := true
	for i := 1; i < len(fields); i++ {
		if fields[i-1] >= fields[i] {
			sorted = false
			break
		}
	}
	if !sorted {
		seen := make(map[string]bool, len(fields))
		for _, f := range fields {
			if seen[f] {
				return nil, semantic(join(where, name), "%q appears twice: expected distinct field names", f)
			}
			seen[f] = true
		}
	}
	return fields, nil
}

// validSource reports whether s is /testinvite/organizations/<id>/tasks/<id>.
func validSource(s string) bool {
	const orgs, tasks = "/testinvite/organizations/", "/tasks/"
	rest, ok := strings.CutPrefix(s, orgs)
	if !ok {
		return false
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		return false
	}
	task, ok := strings.CutPrefix(rest[i:], tasks)
	return ok && ValidID(rest[:i]) && ValidID(task)
}

// CheckEvent runs the semantic checks of DecodeEvent on an event that is already decoded: the
// constants, the event id, ids and content hash, and what JSON Schema cannot express. The type must
// match the entity and op, the subject must be the entity id, and the source must name the
// organization and task. A task event's task id must be its entity id, and before and after must be
// present or null as the op requires.
func CheckEvent(ev *Event) error {
	return checkEvent(ev, !IsNull(ev.Data.Before), !IsNull(ev.Data.After))
}

func checkEvent(ev *Event, hasBefore, hasAfter bool) error {
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
	case ev.Type != TypePrefix+string(d.Entity)+"."+string(d.Op):
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
	case !isSource(ev.Source, d.OrganizationID, d.TaskID):
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

// isSource reports whether s equals Source(org, task), without building it.
func isSource(s, org, task string) bool {
	const orgs, tasks = "/testinvite/organizations/", "/tasks/"
	return len(s) == len(orgs)+len(org)+len(tasks)+len(task) &&
		s[:len(orgs)] == orgs && s[len(orgs):len(orgs)+len(org)] == org &&
		s[len(orgs)+len(org):len(s)-len(task)] == tasks && s[len(s)-len(task):] == task
}

// CheckSubject reports an error matching ErrInvalidEvent when subject, the NATS subject a message
// arrived on, is not the one the event's data implies (see Subject).
func CheckSubject(ev *Event, subject string) error {
	return checkSubject(subject, ev.Data.OrganizationID, ev.Data.TaskID, ev.Data.Entity, ev.Data.Op)
}

func checkSubject(subject, org, task string, entity Entity, op Op) error {
	if !isSubject(subject, org, task, string(entity), string(op)) {
		return semantic("subject", "message subject %q does not match the event (expected %q)", subject, Subject(org, task, entity, op))
	}
	return nil
}

// isSubject reports whether s equals Subject(org, task, entity, op), without building it.
func isSubject(s string, tokens ...string) bool {
	rest, ok := strings.CutPrefix(s, SubjectRoot)
	for _, t := range tokens {
		if !ok || len(rest) < 1+len(t) || rest[0] != '.' || rest[1:1+len(t)] != t {
			return false
		}
		rest = rest[1+len(t):]
	}
	return ok && rest == ""
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
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

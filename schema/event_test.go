package schema_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/schema/schematest"
)

const (
	org  = "org1"
	task = "task1"
)

var observed = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// allKinds returns one valid event for every entity and op.
func allKinds() map[string]schema.Event {
	out := map[string]schema.Event{}
	for _, e := range schema.Entities {
		var rec schematest.Record
		var id string
		switch e {
		case schema.EntityTask:
			id, rec = task, schematest.Task(org, task)
		case schema.EntityTicket:
			id, rec = "tk1", schematest.Ticket(org, task, "tk1")
		case schema.EntityTestSession:
			id, rec = "ts1", schematest.TestSession(org, task, "ts1", "tk1", "s1", "STARTED", 0)
		}
		changed := rec.Clone()
		changed["folder"] = "Archive"
		for _, op := range []schema.Op{schema.OpSnapshot, schema.OpCreated, schema.OpUpdated, schema.OpDeleted} {
			c := schematest.Change{Org: org, Task: task, Entity: e, EntityID: id, Op: op, Revision: 1, ObservedAt: observed}
			switch op {
			case schema.OpSnapshot, schema.OpCreated:
				c.After = rec
			case schema.OpUpdated:
				c.Before, c.After, c.Revision = rec, changed, 2
			case schema.OpDeleted:
				c.Before, c.Revision = changed, 3
			}
			out[string(e)+"."+string(op)] = schematest.NewEvent(c)
		}
	}
	return out
}

func TestValidEventsPass(t *testing.T) {
	for name, ev := range allKinds() {
		t.Run(name, func(t *testing.T) {
			b := schematest.Encode(ev)
			if err := schema.ValidateEvent(b); err != nil {
				t.Fatalf("ValidateEvent: %v", err)
			}
			got, err := schema.DecodeEvent(b)
			if err != nil {
				t.Fatalf("DecodeEvent: %v", err)
			}
			if got.ID != ev.ID || got.Data.Version != ev.Data.Version {
				t.Fatalf("DecodeEvent returned id %s version %d, want %s %d", got.ID, got.Data.Version, ev.ID, ev.Data.Version)
			}
			if err := schema.CheckSubject(&got, schematest.Subject(ev)); err != nil {
				t.Fatalf("CheckSubject: %v", err)
			}
			rows, err := schema.Rows(&got)
			if err != nil {
				t.Fatalf("Rows: %v", err)
			}
			if want := schema.EntityTable(ev.Data.Entity); rows.Entity.Table != want {
				t.Errorf("entity row table = %s, want %s", rows.Entity.Table, want)
			}
			if len(rows.Entity.Values) != len(schema.Columns(rows.Entity.Table)) {
				t.Errorf("entity row has %d values for %d columns", len(rows.Entity.Values), len(schema.Columns(rows.Entity.Table)))
			}
			if len(rows.Change.Values) != len(schema.Columns(schema.TableChangeEvents)) {
				t.Errorf("change row has %d values for %d columns", len(rows.Change.Values), len(schema.Columns(schema.TableChangeEvents)))
			}
		})
	}
}

// mutate decodes an encoded event into a generic map, applies f and encodes it again.
func mutate(t testing.TB, ev schema.Event, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(schematest.Encode(ev), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func data(m map[string]any) map[string]any { return m["data"].(map[string]any) }

func TestInvalidEventsRejected(t *testing.T) {
	kinds := allKinds()
	created := kinds["ticket.created"]
	updated := kinds["test_session.updated"]
	deleted := kinds["task.deleted"]
	cases := []struct {
		name string
		body []byte
		// schemaRejects and decodeRejects name the checks that must catch the case: JSON Schema,
		// DecodeEvent plus Rows, or both.
		schemaRejects, decodeRejects bool
		reason                       string
	}{
		{"not JSON", []byte("not json"), true, true, "invalid JSON"},
		{"JSON array", []byte("[1]"), true, true, ""},
		{"missing data", mutate(t, created, func(m map[string]any) { delete(m, "data") }), true, true, ""},
		{"wrong specversion", mutate(t, created, func(m map[string]any) { m["specversion"] = "0.3" }), true, true, "specversion"},
		{"short event id", mutate(t, created, func(m map[string]any) { m["id"] = "abc" }), true, true, "id"},
		{"type mismatch", mutate(t, created, func(m map[string]any) { m["type"] = "com.testinvite.ticket.updated" }), false, true, "type"},
		{"subject not entity id", mutate(t, created, func(m map[string]any) { m["subject"] = "other" }), false, true, "subject"},
		{"source of other task", mutate(t, created, func(m map[string]any) { m["source"] = schema.Source(org, "task2") }), false, true, "source"},
		{"id with dot", mutate(t, created, func(m map[string]any) { data(m)["entity_id"] = "a.b" }), true, true, "entity_id"},
		{"revision zero", mutate(t, created, func(m map[string]any) { data(m)["revision"] = 0 }), true, true, "revision"},
		{"revision negative", mutate(t, created, func(m map[string]any) { data(m)["revision"] = -1 }), true, true, ""},
		{"created with before", mutate(t, created, func(m map[string]any) { data(m)["before"] = data(m)["after"] }), true, true, "before"},
		{"updated without before", mutate(t, updated, func(m map[string]any) { data(m)["before"] = nil }), true, true, ""},
		{"deleted with after", mutate(t, deleted, func(m map[string]any) { data(m)["after"] = data(m)["before"] }), true, true, "after"},
		{"record of other entity", mutate(t, created, func(m map[string]any) {
			data(m)["after"].(map[string]any)["candidateId"] = "tk2"
		}), false, true, "candidateId"},
		{"record of other task", mutate(t, updated, func(m map[string]any) {
			data(m)["after"].(map[string]any)["taskId"] = "task2"
		}), false, true, "taskId"},
		{"status not string", mutate(t, updated, func(m map[string]any) {
			data(m)["after"].(map[string]any)["status"] = 3
		}), true, true, "status"},
		{"createdAt beyond DateTime", mutate(t, deleted, func(m map[string]any) {
			data(m)["before"].(map[string]any)["createdAt"] = int64(1) << 33
		}), true, true, "createdAt"},
		{"rating out of range", mutate(t, created, func(m map[string]any) {
			data(m)["after"].(map[string]any)["rating"] = 9
		}), true, true, "rating"},
		{"time not date-time", mutate(t, created, func(m map[string]any) { m["time"] = "yesterday" }), true, true, ""},
		{"task without title", mutate(t, deleted, func(m map[string]any) {
			delete(data(m)["before"].(map[string]any), "title")
		}), true, false, "title"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			schemaErr := schema.ValidateEvent(tc.body)
			if tc.schemaRejects {
				if schemaErr == nil {
					t.Fatal("ValidateEvent accepted the event")
				}
				if !errors.Is(schemaErr, schema.ErrInvalidEvent) {
					t.Errorf("ValidateEvent error %v does not match ErrInvalidEvent", schemaErr)
				}
				var se *schema.SchemaError
				if !errors.As(schemaErr, &se) {
					t.Errorf("ValidateEvent error %T is not a *SchemaError", schemaErr)
				}
			} else if schemaErr != nil {
				t.Errorf("ValidateEvent rejected a case only the semantic checks should catch: %v", schemaErr)
			}

			ev, decodeErr := schema.DecodeEvent(tc.body)
			if decodeErr == nil {
				// The caching validator must reach the same verdict as ValidateEvent, also when
				// it has seen the images before.
				v := schema.NewEventValidator(16)
				for pass := 1; pass <= 2; pass++ {
					err := v.Validate(tc.body, &ev)
					if (err == nil) != (schemaErr == nil) {
						t.Errorf("EventValidator pass %d = %v, ValidateEvent = %v", pass, err, schemaErr)
					}
				}
				_, decodeErr = schema.Rows(&ev)
			}
			if tc.decodeRejects {
				if decodeErr == nil {
					t.Fatal("DecodeEvent and Rows accepted the event")
				}
				if !errors.Is(decodeErr, schema.ErrInvalidEvent) {
					t.Errorf("error %v does not match ErrInvalidEvent", decodeErr)
				}
				if tc.reason != "" && !strings.Contains(decodeErr.Error()+" "+errText(schemaErr), tc.reason) {
					t.Errorf("errors %q / %q do not mention %q", decodeErr, errText(schemaErr), tc.reason)
				}
			}
		})
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestEventValidatorRemembersOnlyValidImages(t *testing.T) {
	kinds := allKinds()
	v := schema.NewEventValidator(2)

	for _, name := range []string{"ticket.updated", "ticket.updated", "task.created", "test_session.deleted", "ticket.updated"} {
		ev := kinds[name]
		if err := v.Validate(schematest.Encode(ev), &ev); err != nil {
			t.Errorf("Validate(%s): %v", name, err)
		}
	}
	// A remembered image does not excuse a broken envelope.
	ev := kinds["ticket.updated"]
	bad := mutate(t, ev, func(m map[string]any) { m["time"] = "yesterday" })
	if err := v.Validate(bad, &ev); err == nil {
		t.Error("Validate accepted a bad time next to a remembered image")
	}
	// An image that failed is validated again, and fails again.
	broken := mutate(t, ev, func(m map[string]any) { data(m)["after"].(map[string]any)["loggedIn"] = "yes" })
	brokenEv, err := schema.DecodeEvent(broken)
	if err != nil {
		t.Fatal(err)
	}
	for pass := 1; pass <= 2; pass++ {
		err := v.Validate(broken, &brokenEv)
		if err == nil || !strings.Contains(err.Error(), "/data/after/loggedIn") {
			t.Errorf("pass %d: Validate = %v, want an error at /data/after/loggedIn", pass, err)
		}
	}
	// An image accepted as a ticket is not taken as a valid task.
	asTask := ev
	asTask.Data.Entity = schema.EntityTask
	if err := v.Validate(schematest.Encode(ev), &asTask); err == nil {
		t.Error("Validate accepted a ticket image as a task")
	}
}

func TestCheckSubjectMismatch(t *testing.T) {
	ev := allKinds()["ticket.updated"]
	err := schema.CheckSubject(&ev, "testinvite.org1.task1.ticket.created")
	var se *schema.SemanticError
	if !errors.As(err, &se) {
		t.Fatalf("CheckSubject error = %v, want a *SemanticError", err)
	}
	if se.Field != "subject" {
		t.Errorf("field = %q, want subject", se.Field)
	}
	if !errors.Is(err, schema.ErrInvalidEvent) {
		t.Errorf("error does not match ErrInvalidEvent")
	}
}

func TestTagsKeepNonStringValues(t *testing.T) {
	var tags schema.Tags
	if err := json.Unmarshal([]byte(`{"b":"x","a":3,"c":{"d":true}}`), &tags); err != nil {
		t.Fatal(err)
	}
	keys, values := tags.Sorted()
	if got := strings.Join(keys, ","); got != "a,b,c" {
		t.Errorf("keys = %s, want a,b,c", got)
	}
	if got := strings.Join(values, "|"); got != `3|x|{"d":true}` {
		t.Errorf("values = %s", got)
	}
}

func BenchmarkValidateEvent(b *testing.B) {
	body := schematest.Encode(allKinds()["test_session.updated"])
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := schema.ValidateEvent(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEventValidator(b *testing.B) {
	ev := allKinds()["test_session.updated"]
	body := schematest.Encode(ev)
	v := schema.NewEventValidator(1 << 16)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := v.Validate(body, &ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAndRows(b *testing.B) {
	body := schematest.Encode(allKinds()["test_session.updated"])
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		ev, err := schema.DecodeEvent(body)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := schema.Rows(&ev); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeRows(b *testing.B) {
	body := schematest.Encode(allKinds()["test_session.updated"])
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := schema.DecodeRows(body); err != nil {
			b.Fatal(err)
		}
	}
}

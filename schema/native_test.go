package schema_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/schema/schematest"
)

// corpus returns valid encoded events of every entity and op, from every dataset of schematest.
func corpus() [][]byte {
	var events []schema.Event
	kinds := allKinds()
	names := make([]string, 0, len(kinds))
	for name := range kinds {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		events = append(events, kinds[name])
	}
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	events = append(events, schematest.EveryKind("org1", "task1", t0)...)
	events = append(events, schematest.AnalyticsDataset("org1", t0)...)
	events = append(events, schematest.Load(8, "org1", t0)...)
	out := make([][]byte, len(events))
	for i, ev := range events {
		out[i] = schematest.Encode(ev)
	}
	return out
}

// mutationCorpus returns the events that TestNativeChecksMatchSchema mutates: one of every entity
// and op, and test sessions with a result, or in short mode one event of each record shape.
func mutationCorpus(short bool) [][]byte {
	kinds := allKinds()
	names := []string{"task.created", "ticket.updated", "test_session.deleted"}
	if !short {
		names = names[:0]
		for name := range kinds {
			names = append(names, name)
		}
		sort.Strings(names)
	}
	var out [][]byte
	for _, name := range names {
		out = append(out, schematest.Encode(kinds[name]))
	}
	// Sessions with a result: a COMPLETE snapshot and an update from STARTED to COMPLETE.
	t0 := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	for _, ev := range schematest.EveryKind("org1", "task1", t0) {
		if ev.Data.Entity == schema.EntityTestSession && (ev.Data.Op == schema.OpSnapshot || ev.Data.Op == schema.OpUpdated && !short) {
			out = append(out, schematest.Encode(ev))
		}
	}
	return out
}

// native runs every check of the sink's decode path on b.
func native(b []byte) error {
	_, err := schema.DecodeRows(b)
	return err
}

// justifiedStricter returns the documented case that err, from the native checks of an event that
// the JSON Schema accepts, falls under: the semantic checks the schema cannot express, and values
// the typed rows cannot hold. It returns "" for any other error.
func justifiedStricter(err error) string {
	var se *schema.SemanticError
	if !errors.As(err, &se) {
		return ""
	}
	for _, reason := range []string{
		"does not match entity",                              // type names another entity or op
		"is not the entity id",                               // subject
		"is not the event's",                                 // record of another entity, task or organization
		"task event for",                                     // task_id of a task event
		`is not "/testinvite/`,                               // source of another organization or task
		"duplicate member",                                   // a declared member twice in one object
		"out of the range of a 64-bit float",                 // beyond Float64 columns
		"expected an integer from 1 to 18446744073709551615", // beyond UInt64 columns
		"expected an integer from -1 to 9223372036854775807", // attempt limit beyond Int64
		"is not an RFC 3339 date-time",                       // leap seconds and signs time.Time rejects
	} {
		if strings.Contains(se.Reason, reason) {
			return reason
		}
	}
	return ""
}

// checkVerdicts compares the verdicts of the JSON Schema and of the native checks on b, counting in
// stricter the native rejections of events the schema accepts by field and reason.
func checkVerdicts(t *testing.T, name string, b []byte, stricter map[string]int) (schemaRejects bool) {
	t.Helper()
	schemaErr := schema.ValidateEvent(b)
	nativeErr := native(b)
	if nativeErr != nil && !errors.Is(nativeErr, schema.ErrInvalidEvent) {
		t.Errorf("%s: native error %v does not match ErrInvalidEvent", name, nativeErr)
	}
	switch {
	case schemaErr != nil && nativeErr == nil:
		t.Errorf("%s: the JSON Schema rejects the event but the native checks accept it\nschema: %v\nevent: %s", name, schemaErr, b)
	case schemaErr == nil && nativeErr != nil:
		reason := justifiedStricter(nativeErr)
		if reason == "" {
			t.Errorf("%s: the native checks reject an event the JSON Schema accepts, for no documented reason\nnative: %v\nevent: %s", name, nativeErr, b)
		}
		var se *schema.SemanticError
		if errors.As(nativeErr, &se) {
			stricter[indices.ReplaceAllString(se.Field, "[i]")+": "+reason]++
		}
	}

	// DecodeEvent followed by Rows, the path of callers that need an Event, agrees with
	// DecodeRows.
	ev, err := schema.DecodeEvent(b)
	if err == nil {
		_, err = schema.Rows(&ev)
	}
	if (err == nil) != (nativeErr == nil) {
		t.Errorf("%s: DecodeEvent and Rows = %v, DecodeRows = %v", name, err, nativeErr)
	}
	return schemaErr != nil
}

var indices = regexp.MustCompile(`\[[0-9]+\]`)

// replacements are the values a mutation puts in place of a member: every JSON type, numbers at
// and beyond the ranges the schema sets, and strings that break its patterns and formats.
var replacements = []any{
	nil, true, false, json.Number("0"), json.Number("-1"), json.Number("1"), json.Number("5"), json.Number("6"),
	json.Number("1.5"), json.Number("2.0"), json.Number("1e2"), json.Number("4294967295"),
	json.Number("4294967296"), json.Number("18446744073709551616"), json.Number("1e400"), json.Number("-0"),
	"", "x", "a.b", "ABC123", strings.Repeat("a", 129), "0123456789abcdef", "0123456789abcdef0123456789abcdef",
	"2026-03-01T12:00:00Z", "2026-03-01t12:00:00z", "2026-02-30T12:00:00Z", "2026-03-01T12:00:00+24:00",
	"2026-03-01T23:59:60Z", "2026-03-01T12:00:00,5Z", "yesterday", "1.0", "application/json",
	"com.testinvite.ticket.created", "/testinvite/organizations/org1/tasks/task1", "task", "deleted",
	[]any{}, []any{"x"}, []any{"x", "x"}, []any{json.Number("1")}, []any{map[string]any{}}, []any{nil},
	map[string]any{}, map[string]any{"a": json.Number("1")},
}

// decodeGeneric decodes b into generic values with exact numbers.
func decodeGeneric(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// paths lists the JSON pointer of every member and element below v, parents before children.
func paths(v any, prefix []string, out *[][]string) {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := append(append([]string{}, prefix...), k)
			*out = append(*out, p)
			paths(v[k], p, out)
		}
	case []any:
		for i, e := range v {
			p := append(append([]string{}, prefix...), strconv.Itoa(i))
			*out = append(*out, p)
			paths(e, p, out)
		}
	}
}

// parentOf returns the container holding the value at path, and the last token.
func parentOf(root any, path []string) (any, string) {
	v := root
	for _, tok := range path[:len(path)-1] {
		switch c := v.(type) {
		case map[string]any:
			v = c[tok]
		case []any:
			i, _ := strconv.Atoi(tok)
			v = c[i]
		}
	}
	return v, path[len(path)-1]
}

// mutations returns the documents derived from the valid event b by one change each: a member
// removed, replaced by each of replacements, or an undeclared member added to an object.
func mutations(t testing.TB, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var all [][]string
	paths(decodeGeneric(t, b), nil, &all)
	encode := func(v any) []byte {
		enc, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return enc
	}
	for _, p := range all {
		name := "/" + strings.Join(p, "/")
		root := decodeGeneric(t, b)
		parent, last := parentOf(root, p)
		if obj, ok := parent.(map[string]any); ok {
			delete(obj, last)
			out[name+" removed"] = encode(root)
		}
		for i, r := range replacements {
			root := decodeGeneric(t, b)
			parent, last := parentOf(root, p)
			switch c := parent.(type) {
			case map[string]any:
				c[last] = r
			case []any:
				j, _ := strconv.Atoi(last)
				c[j] = r
			}
			out[fmt.Sprintf("%s replaced by #%d", name, i)] = encode(root)
		}
		root = decodeGeneric(t, b)
		if obj, ok := valueAt(root, p).(map[string]any); ok {
			obj["zzUndeclared"] = map[string]any{"nested": []any{json.Number("1")}}
			out[name+" with an undeclared member"] = encode(root)
		}
	}
	return out
}

func valueAt(root any, path []string) any {
	parent, last := parentOf(root, path)
	switch c := parent.(type) {
	case map[string]any:
		return c[last]
	case []any:
		i, _ := strconv.Atoi(last)
		return c[i]
	}
	return nil
}

// TestNativeChecksMatchSchema derives events from the corpus by systematic mutations and checks
// that the native checks reject every event the JSON Schema rejects, and reject an event the JSON
// Schema accepts only for a documented reason.
func TestNativeChecksMatchSchema(t *testing.T) {
	docs := mutationCorpus(testing.Short())
	stricter := map[string]int{}
	total, rejected := 0, 0
	for i, b := range docs {
		if err := native(b); err != nil {
			t.Fatalf("corpus event %d is rejected: %v", i, err)
		}
		for name, m := range mutations(t, b) {
			total++
			if checkVerdicts(t, fmt.Sprintf("corpus %d %s", i, name), m, stricter) {
				rejected++
			}
		}
	}
	if rejected == 0 || rejected == total {
		t.Errorf("the JSON Schema rejected %d of %d mutations: the mutations do not exercise both verdicts", rejected, total)
	}
	t.Logf("%d mutations, %d rejected by the JSON Schema; native checks stricter on %d:", total, rejected, sum(stricter))
	keys := make([]string, 0, len(stricter))
	for k := range stricter {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		t.Logf("  %5d  %s", stricter[k], k)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestNativeChecksTextual covers what a generic re-encoding cannot produce: JSON grammar errors,
// duplicate members, escapes and whitespace.
func TestNativeChecksTextual(t *testing.T) {
	valid := string(schematest.Encode(allKinds()["test_session.updated"]))
	cases := []struct {
		name string
		doc  string
		// accepted is the expected verdict of the native checks.
		accepted bool
	}{
		{"valid", valid, true},
		{"surrounding whitespace", " \n\t" + valid + "\r\n", true},
		{"escaped member name", strings.Replace(valid, `"stepId"`, `"step\u0049d"`, 1), true},
		{"escaped id", strings.Replace(valid, `"entity_id":"ts1"`, `"entity_id":"\u0074s1"`, 1), true},
		{"trailing data", valid + "{}", false},
		{"truncated", valid[:len(valid)-1], false},
		{"trailing comma", valid[:len(valid)-1] + ",}", false},
		{"control character in string", strings.Replace(valid, `"STARTED"`, "\"STA\x01RTED\"", 1), false},
		{"bad escape", strings.Replace(valid, `"STARTED"`, `"STA\xRTED"`, 1), false},
		{"leading zero", strings.Replace(valid, `"revision":2`, `"revision":02`, 1), false},
		{"integer written as 2.0", strings.Replace(valid, `"revision":2`, `"revision":2.0`, 1), true},
		{"integer written as 2e0", strings.Replace(valid, `"revision":2`, `"revision":2e0`, 1), true},
		{"case-folded member only", strings.Replace(valid, `"status":"STARTED"`, `"Status":"STARTED"`, 1), false},
		{"case-folded member beside the member", strings.Replace(valid, `"status":"STARTED"`, `"status":"STARTED","STATUS":7`, 1), true},
		{"duplicate declared member", strings.Replace(valid, `"status":"STARTED"`, `"status":"STARTED","status":"COMPLETE"`, 1), false},
		{"duplicate undeclared member", strings.Replace(valid, `"status":"STARTED"`, `"status":"STARTED","x":1,"x":2`, 1), true},
		{"duplicate tag", strings.Replace(valid, `"tags":{"team":"platform"}`, `"tags":{"team":"a","team":"b"}`, 1), true},
		{"invalid UTF-8 in free text", strings.Replace(valid, `"Hiring"`, "\"Hir\xffing\"", 1), true},
		{"lone surrogate in id", strings.Replace(valid, `"entity_id":"ts1"`, `"entity_id":"ts\ud800"`, 1), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := native([]byte(tc.doc))
			if (err == nil) != tc.accepted {
				t.Fatalf("native checks = %v, want accepted %v", err, tc.accepted)
			}
			schemaErr := schema.ValidateEvent([]byte(tc.doc))
			if schemaErr != nil && err == nil {
				t.Errorf("the JSON Schema rejects the event but the native checks accept it: %v", schemaErr)
			}
		})
	}
}

// FuzzNativeChecks checks on arbitrary documents that the native checks reject whatever the JSON
// Schema rejects, and reject what it accepts only for a documented reason. Run it with
// go test ./schema -run '^$' -fuzz FuzzNativeChecks -fuzztime 2m.
func FuzzNativeChecks(f *testing.F) {
	for _, b := range corpus() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkVerdicts(t, "fuzzed event", b, map[string]int{})
	})
}

package diff

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/tisync/tisync/schema"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name   string
		entity schema.Entity
		in     string
		want   string
	}{
		{"keys sorted recursively", schema.EntityTicket,
			`{"b":1,"a":{"d":1,"c":[{"f":1,"e":2}]}}`,
			`{"a":{"c":[{"e":2,"f":1}],"d":1},"b":1}`},
		{"whitespace removed", schema.EntityTicket,
			"{ \"a\" :\t[ 1 , 2 ]\n,\r\"b\" : \"x y\" }",
			`{"a":[1,2],"b":"x y"}`},
		{"timestamp float forms become seconds", schema.EntityTask,
			`{"createdAt":1.7383680e9,"activeAfter":1738368000.0,"activeBefore":1738368000}`,
			`{"activeAfter":1738368000,"activeBefore":1738368000,"createdAt":1738368000}`},
		{"timestamp fraction rounded down", schema.EntityTask,
			`{"createdAt":1738368000.9,"activeAfter":-1.5}`,
			`{"activeAfter":-2,"createdAt":1738368000}`},
		{"timestamp in steps and result", schema.EntityTestSession,
			`{"result":{"completedAt":1.7383680e9},"steps":[{"activeBefore":1.7e9,"activeAfter":null}]}`,
			`{"result":{"completedAt":1738368000},"steps":[{"activeAfter":null,"activeBefore":1700000000}]}`},
		{"timestamp RFC 3339 string converted", schema.EntityTask,
			`{"createdAt":"2025-02-01T00:00:00Z","activeAfter":"2025-02-01T03:00:00.5+03:00"}`,
			`{"activeAfter":1738368000,"createdAt":1738368000}`},
		{"timestamp other string kept", schema.EntityTask,
			`{"createdAt":"soon","activeAfter":""}`,
			`{"activeAfter":"","createdAt":"soon"}`},
		{"integers kept digit for digit", schema.EntityTicket,
			`{"a":12345678901234567890123,"b":-7,"c":0,"d":-0}`,
			`{"a":12345678901234567890123,"b":-7,"c":0,"d":0}`},
		{"integral floats become integers", schema.EntityTicket,
			`{"a":5.0,"b":1e3,"c":-2.50e1,"d":-0.0}`,
			`{"a":5,"b":1000,"c":-25,"d":0}`},
		{"floats in shortest form", schema.EntityTicket,
			`{"a":0.840,"b":1E-7,"c":1.5e300,"d":0.1e1,"e":3.14159265358979323846}`,
			`{"a":0.84,"b":1e-7,"c":1.5e+300,"d":1,"e":3.141592653589793}`},
		{"float beyond range kept", schema.EntityTicket,
			`{"a":1e400}`,
			`{"a":1e400}`},
		{"labels sorted everywhere", schema.EntityTask,
			`{"labels":["b","a","c","a"],"steps":[{"labels":["z","y"]}]}`,
			`{"labels":["a","a","b","c"],"steps":[{"labels":["y","z"]}]}`},
		{"other arrays keep order", schema.EntityTestSession,
			`{"result":{"sections":[{"uuid":"b"},{"uuid":"a"}],"dimensions":[{"name":"z"},{"name":"y"}]},"steps":[2,1]}`,
			`{"result":{"dimensions":[{"name":"z"},{"name":"y"}],"sections":[{"uuid":"b"},{"uuid":"a"}]},"steps":[2,1]}`},
		{"test session result false becomes null", schema.EntityTestSession,
			`{"result":false}`,
			`{"result":null}`},
		{"result false kept for tickets", schema.EntityTicket,
			`{"result":false}`,
			`{"result":false}`},
		{"nested result false kept", schema.EntityTestSession,
			`{"x":{"result":false}}`,
			`{"x":{"result":false}}`},
		{"null kept and missing stays missing", schema.EntityTicket,
			`{"rating":null,"stage":null}`,
			`{"rating":null,"stage":null}`},
		{"empty string and spaces kept", schema.EntityTicket,
			`{"fullname":"","email":"  a@b.c "}`,
			`{"email":"  a@b.c ","fullname":""}`},
		{"unknown members kept", schema.EntityTicket,
			`{"someNewField":{"x":[true,false,null]}}`,
			`{"someNewField":{"x":[true,false,null]}}`},
		{"free-form maps left alone", schema.EntityTicket,
			`{"tags":{"createdAt":1.5e0,"labels":["b","a"]},"externalData":{"activeAfter":"2025-02-01T00:00:00Z"}}`,
			`{"externalData":{"activeAfter":"2025-02-01T00:00:00Z"},"tags":{"createdAt":1.5,"labels":["b","a"]}}`},
		{"duplicate member keeps the last", schema.EntityTicket,
			`{"a":1,"b":2,"a":3}`,
			`{"a":3,"b":2}`},
		{"string escapes minimized", schema.EntityTicket,
			`{"a":"\u0041\/\"\\\n\u0001\u00e9","b":"\ud83d\ude00"}`,
			"{\"a\":\"A/\\\"\\\\\\n\\u0001\u00e9\",\"b\":\"\U0001F600\"}"},
		{"invalid UTF-8 and lone surrogate replaced", schema.EntityTicket,
			"{\"a\":\"x\xffy\",\"b\":\"\\ud800\\u0041\"}",
			"{\"a\":\"x\uFFFDy\",\"b\":\"\uFFFDA\"}"},
		{"escaped names sorted and compared", schema.EntityTicket,
			`{"\u0062":1,"a":2}`,
			`{"a":2,"b":1}`},
		{"empty containers", schema.EntityTicket,
			`{"a":{},"b":[],"labels":[]}`,
			`{"a":{},"b":[],"labels":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n Normalizer
			got, err := n.Append(nil, tt.entity, []byte(tt.in))
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if string(got) != tt.want {
				t.Errorf("Append:\n got %s\nwant %s", got, tt.want)
			}
			again, err := n.Append(nil, tt.entity, got)
			if err != nil {
				t.Fatalf("Append of canonical form: %v", err)
			}
			if !bytes.Equal(again, got) {
				t.Errorf("canonical form not stable:\n got %s\nwant %s", again, got)
			}
		})
	}
}

func TestNormalizeEquivalentInputs(t *testing.T) {
	groups := [][]string{
		{`{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, " {\"b\" : [1 ,2], \"a\":1.0} "},
		{`{"labels":["x","y"],"createdAt":1738368000}`, `{"createdAt":1.738368e9,"labels":["y","x"]}`},
		{`{"s":"é"}`, `{"s":"\u00e9"}`, `{"s":"\u00E9"}`},
	}
	var n Normalizer
	for _, g := range groups {
		first, err := n.Append(nil, schema.EntityTask, []byte(g[0]))
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range g[1:] {
			got, err := n.Append(nil, schema.EntityTask, []byte(in))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, first) {
				t.Errorf("%s normalized to %s, %s to %s", g[0], first, in, got)
			}
		}
	}
}

func TestNormalizeRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error
	}{
		{"empty", ``, ErrNotObject},
		{"array", `[1]`, ErrNotObject},
		{"string", `"x"`, ErrNotObject},
		{"trailing data", `{} {}`, ErrInvalidJSON},
		{"trailing comma", `{"a":1,}`, ErrInvalidJSON},
		{"unquoted name", `{a:1}`, ErrInvalidJSON},
		{"missing colon", `{"a" 1}`, ErrInvalidJSON},
		{"unterminated string", `{"a":"x}`, ErrInvalidJSON},
		{"control character", "{\"a\":\"x\ny\"}", ErrInvalidJSON},
		{"bad escape", `{"a":"\x"}`, ErrInvalidJSON},
		{"bad unicode escape", `{"a":"\u12g4"}`, ErrInvalidJSON},
		{"leading zero", `{"a":01}`, ErrInvalidJSON},
		{"bare minus", `{"a":-}`, ErrInvalidJSON},
		{"no fraction digit", `{"a":1.}`, ErrInvalidJSON},
		{"no exponent digit", `{"a":1e}`, ErrInvalidJSON},
		{"bad literal", `{"a":tru}`, ErrInvalidJSON},
		{"unclosed array", `{"a":[1,2}`, ErrInvalidJSON},
		{"too deep", `{"a":` + strings.Repeat("[", 70) + strings.Repeat("]", 70) + `}`, ErrInvalidJSON},
		{"too large", `{"a":"` + strings.Repeat("x", MaxRecordBytes) + `"}`, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n Normalizer
			dst := []byte("keep")
			got, err := n.Append(dst, schema.EntityTicket, []byte(tt.in))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Append error = %v, want %v", err, tt.want)
			}
			if string(got) != "keep" {
				t.Errorf("dst changed to %q on error", got)
			}
		})
	}
}

func TestChangedFields(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		want          []string
	}{
		{"same", `{"a":1,"b":[1]}`, `{"a":1,"b":[1]}`, []string{}},
		{"value changed", `{"a":1,"b":2}`, `{"a":1,"b":3}`, []string{"b"}},
		{"added and removed", `{"a":1,"c":2}`, `{"a":1,"b":2}`, []string{"b", "c"}},
		{"null versus missing", `{"a":null}`, `{}`, []string{"a"}},
		{"nested change counts at top level", `{"r":{"x":1},"s":"a"}`, `{"r":{"x":2},"s":"a"}`, []string{"r"}},
		{"escaped name decoded", `{"a\"b":1}`, `{"a\"b":2}`, []string{`a"b`}},
		{"all changed", `{"a":1}`, `{"b":1}`, []string{"a", "b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChangedFields([]byte(tt.before), []byte(tt.after))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ChangedFields = %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := ChangedFields([]byte(`[1]`), []byte(`{}`)); !errors.Is(err, ErrCorruptSnapshot) {
		t.Errorf("ChangedFields of an array: error = %v, want ErrCorruptSnapshot", err)
	}
}

func TestField(t *testing.T) {
	rec := []byte(`{"a":{"x":[1,"}"]},"b":"s","c":null}`)
	for name, want := range map[string]string{"a": `{"x":[1,"}"]}`, "b": `"s"`, "c": `null`} {
		got, ok := Field(rec, name)
		if !ok || string(got) != want {
			t.Errorf("Field(%q) = %s, %v; want %s", name, got, ok, want)
		}
	}
	if _, ok := Field(rec, "d"); ok {
		t.Error("Field(d) found a missing member")
	}
}

// FuzzNormalize checks the normalizer against encoding/json: it accepts exactly the objects that
// encoding/json accepts (within the depth limit), its output decodes to the same value, and
// normalizing the output again changes nothing.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{
		`{"a":1}`, `{"b":[1,2,{"c":null}],"a":"x"}`, `{"labels":["b","a"]}`, `{"createdAt":1.5e9}`,
		`{"a":"\u00e9\ud800"}`, `{"a":1e400}`, `{"a":-0.0}`, `{"result":false}`, `{"a":1,"a":2}`,
		`{"tags":{"labels":["b","a"]}}`, "{\"a\":\"\xff\"}", `{"a":12345678901234567890}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var n Normalizer
		got, err := n.Append(nil, schema.EntityTicket, raw)
		var ref map[string]any
		refErr := json.Unmarshal(raw, &ref)
		if err != nil {
			if refErr == nil && ref != nil && !errors.Is(err, ErrTooLarge) && !strings.Contains(err.Error(), "nesting") {
				t.Fatalf("rejected %q accepted by encoding/json: %v", raw, err)
			}
			return
		}
		if refErr != nil {
			var num *json.UnmarshalTypeError
			if !errors.As(refErr, &num) {
				t.Fatalf("accepted %q rejected by encoding/json: %v", raw, refErr)
			}
			return // a number beyond float64 range, which is valid JSON
		}
		var back map[string]any
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("output %q of %q does not decode: %v", got, raw, err)
		}
		if !equivalent(ref, back, "") {
			t.Fatalf("output %q of %q decodes to %v, input to %v", got, raw, back, ref)
		}
		again, err := n.Append(nil, schema.EntityTicket, got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("normalizing %q again gave %q, %v", got, again, err)
		}
	})
}

// equivalent compares decoded JSON values the way normalization promises to keep them: labels
// arrays as multisets, timestamp members rounded down to seconds, everything else equal.
func equivalent(a, b any, key string) bool {
	switch a := a.(type) {
	case map[string]any:
		bm, ok := b.(map[string]any)
		if !ok || len(a) != len(bm) {
			return false
		}
		for k, av := range a {
			bv, ok := bm[k]
			if !ok {
				return false
			}
			childKey := k
			if k == "tags" || k == "externalData" || k == "roomForm" || key == "free" {
				childKey = "free"
			}
			if !equivalent(av, bv, childKey) {
				return false
			}
		}
		return true
	case []any:
		bs, ok := b.([]any)
		if !ok || len(a) != len(bs) {
			return false
		}
		if key == "labels" {
			used := make([]bool, len(bs))
		outer:
			for _, av := range a {
				for j, bv := range bs {
					if !used[j] && equivalent(av, bv, "") {
						used[j] = true
						continue outer
					}
				}
				return false
			}
			return true
		}
		for i := range a {
			if !equivalent(a[i], bs[i], "") {
				return false
			}
		}
		return true
	case float64:
		bf, ok := b.(float64)
		if !ok {
			return false
		}
		switch key {
		case "createdAt", "completedAt", "activeAfter", "activeBefore":
			return math.Floor(a) == bf || math.Abs(math.Floor(a)-bf) <= math.Abs(bf)*1e-15
		}
		return a == bf
	case string:
		if bf, ok := b.(float64); ok {
			switch key {
			case "createdAt", "completedAt", "activeAfter", "activeBefore":
				return bf == math.Trunc(bf) // an RFC 3339 string converted to seconds
			}
		}
		return reflect.DeepEqual(a, b)
	default:
		return reflect.DeepEqual(a, b)
	}
}

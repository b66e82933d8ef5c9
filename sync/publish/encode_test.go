package publish

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
)

func TestAppendEventMatchesEncodingJSON(t *testing.T) {
	base := testEvents(1)[0]
	tests := map[string]func(*schema.Event){
		"snapshot":    func(*schema.Event) {},
		"nanoseconds": func(e *schema.Event) { e.Time = time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC) },
		"time zone": func(e *schema.Event) {
			e.Data.ObservedAt = time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))
		},
		"changed fields": func(e *schema.Event) {
			e.Data.ChangedFields = []string{"group", `we"ird\\field`, "tab\there", "ctrl\x01", "<html>&", "ünï€ode", "bad\xffutf8"}
		},
		"nil fields": func(e *schema.Event) { e.Data.ChangedFields = nil },
		"update": func(e *schema.Event) {
			e.Data.Op = schema.OpUpdated
			e.Data.Before = []byte(`{"a":"x<y","b":[1,2.5,null],"c":{"d":true}}`)
			e.Data.After = []byte(`{"a":"x>y","b":[],"c":{}}`)
		},
		"delete": func(e *schema.Event) {
			e.Data.Op = schema.OpDeleted
			e.Data.Before = []byte(`{"candidateId":"ticket00000"}`)
			e.Data.After = nil
		},
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			ev := base
			change(&ev)
			got := appendEvent(nil, &ev)
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			want, err := json.Marshal(&ev)
			if err != nil {
				t.Fatal(err)
			}
			var gotValue, wantValue any
			if err := json.Unmarshal(got, &gotValue); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(want, &wantValue); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotValue, wantValue) {
				t.Errorf("documents differ:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func BenchmarkMessage(b *testing.B) {
	ev := testEvents(1)[0]
	ev.Data.After = []byte(`{"active":true,"activeAfter":null,"activeBefore":null,"candidateId":"AvNxDZJHWpop8MwYipKG","directAccessUrl":"https://www.testinvite.com/t/pL9jycpXnmbXDbSSgaBR?code=K99HYMVR83","email":"emma.yilmaz.4@example.com","fullname":"Emma Yilmaz","group":"finance","invitationCode":"K99HYMVR83","kind":"temp","labels":["on-hold"],"loggedIn":true,"organizationId":"zUH8oMYJ60As4HYP48Zx","rating":null,"source":"pre-registration","stage":null,"tags":{"recruiter":"j.smith"},"taskId":"pL9jycpXnmbXDbSSgaBR"}`)
	b.Run("appendEvent", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf = appendEvent(buf[:0], &ev)
		}
	})
	b.Run("Message", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Message(&ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(&ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

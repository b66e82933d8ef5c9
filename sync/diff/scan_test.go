package diff

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const (
	testOrg  = "org1"
	testTask = "task1"
)

var t0 = time.Date(2025, 2, 1, 12, 0, 0, 0, time.UTC)

type input struct{ id, raw string }

// ticketJSON returns a detailed ticket with the given members added to a fixed base.
func ticketJSON(id, members string) string {
	s := `{"candidateId":"` + id + `","taskId":"` + testTask + `","kind":"temp","loggedIn":false`
	if members != "" {
		s += "," + members
	}
	return s + "}"
}

func ticket(id, members string) input { return input{id, ticketJSON(id, members)} }

func ticketOptions(prev *Snapshot, at time.Time) Options {
	return Options{OrganizationID: testOrg, TaskID: testTask, Entity: schema.EntityTicket, Prev: prev, ObservedAt: at}
}

// scan runs one scan over in and confirms every missing record as deleted.
func scan(t testing.TB, o Options, kind ScanKind, in ...input) *Result {
	t.Helper()
	s, err := NewScan(o)
	if err != nil {
		t.Fatalf("NewScan: %v", err)
	}
	for _, r := range in {
		if err := s.Add(r.id, []byte(r.raw)); err != nil {
			t.Fatalf("Add(%s): %v", r.id, err)
		}
	}
	var gone []string
	if kind == Complete {
		gone = s.Missing()
	}
	res, err := s.Finish(kind, gone)
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	// Decoding checks every invariant of a snapshot: unique ids, hashes, sizes.
	var buf bytes.Buffer
	if _, err := res.Next.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSnapshot(&buf); err != nil {
		t.Fatalf("next snapshot fails its checks: %v", err)
	}
	return res
}

// summary is the part of a change that the table tests compare.
type summary struct {
	ID     string
	Op     schema.Op
	Rev    uint64
	Fields []string
}

func summarize(res *Result) []summary {
	out := []summary{}
	for c := range res.All() {
		s := summary{ID: c.EntityID, Op: c.Op, Rev: c.Revision}
		if c.Op == schema.OpUpdated {
			s.Fields = c.ChangedFields
		}
		out = append(out, s)
	}
	return out
}

func TestScanChanges(t *testing.T) {
	base := []input{
		ticket("a1", `"labels":["x","y"],"rating":null`),
		ticket("b2", `"activeAfter":1738368000`),
		ticket("c3", `"score":5`),
	}
	tests := []struct {
		name string
		next []input
		want []summary
	}{
		{"nothing changed", base, []summary{}},
		{"record created", append(append([]input{}, base...), ticket("d4", "")),
			[]summary{{"d4", schema.OpCreated, 1, nil}}},
		{"record updated", []input{base[0], ticket("b2", `"activeAfter":1738368001`), base[2]},
			[]summary{{"b2", schema.OpUpdated, 2, []string{"activeAfter"}}}},
		{"record deleted", base[:2],
			[]summary{{"c3", schema.OpDeleted, 2, nil}}},
		{"members and labels reordered", []input{
			{"a1", `{"rating":null,"labels":["y","x"],"loggedIn":false,"kind":"temp","taskId":"task1","candidateId":"a1"}`},
			base[1], base[2]}, []summary{}},
		{"number as float instead of integer", []input{base[0], ticket("b2", `"activeAfter":1.738368e9`), ticket("c3", `"score":5.0`)},
			[]summary{}},
		{"null becomes missing", []input{ticket("a1", `"labels":["x","y"]`), base[1], base[2]},
			[]summary{{"a1", schema.OpUpdated, 2, []string{"rating"}}}},
		{"missing becomes null", []input{base[0], ticket("b2", `"activeAfter":1738368000,"stage":null`), base[2]},
			[]summary{{"b2", schema.OpUpdated, 2, []string{"stage"}}}},
		{"empty string differs from null", []input{ticket("a1", `"labels":["x","y"],"rating":""`), base[1], base[2]},
			[]summary{{"a1", schema.OpUpdated, 2, []string{"rating"}}}},
		{"label added", []input{ticket("a1", `"labels":["x","y","z"],"rating":null`), base[1], base[2]},
			[]summary{{"a1", schema.OpUpdated, 2, []string{"labels"}}}},
		{"all kinds at once", []input{ticket("e5", ""), ticket("a1", `"labels":["x"],"rating":3`), base[1]},
			[]summary{
				{"a1", schema.OpUpdated, 2, []string{"labels", "rating"}},
				{"c3", schema.OpDeleted, 2, nil},
				{"e5", schema.OpCreated, 1, nil},
			}},
	}
	first := scan(t, ticketOptions(nil, t0), Complete, base...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scan(t, ticketOptions(first.Next, t0.Add(time.Minute)), Complete, tt.next...)
			if got := summarize(res); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("changes:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestScanFirstLoad(t *testing.T) {
	res := scan(t, ticketOptions(nil, t0), Complete, ticket("b2", ""), ticket("a1", ""), ticket("c3", ""))
	want := []summary{{"a1", schema.OpSnapshot, 1, nil}, {"b2", schema.OpSnapshot, 1, nil}, {"c3", schema.OpSnapshot, 1, nil}}
	if got := summarize(res); !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %+v, want %+v", got, want)
	}
	for c := range res.All() {
		if c.Before != nil {
			t.Errorf("%s: snapshot has a before image %s", c.EntityID, c.Before)
		}
		if c.After == nil {
			t.Errorf("%s: snapshot has no after image", c.EntityID)
		}
	}
	if !res.Modified() {
		t.Error("Modified() = false after the first load")
	}
	if got := res.Next.Len(); got != 3 {
		t.Errorf("Next.Len() = %d, want 3", got)
	}
	if res.Next.LastComplete() != t0 {
		t.Errorf("Next.LastComplete() = %v, want %v", res.Next.LastComplete(), t0)
	}
}

func TestScanABAB(t *testing.T) {
	a, b := ticket("r1", `"email":"a@x.io"`), ticket("r1", `"email":"b@x.io"`)
	res := scan(t, ticketOptions(nil, t0), Complete, a)
	ids := map[string]bool{res.Change(0).EventID: true}
	revs := []uint64{res.Change(0).Revision}
	for i, in := range []input{b, a, b} {
		res = scan(t, ticketOptions(res.Next, t0.Add(time.Duration(i+1)*time.Minute)), Complete, in)
		if res.Len() != 1 {
			t.Fatalf("step %d: %d changes, want 1", i, res.Len())
		}
		ids[res.Change(0).EventID] = true
		revs = append(revs, res.Change(0).Revision)
	}
	if len(ids) != 4 {
		t.Errorf("A→B→A→B gave %d distinct event ids, want 4", len(ids))
	}
	if want := []uint64{1, 2, 3, 4}; !reflect.DeepEqual(revs, want) {
		t.Errorf("revisions = %v, want %v", revs, want)
	}
}

func TestScanDeterministicIDs(t *testing.T) {
	first := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""), ticket("b2", ""))
	in := []input{ticket("b2", `"email":"new@x.io"`), ticket("c3", "")}
	r1 := scan(t, ticketOptions(first.Next, t0.Add(time.Minute)), Complete, in...)
	// The same change detected again later, as after a crash before the checkpoint was stored.
	r2 := scan(t, ticketOptions(first.Next, t0.Add(time.Hour)), Complete, in[1], in[0])
	if r1.Len() != 3 || r2.Len() != 3 {
		t.Fatalf("changes: %d and %d, want 3 each", r1.Len(), r2.Len())
	}
	for i := range r1.Len() {
		c1, c2 := r1.Change(i), r2.Change(i)
		if c1.EventID != c2.EventID {
			t.Errorf("change %d (%s %s): event ids %s and %s differ", i, c1.Op, c1.EntityID, c1.EventID, c2.EventID)
		}
		if c2.Version <= c1.Version {
			t.Errorf("change %d: version %d of the later scan not above %d", i, c2.Version, c1.Version)
		}
	}
}

func TestScanTestSessionResult(t *testing.T) {
	o := Options{OrganizationID: testOrg, TaskID: testTask, Entity: schema.EntityTestSession, ObservedAt: t0}
	started := `{"testInstanceId":"s1","taskId":"task1","status":"STARTED","ignored":false,"result":false}`
	res := scan(t, o, Complete, input{"s1", started})
	if got := string(res.Change(0).After); !strings.Contains(got, `"result":null`) {
		t.Fatalf("after image %s: want result null", got)
	}
	o.Prev, o.ObservedAt = res.Next, t0.Add(time.Minute)
	complete := `{"testInstanceId":"s1","taskId":"task1","status":"COMPLETE","ignored":false,` +
		`"result":{"completedAt":1.7383680e9,"scoreboard":{"pointsAchieved":42,"maxAchievablePoints":50,"achievementRatio":0.84}}}`
	res = scan(t, o, Complete, input{"s1", complete})
	want := []summary{{"s1", schema.OpUpdated, 2, []string{"result", "status"}}}
	if got := summarize(res); !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %+v, want %+v", got, want)
	}
	c := res.Change(0)
	if !strings.Contains(string(c.Before), `"result":null`) || !strings.Contains(string(c.After), `"completedAt":1738368000`) {
		t.Errorf("before %s, after %s", c.Before, c.After)
	}
}

func TestScanPartial(t *testing.T) {
	first := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""), ticket("b2", ""), ticket("c3", ""))
	s, err := NewScan(ticketOptions(first.Next, t0.Add(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []input{ticket("b2", `"email":"x@y.z"`), ticket("d4", "")} {
		if err := s.Add(r.id, []byte(r.raw)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Finish(Partial, []string{"a1"}); !errors.Is(err, ErrPartialDelete) {
		t.Fatalf("Finish(Partial) with deletions: error = %v, want ErrPartialDelete", err)
	}
	res, err := s.Finish(Partial, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []summary{{"b2", schema.OpUpdated, 2, []string{"email"}}, {"d4", schema.OpCreated, 1, nil}}
	if got := summarize(res); !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %+v, want %+v", got, want)
	}
	var ids []string
	for r := range res.Next.Records() {
		ids = append(ids, r.ID)
	}
	if want := []string{"a1", "b2", "c3", "d4"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("next snapshot ids = %v, want %v", ids, want)
	}
	if res.Counts.Missing != 0 {
		t.Errorf("Counts.Missing = %d, want 0 for a partial scan", res.Counts.Missing)
	}
	if res.Next.LastComplete() != t0 {
		t.Errorf("partial scan moved LastComplete to %v", res.Next.LastComplete())
	}
}

func TestScanInitialLoadLastsUntilComplete(t *testing.T) {
	part := scan(t, ticketOptions(nil, t0), Partial, ticket("a1", ""))
	if !part.Next.LastComplete().IsZero() {
		t.Fatal("a partial first scan ended the initial load")
	}
	res := scan(t, ticketOptions(part.Next, t0.Add(time.Minute)), Complete, ticket("a1", ""), ticket("b2", ""))
	want := []summary{{"b2", schema.OpSnapshot, 1, nil}}
	if got := summarize(res); !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %+v, want %+v", got, want)
	}
	res = scan(t, ticketOptions(res.Next, t0.Add(2*time.Minute)), Complete, ticket("a1", ""), ticket("b2", ""), ticket("c3", ""))
	want = []summary{{"c3", schema.OpCreated, 1, nil}}
	if got := summarize(res); !reflect.DeepEqual(got, want) {
		t.Errorf("changes after the initial load: got %+v, want %+v", got, want)
	}
}

func TestScanDuplicateID(t *testing.T) {
	first := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""), ticket("b2", ""))
	tests := []struct {
		name string
		in   []input
		want []summary
		dups int
	}{
		{"new record twice, last wins", []input{ticket("a1", ""), ticket("b2", ""), ticket("c3", `"v":1`), ticket("c3", `"v":2`)},
			[]summary{{"c3", schema.OpCreated, 1, nil}}, 1},
		{"known record changed then restored", []input{ticket("a1", `"v":1`), ticket("a1", ""), ticket("b2", "")},
			[]summary{}, 1},
		{"known record unchanged then changed", []input{ticket("a1", ""), ticket("a1", `"v":1`), ticket("b2", "")},
			[]summary{{"a1", schema.OpUpdated, 2, []string{"v"}}}, 1},
		{"identical copies", []input{ticket("a1", ""), ticket("a1", ""), ticket("b2", ""), ticket("b2", "")},
			[]summary{}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := scan(t, ticketOptions(first.Next, t0.Add(time.Minute)), Complete, tt.in...)
			if got := summarize(res); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("changes: got %+v, want %+v", got, tt.want)
			}
			if res.Counts.Duplicates != tt.dups {
				t.Errorf("Counts.Duplicates = %d, want %d", res.Counts.Duplicates, tt.dups)
			}
			if res.Counts.Deleted != 0 {
				t.Errorf("Counts.Deleted = %d, want 0", res.Counts.Deleted)
			}
		})
	}
}

func TestScanResync(t *testing.T) {
	first := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""), ticket("b2", ""), ticket("c3", ""))
	o := ticketOptions(first.Next, t0.Add(time.Minute))
	o.Resync = true
	res := scan(t, o, Complete, ticket("a1", ""), ticket("b2", `"email":"x@y.z"`), ticket("d4", ""))
	want := []summary{
		{"a1", schema.OpSnapshot, 2, nil},
		{"b2", schema.OpSnapshot, 2, nil},
		{"c3", schema.OpDeleted, 2, nil},
		{"d4", schema.OpSnapshot, 1, nil},
	}
	if got := summarize(res); !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %+v, want %+v", got, want)
	}
	if !res.Next.ResyncCompleted() {
		t.Error("ResyncCompleted() = false after a complete resync")
	}
	// The ids differ from the first load's, so the resync's events are not dropped as duplicates.
	if a, b := first.Change(0).EventID, res.Change(0).EventID; a == b {
		t.Errorf("resync reused event id %s", a)
	}
}

func TestScanRevisionFloorAfterReset(t *testing.T) {
	res := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""))
	for i := range 4 {
		res = scan(t, ticketOptions(res.Next, t0.Add(time.Duration(i+1)*time.Minute)), Complete, ticket("a1", fmt.Sprintf(`"v":%d`, i)))
	}
	hw := res.HighWater()
	if hw.Revision != 5 {
		t.Fatalf("HighWater().Revision = %d, want 5", hw.Revision)
	}
	// A reset drops the snapshot and keeps the marks; the next load starts above them.
	o := ticketOptions(nil, t0.Add(-time.Hour)) // the clock went back, too
	o.RevisionFloor, o.HighWater = hw.Revision, hw
	after := scan(t, o, Complete, ticket("a1", `"v":3`), ticket("b2", ""))
	want := []summary{{"a1", schema.OpSnapshot, 6, nil}, {"b2", schema.OpSnapshot, 6, nil}}
	if got := summarize(after); !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %+v, want %+v", got, want)
	}
	if after.Version() <= hw.Version {
		t.Errorf("version %d not above the high-water mark %d", after.Version(), hw.Version)
	}
	if got := after.Next.RevisionFloor(); got != 5 {
		t.Errorf("RevisionFloor() = %d, want 5", got)
	}
	// Records new to the reset lineage start above the floor too.
	later := scan(t, ticketOptions(after.Next, t0), Complete, ticket("a1", `"v":3`), ticket("b2", ""), ticket("c3", ""))
	if got := summarize(later); !reflect.DeepEqual(got, []summary{{"c3", schema.OpCreated, 6, nil}}) {
		t.Errorf("changes after the reset load: %+v", got)
	}
}

func TestScanDeletedRecordReturns(t *testing.T) {
	res := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""), ticket("b2", ""))
	res = scan(t, ticketOptions(res.Next, t0.Add(time.Minute)), Complete, ticket("b2", ""))
	if res.Next.Tombstones() != 1 || res.Next.Len() != 1 {
		t.Fatalf("after delete: %d records, %d tombstones; want 1 and 1", res.Next.Len(), res.Next.Tombstones())
	}
	if _, ok := res.Next.Lookup("a1"); ok {
		t.Error("Lookup found the deleted record")
	}
	res = scan(t, ticketOptions(res.Next, t0.Add(2*time.Minute)), Complete, ticket("a1", ""), ticket("b2", ""))
	want := []summary{{"a1", schema.OpCreated, 3, nil}}
	if got := summarize(res); !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %+v, want %+v", got, want)
	}
}

func TestScanInvalidCopyOfDeletedRecord(t *testing.T) {
	res := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""), ticket("b2", ""))
	res = scan(t, ticketOptions(res.Next, t0.Add(time.Minute)), Complete, ticket("b2", ""))
	s, err := NewScan(ticketOptions(res.Next, t0.Add(2*time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add("a1", []byte(`{"candidateId":"a1"`)); !errors.Is(err, ErrInvalidJSON) {
		t.Fatalf("Add error = %v, want ErrInvalidJSON", err)
	}
	if err := s.Add("b2", []byte(ticketJSON("b2", ""))); err != nil {
		t.Fatal(err)
	}
	next, err := s.Finish(Complete, nil)
	if err != nil {
		t.Fatal(err)
	}
	if next.Len() != 0 || next.Next.Tombstones() != 1 || next.Next.Len() != 1 {
		t.Errorf("%d changes, %d tombstones, %d records; want 0, 1, 1", next.Len(), next.Next.Tombstones(), next.Next.Len())
	}
}

func TestScanMissingConfirmation(t *testing.T) {
	first := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""), ticket("b2", ""), ticket("c3", ""), ticket("d4", ""))
	s, err := NewScan(ticketOptions(first.Next, t0.Add(time.Minute)))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add("a1", []byte(ticketJSON("a1", ""))); err != nil {
		t.Fatal(err)
	}
	if got, want := s.Missing(), []string{"b2", "c3", "d4"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Missing() = %v, want %v", got, want)
	}
	// The point lookup found b2 again, changed; c3 is gone; d4's lookup failed, so it stays.
	if err := s.Add("b2", []byte(ticketJSON("b2", `"loggedIn":true`))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finish(Complete, []string{"b2"}); !errors.Is(err, ErrNotMissing) {
		t.Fatalf("Finish with a re-added id: error = %v, want ErrNotMissing", err)
	}
	if _, err := s.Finish(Complete, []string{"zz9"}); !errors.Is(err, ErrNotMissing) {
		t.Fatalf("Finish with an unknown id: error = %v, want ErrNotMissing", err)
	}
	res, err := s.Finish(Complete, []string{"c3"})
	if err != nil {
		t.Fatal(err)
	}
	want := []summary{{"b2", schema.OpUpdated, 2, []string{"loggedIn"}}, {"c3", schema.OpDeleted, 2, nil}}
	if got := summarize(res); !reflect.DeepEqual(got, want) {
		t.Errorf("changes: got %+v, want %+v", got, want)
	}
	if _, ok := res.Next.Lookup("d4"); !ok {
		t.Error("unconfirmed missing record d4 left the snapshot")
	}
	if res.Counts.Missing != 2 {
		t.Errorf("Counts.Missing = %d, want 2 (c3 and d4)", res.Counts.Missing)
	}
	del := res.Change(1)
	if del.After != nil || !bytes.Contains(del.Before, []byte(`"candidateId":"c3"`)) {
		t.Errorf("delete images: before %s, after %s", del.Before, del.After)
	}
	if del.ContentHash != Hash(del.Before) {
		t.Error("delete content hash is not the hash of the before image")
	}
	if _, err := s.Finish(Complete, nil); !errors.Is(err, ErrScanFinished) {
		t.Errorf("second Finish: error = %v, want ErrScanFinished", err)
	}
	if err := s.Add("e5", []byte(ticketJSON("e5", ""))); !errors.Is(err, ErrScanFinished) {
		t.Errorf("Add after Finish: error = %v, want ErrScanFinished", err)
	}
}

func TestScanInvalidRecords(t *testing.T) {
	first := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""), ticket("b2", ""))
	tests := []struct {
		name string
		id   string
		raw  string
		want error
	}{
		{"invalid id", "a-1", ticketJSON("a-1", ""), ErrInvalidID},
		{"empty id", "", ticketJSON("", ""), ErrInvalidID},
		{"not JSON", "a1", `{"candidateId":"a1"`, ErrInvalidJSON},
		{"not an object", "a1", `["a1"]`, ErrNotObject},
		{"id member differs", "a1", ticketJSON("b2", ""), ErrIDMismatch},
		{"id member missing", "a1", `{"taskId":"task1"}`, ErrIDMismatch},
		{"id member not a string", "a1", `{"candidateId":1}`, ErrIDMismatch},
		{"other task", "a1", `{"candidateId":"a1","taskId":"task2"}`, ErrTaskMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewScan(ticketOptions(first.Next, t0.Add(time.Minute)))
			if err != nil {
				t.Fatal(err)
			}
			err = s.Add(tt.id, []byte(tt.raw))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Add error = %v, want %v", err, tt.want)
			}
			var re *RecordError
			if !errors.As(err, &re) || re.ID != tt.id || re.Entity != schema.EntityTicket {
				t.Fatalf("Add error %v is not a *RecordError naming %q", err, tt.id)
			}
			if err := s.Add("b2", []byte(ticketJSON("b2", ""))); err != nil {
				t.Fatal(err)
			}
			// A rejected copy of a known record keeps it: neither missing nor changed.
			wantMissing := []string{"a1"}
			if tt.id == "a1" {
				wantMissing = nil
			}
			if got := s.Missing(); !reflect.DeepEqual(got, wantMissing) {
				t.Errorf("Missing() = %v, want %v", got, wantMissing)
			}
			res, err := s.Finish(Complete, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Len() != 0 || res.Counts.Invalid != 1 {
				t.Errorf("%d changes and %d invalid, want 0 and 1", res.Len(), res.Counts.Invalid)
			}
			if r, ok := res.Next.Lookup("a1"); !ok || !bytes.Equal(r.Data, mustRecord(t, first.Next, "a1").Data) {
				t.Error("record a1 changed in the next snapshot")
			}
		})
	}
}

func mustRecord(t testing.TB, s *Snapshot, id string) Record {
	t.Helper()
	r, ok := s.Lookup(id)
	if !ok {
		t.Fatalf("record %s not in snapshot", id)
	}
	return r
}

func TestScanRawChangeOnlyUpdatesHash(t *testing.T) {
	first := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", `"labels":["x","y"]`))
	reordered := input{"a1", `{"labels":["y","x"],"loggedIn":false,"kind":"temp","taskId":"task1","candidateId":"a1"}`}
	res := scan(t, ticketOptions(first.Next, t0.Add(time.Minute)), Complete, reordered)
	if res.Len() != 0 || !res.Modified() || res.Counts.Normalized != 1 {
		t.Fatalf("changes %d, modified %v, normalized %d; want 0, true, 1", res.Len(), res.Modified(), res.Counts.Normalized)
	}
	again := scan(t, ticketOptions(res.Next, t0.Add(2*time.Minute)), Complete, reordered)
	if again.Len() != 0 || again.Modified() || again.Counts.Normalized != 0 || again.Counts.Unchanged != 1 {
		t.Errorf("second scan: changes %d, modified %v, normalized %d, unchanged %d; want 0, false, 0, 1",
			again.Len(), again.Modified(), again.Counts.Normalized, again.Counts.Unchanged)
	}
}

func TestScanVersion(t *testing.T) {
	res := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", ""))
	if got, want := res.Version(), uint64(t0.UnixMicro()); got != want {
		t.Errorf("Version() = %d, want the observation time %d", got, want)
	}
	// The clock went back an hour: the version still grows.
	back := scan(t, ticketOptions(res.Next, t0.Add(-time.Hour)), Complete, ticket("a1", `"v":1`))
	if back.Version() != res.Version()+1 {
		t.Errorf("Version() = %d after the clock went back, want %d", back.Version(), res.Version()+1)
	}
	if back.HighWater().Version != back.Version() {
		t.Errorf("HighWater().Version = %d, want %d", back.HighWater().Version, back.Version())
	}
}

func TestScanTaskEntity(t *testing.T) {
	o := Options{OrganizationID: testOrg, Entity: schema.EntityTask, ObservedAt: t0}
	res := scan(t, o, Complete, input{"t1", `{"taskId":"t1","title":"A"}`}, input{"t2", `{"taskId":"t2","title":"B"}`})
	for c := range res.All() {
		if c.TaskID != c.EntityID {
			t.Errorf("task change: TaskID %q, EntityID %q", c.TaskID, c.EntityID)
		}
		if want := "testinvite.org1." + c.EntityID + ".task.snapshot"; c.Subject() != want {
			t.Errorf("Subject() = %q, want %q", c.Subject(), want)
		}
	}
	o.TaskID = "t1"
	s, err := NewScan(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add("t2", []byte(`{"taskId":"t2"}`)); !errors.Is(err, ErrTaskMismatch) {
		t.Errorf("Add of another task: error = %v, want ErrTaskMismatch", err)
	}
}

func TestScanConcurrentScansShareSnapshot(t *testing.T) {
	var in []input
	for i := range 500 {
		in = append(in, ticket(fmt.Sprintf("r%d", i), ""))
	}
	prev := scan(t, ticketOptions(nil, t0), Complete, in...).Next
	slices.Reverse(in) // out of order, so every lookup goes through the shared index
	var wg sync.WaitGroup
	results := make([]*Result, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Go(func() {
			s, err := NewScan(ticketOptions(prev, t0.Add(time.Minute)))
			for _, r := range in {
				if err == nil {
					err = s.Add(r.id, []byte(r.raw))
				}
			}
			if err == nil {
				results[i], err = s.Finish(Complete, nil)
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("scan %d: %v", i, errs[i])
		}
		if res.Len() != 0 || res.Counts.Unchanged != 500 {
			t.Errorf("scan %d: %d changes, %d unchanged; want 0 and 500", i, res.Len(), res.Counts.Unchanged)
		}
	}
}

func TestNewScanOptions(t *testing.T) {
	prev := scan(t, ticketOptions(nil, t0), Complete, ticket("a1", "")).Next
	tests := []struct {
		name string
		edit func(o *Options)
		want error
	}{
		{"bad organization", func(o *Options) { o.OrganizationID = "o.1" }, ErrInvalidOptions},
		{"bad task", func(o *Options) { o.TaskID = "" }, ErrInvalidOptions},
		{"bad entity", func(o *Options) { o.Entity = "candidate" }, ErrInvalidOptions},
		{"zero time", func(o *Options) { o.ObservedAt = time.Time{} }, ErrInvalidOptions},
		{"snapshot of another task", func(o *Options) { o.TaskID = "task2"; o.Prev = prev }, ErrSnapshotMismatch},
		{"snapshot of another entity", func(o *Options) { o.Entity = schema.EntityTestSession; o.Prev = prev }, ErrSnapshotMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ticketOptions(nil, t0)
			tt.edit(&o)
			if _, err := NewScan(o); !errors.Is(err, tt.want) {
				t.Errorf("NewScan error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestScanCompactsSharedChunks(t *testing.T) {
	in := make([]input, 200)
	for i := range in {
		in[i] = ticket(fmt.Sprintf("r%03d", i), `"pad":"`+strings.Repeat("x", 1000)+`"`)
	}
	res := scan(t, ticketOptions(nil, t0), Complete, in...)
	// Rewrite every record many times; without compaction the chunks would keep every version.
	for round := range 60 {
		for i := range in {
			in[i] = ticket(fmt.Sprintf("r%03d", i), fmt.Sprintf(`"round":%d,"pad":"%s"`, round, strings.Repeat("y", 1000)))
		}
		res = scan(t, ticketOptions(res.Next, t0.Add(time.Duration(round+1)*time.Minute)), Complete, in...)
	}
	var total int64
	for _, c := range res.Next.chunks {
		total += int64(len(c))
	}
	if limit := 2*res.Next.RecordBytes() + 9<<20; total > limit {
		t.Errorf("snapshot chunks hold %d bytes for %d live bytes; want at most %d", total, res.Next.RecordBytes(), limit)
	}
}

// TestChangeGolden pins the event payloads of a small history of one ticket and one test session.
func TestChangeGolden(t *testing.T) {
	var buf bytes.Buffer
	write := func(res *Result) {
		for c := range res.All() {
			b, err := json.Marshal(struct {
				EventID string      `json:"event_id"`
				Subject string      `json:"subject"`
				Data    schema.Data `json:"data"`
			}{c.EventID, c.Subject(), c.Data()})
			if err != nil {
				t.Fatal(err)
			}
			buf.Write(b)
			buf.WriteByte('\n')
		}
	}
	tickets := [][]input{
		{ticket("a1", `"labels":["b","a"],"activeAfter":1.7383680e9,"rating":null`), ticket("b2", "")},
		{ticket("a1", `"labels":["a","b"],"activeAfter":1738368000,"rating":4`), ticket("c3", `"email":"c@x.io"`)},
	}
	res := (*Result)(nil)
	for i, in := range tickets {
		var prev *Snapshot
		if res != nil {
			prev = res.Next
		}
		res = scan(t, ticketOptions(prev, t0.Add(time.Duration(i)*time.Minute)), Complete, in...)
		write(res)
	}
	o := Options{OrganizationID: testOrg, TaskID: testTask, Entity: schema.EntityTestSession, ObservedAt: t0}
	sess := scan(t, o, Complete, input{"s1", `{"testInstanceId":"s1","taskId":"task1","status":"STARTED","result":false}`})
	write(sess)
	o.Prev, o.ObservedAt = sess.Next, t0.Add(time.Minute)
	write(scan(t, o, Complete, input{"s1", `{"testInstanceId":"s1","taskId":"task1","status":"COMPLETE",` +
		`"result":{"completedAt":1738368000.0,"scoreboard":{"achievementRatio":0.840,"pointsAchieved":42.0}}}`}))

	golden(t, "changes.golden", buf.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output; run go test -update to accept it:\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

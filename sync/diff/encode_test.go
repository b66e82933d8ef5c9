package diff

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
	"time"
)

func encode(t testing.TB, s *Snapshot) []byte {
	t.Helper()
	var buf bytes.Buffer
	n, err := s.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

// history builds a snapshot with updates, a tombstone and a revision floor.
func history(t testing.TB) *Snapshot {
	o := ticketOptions(nil, t0)
	o.RevisionFloor = 3
	res := scan(t, o, Complete, ticket("a1", `"labels":["b","a"]`), ticket("b2", ""), ticket("c3", `"s":"é\n"`))
	res = scan(t, ticketOptions(res.Next, t0.Add(time.Minute)), Complete, ticket("a1", `"labels":["c"]`), ticket("c3", `"s":"é\n"`), ticket("d4", ""))
	return res.Next
}

func TestSnapshotRoundTrip(t *testing.T) {
	orig := history(t)
	got, err := ReadSnapshot(bytes.NewReader(encode(t, orig)))
	if err != nil {
		t.Fatalf("ReadSnapshot: %v", err)
	}
	if got.OrganizationID() != testOrg || got.TaskID() != testTask || got.Entity() != orig.Entity() {
		t.Errorf("key %s/%s/%s", got.OrganizationID(), got.TaskID(), got.Entity())
	}
	if got.Len() != orig.Len() || got.Tombstones() != 1 || got.RecordBytes() != orig.RecordBytes() {
		t.Errorf("decoded %d records, %d tombstones, %d bytes; want %d, 1, %d", got.Len(), got.Tombstones(), got.RecordBytes(), orig.Len(), orig.RecordBytes())
	}
	if got.HighWater() != orig.HighWater() || got.RevisionFloor() != 3 || !got.LastComplete().Equal(orig.LastComplete()) {
		t.Errorf("marks %+v floor %d last %v; want %+v 3 %v", got.HighWater(), got.RevisionFloor(), got.LastComplete(), orig.HighWater(), orig.LastComplete())
	}
	var a, b []Record
	for r := range orig.Records() {
		a = append(a, r)
	}
	for r := range got.Records() {
		b = append(b, r)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("records differ:\n got %+v\nwant %+v", b, a)
	}
	// Diffing against the decoded snapshot gives what diffing against the original gives.
	in := []input{ticket("a1", `"labels":["c"]`), ticket("b2", ""), ticket("d4", `"x":1`)}
	r1 := scan(t, ticketOptions(orig, t0.Add(time.Hour)), Complete, in...)
	r2 := scan(t, ticketOptions(got, t0.Add(time.Hour)), Complete, in...)
	if !reflect.DeepEqual(summarize(r1), summarize(r2)) {
		t.Errorf("changes against the decoded snapshot %+v, against the original %+v", summarize(r2), summarize(r1))
	}
	if r2.Counts.Normalized != 2 {
		t.Errorf("Counts.Normalized = %d, want 2: raw hashes were not kept", r2.Counts.Normalized)
	}
	if want := []summary{{"b2", "created", 6, nil}, {"c3", "deleted", 5, nil}, {"d4", "updated", 5, []string{"x"}}}; !reflect.DeepEqual(summarize(r2), want) {
		t.Errorf("changes %+v, want %+v", summarize(r2), want)
	}
}

func TestSnapshotEmptyRoundTrip(t *testing.T) {
	empty := scan(t, ticketOptions(nil, t0), Partial).Next
	got, err := ReadSnapshot(bytes.NewReader(encode(t, empty)))
	if err != nil {
		t.Fatalf("ReadSnapshot: %v", err)
	}
	if got.Len() != 0 || !got.LastComplete().IsZero() {
		t.Errorf("decoded %d records, last complete %v", got.Len(), got.LastComplete())
	}
}

func TestReadSnapshotRejects(t *testing.T) {
	good := encode(t, history(t))
	flip := func(i int) []byte {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		return b
	}
	version := bytes.Clone(good)
	binary.LittleEndian.PutUint32(version[8:], 2)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, ErrCorruptSnapshot},
		{"bad magic", flip(0), ErrCorruptSnapshot},
		{"unknown version", version, ErrUnknownFormat},
		{"header damaged", flip(20), ErrCorruptSnapshot},
		{"column damaged", flip(len(good) - 200), ErrCorruptSnapshot},
		{"record damaged", flip(len(good) - 20), ErrCorruptSnapshot},
		{"checksum damaged", flip(len(good) - 1), ErrCorruptSnapshot},
		{"truncated", good[:len(good)-9], ErrCorruptSnapshot},
		{"trailing data", append(bytes.Clone(good), 0), ErrCorruptSnapshot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ReadSnapshot(bytes.NewReader(tt.in)); !errors.Is(err, tt.want) {
				t.Errorf("ReadSnapshot error = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzReadSnapshot checks that the decoder never panics on damaged input and that whatever it
// accepts encodes back to the same bytes.
func FuzzReadSnapshot(f *testing.F) {
	f.Add(encode(f, history(f)))
	f.Add(encode(f, scan(f, ticketOptions(nil, t0), Partial).Next))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := ReadSnapshot(bytes.NewReader(in))
		if err != nil {
			return
		}
		if out := encode(t, s); !bytes.Equal(out, in) {
			t.Fatalf("decoded snapshot encodes to %d other bytes", len(out))
		}
	})
}

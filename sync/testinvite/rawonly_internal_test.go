package testinvite

import (
	"bytes"
	"errors"
	"testing"
)

func TestMemberString(t *testing.T) {
	tests := []struct {
		name    string
		record  string
		want    string
		wantErr bool
	}{
		{"first member", `{"candidateId":"abc","taskId":"t1"}`, "abc", false},
		{"after nested values", `{"tags":{"candidateId":"nested"},"labels":["x"],"candidateId":"top"}`, "top", false},
		{"whitespace", " {\n \"a\" : 1 ,\n \"candidateId\" : \"w\" }", "w", false},
		{"escaped value", `{"candidateId":"a\u0062c"}`, "abc", false},
		{"null", `{"candidateId":null}`, "", false},
		{"missing", `{"taskId":"t1"}`, "", false},
		{"empty object", `{}`, "", false},
		{"number", `{"candidateId":12}`, "", true},
		{"not an object", `["candidateId"]`, "", true},
		{"truncated", `{"candidateId":"ab`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := memberString([]byte(tt.record), "candidateId")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDecodePageRawOnlyMatchesTyped(t *testing.T) {
	body := []byte(`{"candidates":[
		{"candidateId":"c1","taskId":"t1","loggedIn":true,"labels":["b","a"],"unknown":{"x":1}},
		{"candidateId":"c2","taskId":"t1","loggedIn":"yes"}
	],"pagination":{"totalItems":2,"totalPages":1,"currentPage":1,"limit":10,"next":null,"previous":null}}`)
	typed, pgTyped, err := decodePage[Candidate]("test", body, false)
	if err != nil {
		t.Fatal(err)
	}
	raw, pgRaw, err := decodePage[Candidate]("test", body, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(typed) || pgRaw != pgTyped {
		t.Fatalf("raw-only page: %d records, pagination %+v; typed: %d, %+v", len(raw), pgRaw, len(typed), pgTyped)
	}
	for i := range raw {
		if raw[i].ID != typed[i].ID || !bytes.Equal(raw[i].Raw, typed[i].Raw) {
			t.Errorf("record %d: raw-only %q %s, typed %q %s", i, raw[i].ID, raw[i].Raw, typed[i].ID, typed[i].Raw)
		}
	}
	if raw[0].LoggedIn {
		t.Error("raw-only decoding filled a typed field")
	}
}

func TestDecodePageRawOnlyRejectsRecordWithoutID(t *testing.T) {
	body := []byte(`{"testInstances":[{"taskId":"t1"}],"pagination":{"totalItems":1,"totalPages":1,"currentPage":1,"limit":10,"next":null,"previous":null}}`)
	_, _, err := decodePage[TestInstance]("test", body, true)
	var decodeErr *DecodeError
	if !errors.As(err, &decodeErr) {
		t.Fatalf("err = %v, want *DecodeError", err)
	}
}

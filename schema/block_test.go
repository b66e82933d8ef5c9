package schema_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tisync/tisync/schema"
	"github.com/tisync/tisync/schema/schematest"
)

// TestDecodeRowsMatchesRows checks that the one-pass decoding into blocks produces the rows of
// DecodeEvent and Rows, value for value and with the same Go types.
func TestDecodeRowsMatchesRows(t *testing.T) {
	for i, b := range corpus() {
		ev, err := schema.DecodeEvent(b)
		if err != nil {
			t.Fatalf("event %d: DecodeEvent: %v", i, err)
		}
		rows, err := schema.Rows(&ev)
		if err != nil {
			t.Fatalf("event %d: Rows: %v", i, err)
		}
		d, err := schema.DecodeRows(b)
		if err != nil {
			t.Fatalf("event %d: DecodeRows: %v", i, err)
		}
		if d.EventID() != ev.ID || d.Entity() != ev.Data.Entity {
			t.Errorf("event %d: DecodeRows returned event %s of %s, want %s of %s", i, d.EventID(), d.Entity(), ev.ID, ev.Data.Entity)
		}
		for _, want := range []schema.Row{rows.Entity, rows.Change} {
			blk := schema.NewBlock(want.Table)
			if !blk.AddDecoded(d) {
				t.Fatalf("event %d: AddDecoded added nothing to %s", i, want.Table)
			}
			columns := schema.Columns(want.Table)
			for c, values := range blk.Values() {
				got := reflect.ValueOf(values).Index(0).Interface()
				if !reflect.DeepEqual(got, want.Values[c]) {
					t.Errorf("event %d: %s.%s = %#v from DecodeRows, %#v from Rows", i, want.Table, columns[c], got, want.Values[c])
				}
			}
		}
	}
}

func TestBlockAddDecodedOnlyOwnTable(t *testing.T) {
	d, err := schema.DecodeRows(schematest.Encode(allKinds()["ticket.created"]))
	if err != nil {
		t.Fatal(err)
	}
	for _, table := range schema.Tables {
		blk := schema.NewBlock(table)
		added := blk.AddDecoded(d)
		want := table == schema.TableTickets || table == schema.TableChangeEvents
		if added != want || blk.Len() != map[bool]int{true: 1}[want] {
			t.Errorf("%s: AddDecoded = %v with %d rows, want %v", table, added, blk.Len(), want)
		}
	}
}

func TestBlockAddRowRejectsWrongTypes(t *testing.T) {
	ev := allKinds()["test_session.updated"]
	rows, err := schema.Rows(&ev)
	if err != nil {
		t.Fatal(err)
	}
	blk := schema.NewBlock(schema.TableTestSessions)
	if err := blk.AddRow(rows.Entity); err != nil {
		t.Fatalf("AddRow: %v", err)
	}

	cases := []struct {
		name string
		row  schema.Row
		want string
	}{
		{"other table", rows.Change, "change_events"},
		{"missing value", schema.Row{Table: schema.TableTestSessions, Values: rows.Entity.Values[:3]}, "3 values"},
		{"wrong type", func() schema.Row {
			values := append([]any{}, rows.Entity.Values...)
			values[len(values)-1] = 42 // raw is a String column
			return schema.Row{Table: schema.TableTestSessions, Values: values}
		}(), "column raw"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := blk.AddRow(tc.row)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AddRow error = %v, want one naming %q", err, tc.want)
			}
			if blk.Err() == nil {
				t.Error("Err is nil after a rejected row")
			}
			if blk.Len() != 1 {
				t.Errorf("Len = %d after a rejected row, want 1", blk.Len())
			}
			for c, values := range blk.Values() {
				if n := reflect.ValueOf(values).Len(); n != 1 {
					t.Errorf("column %s holds %d values, want 1", schema.Columns(schema.TableTestSessions)[c], n)
				}
			}
		})
	}

	blk.Reset()
	if blk.Len() != 0 || blk.Err() != nil {
		t.Errorf("after Reset: Len %d, Err %v, want 0 and nil", blk.Len(), blk.Err())
	}
	if n := reflect.ValueOf(blk.Values()[0]).Len(); n != 0 {
		t.Errorf("after Reset the first column holds %d values", n)
	}
}

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tisync/tisync/schema"
)

// assertMatchesTruth checks the current-state views against the truth: the raw column of every
// record, the number of records of each entity, and the typed columns that analytics use.
func assertMatchesTruth(t *testing.T, w *warehouse, tr truth) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	got, err := w.current(ctx)
	if err != nil {
		t.Fatalf("read current state: %v", err)
	}
	if n, lines := stateDiff(got, tr.records, 10); n > 0 {
		t.Errorf("current state differs from the truth in %d records:\n%s", n, strings.Join(lines, "\n"))
		logHistories(t, ctx, w, got, tr.records, 5)
	}
	for _, e := range []schema.Entity{schema.EntityTask, schema.EntityTicket, schema.EntityTestSession} {
		if g, want := got.count(e), tr.records.count(e); g != want {
			t.Errorf("%s: %d current rows, want %d", e, g, want)
		}
	}
	assertTypedColumns(t, ctx, w, tr)
}

// logHistories logs the change_events rows of up to limit records whose state differs.
func logHistories(t *testing.T, ctx context.Context, w *warehouse, got, want state, limit int) {
	t.Helper()
	var keys []recordKey
	for k, g := range got {
		if want[k] != g {
			keys = append(keys, k)
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys[:min(limit, len(keys))] {
		rows, err := w.conn.Query(ctx, "SELECT op, revision, observed_at, inserted_at, event_id FROM "+w.db+
			".change_events FINAL WHERE entity = ? AND entity_id = ? ORDER BY revision", string(k.entity), k.id)
		if err != nil {
			t.Logf("history of %s: %v", k, err)
			continue
		}
		var lines []string
		for rows.Next() {
			var op, eventID string
			var revision uint64
			var observed, inserted time.Time
			if err := rows.Scan(&op, &revision, &observed, &inserted, &eventID); err != nil {
				t.Logf("history of %s: %v", k, err)
				break
			}
			lines = append(lines, fmt.Sprintf("  %s revision %d observed %s inserted %s event %s", op, revision,
				observed.UTC().Format(time.TimeOnly), inserted.UTC().Format(time.TimeOnly), eventID))
		}
		rows.Close()
		t.Logf("change_events of %s:\n%s", k, strings.Join(lines, "\n"))
	}
}

// assertTypedColumns compares typed columns of every current row with the fields of the truth
// record they come from.
func assertTypedColumns(t *testing.T, ctx context.Context, w *warehouse, tr truth) {
	t.Helper()
	checked := map[schema.Entity]int{}
	bad := 0
	mismatch := func(k recordKey, column string, got, want any) {
		if bad++; bad <= 10 {
			t.Errorf("%s: column %s is %v, want %v", k, column, got, want)
		}
	}

	rows, err := w.conn.Query(ctx, "SELECT ticket_id, logged_in, group_name, labels FROM "+w.db+".tickets_current")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, group string
		var loggedIn uint8
		var labels []string
		if err := rows.Scan(&id, &loggedIn, &group, &labels); err != nil {
			t.Fatal(err)
		}
		k := recordKey{schema.EntityTicket, id}
		raw, ok := tr.records[k]
		if !ok {
			continue // reported by the raw comparison
		}
		var want struct {
			LoggedIn bool     `json:"loggedIn"`
			Group    string   `json:"group"`
			Labels   []string `json:"labels"`
		}
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		if (loggedIn == 1) != want.LoggedIn {
			mismatch(k, "logged_in", loggedIn, want.LoggedIn)
		}
		if group != want.Group {
			mismatch(k, "group_name", group, want.Group)
		}
		if !slices.Equal(labels, want.Labels) && !(len(labels) == 0 && len(want.Labels) == 0) {
			mismatch(k, "labels", labels, want.Labels)
		}
		checked[k.entity]++
	}
	rows.Close()

	rows, err = w.conn.Query(ctx, "SELECT test_session_id, status, ignored, has_result, achievement_ratio, completed_at FROM "+w.db+".test_sessions_current")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, status string
		var ignored, hasResult uint8
		var ratio *float64
		var completedAt *time.Time
		if err := rows.Scan(&id, &status, &ignored, &hasResult, &ratio, &completedAt); err != nil {
			t.Fatal(err)
		}
		k := recordKey{schema.EntityTestSession, id}
		raw, ok := tr.records[k]
		if !ok {
			continue
		}
		var want struct {
			Status  string `json:"status"`
			Ignored bool   `json:"ignored"`
			Result  *struct {
				CompletedAt int64 `json:"completedAt"`
				Scoreboard  struct {
					AchievementRatio float64 `json:"achievementRatio"`
				} `json:"scoreboard"`
			} `json:"result"`
		}
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		if status != want.Status {
			mismatch(k, "status", status, want.Status)
		}
		if (ignored == 1) != want.Ignored {
			mismatch(k, "ignored", ignored, want.Ignored)
		}
		if (hasResult == 1) != (want.Result != nil) {
			mismatch(k, "has_result", hasResult, want.Result != nil)
		}
		switch {
		case want.Result == nil && (ratio != nil || completedAt != nil):
			mismatch(k, "achievement_ratio and completed_at", "set", "NULL")
		case want.Result != nil && (ratio == nil || *ratio != want.Result.Scoreboard.AchievementRatio):
			mismatch(k, "achievement_ratio", ratio, want.Result.Scoreboard.AchievementRatio)
		case want.Result != nil && (completedAt == nil || completedAt.Unix() != want.Result.CompletedAt):
			mismatch(k, "completed_at", completedAt, time.Unix(want.Result.CompletedAt, 0).UTC())
		}
		checked[k.entity]++
	}
	rows.Close()

	rows, err = w.conn.Query(ctx, "SELECT task_id, title, length(steps.id) FROM "+w.db+".tasks_current")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, title string
		var steps uint64
		if err := rows.Scan(&id, &title, &steps); err != nil {
			t.Fatal(err)
		}
		k := recordKey{schema.EntityTask, id}
		raw, ok := tr.records[k]
		if !ok {
			continue
		}
		var want struct {
			Title string            `json:"title"`
			Steps []json.RawMessage `json:"steps"`
		}
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		if title != want.Title {
			mismatch(k, "title", title, want.Title)
		}
		if int(steps) != len(want.Steps) {
			mismatch(k, "steps.id", steps, len(want.Steps))
		}
		checked[k.entity]++
	}
	rows.Close()

	if bad > 10 {
		t.Errorf("%d typed column mismatches in all", bad)
	}
	for _, e := range []schema.Entity{schema.EntityTask, schema.EntityTicket, schema.EntityTestSession} {
		if checked[e] == 0 && tr.records.count(e) > 0 {
			t.Errorf("typed columns of %s: no row checked", e)
		}
	}
}

// duplicateReport counts the physical rows and the distinct event ids of change_events before
// OPTIMIZE.
type duplicateReport struct {
	rowsBefore, idsBefore uint64
}

// assertNoDuplicates checks that change_events contains every event id once, through FINAL and after
// OPTIMIZE TABLE ... FINAL, and that the entity tables hold one row per record through FINAL. It
// returns the physical row and event id counts found before OPTIMIZE, which show whether
// ClickHouse received an event twice.
func assertNoDuplicates(t *testing.T, w *warehouse) duplicateReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rep duplicateReport
	var err error
	rep.rowsBefore, rep.idsBefore, err = w.uint64Pair(ctx, "SELECT count(), uniqExact(event_id) FROM "+w.db+".change_events")
	if err != nil {
		t.Fatal(err)
	}

	rows, ids, err := w.uint64Pair(ctx, "SELECT count(), uniqExact(event_id) FROM "+w.db+".change_events FINAL")
	if err != nil {
		t.Fatal(err)
	}
	if rows != ids {
		t.Errorf("change_events FINAL: %d rows for %d event ids", rows, ids)
	}
	if ids != rep.idsBefore {
		t.Errorf("change_events: %d event ids through FINAL, %d without", ids, rep.idsBefore)
	}

	for _, table := range []struct{ name, id string }{{"tasks", "task_id"}, {"tickets", "ticket_id"}, {"test_sessions", "test_session_id"}} {
		rows, ids, err := w.uint64Pair(ctx, "SELECT count(), uniqExact("+table.id+") FROM "+w.db+"."+table.name+" FINAL")
		if err != nil {
			t.Fatal(err)
		}
		if rows != ids {
			t.Errorf("%s FINAL: %d rows for %d records", table.name, rows, ids)
		}
	}

	if err := w.exec(ctx, "OPTIMIZE TABLE "+w.db+".change_events FINAL"); err != nil {
		t.Fatalf("optimize change_events: %v", err)
	}
	rows, ids, err = w.uint64Pair(ctx, "SELECT count(), uniqExact(event_id) FROM "+w.db+".change_events")
	if err != nil {
		t.Fatal(err)
	}
	if rows != ids {
		t.Errorf("change_events after OPTIMIZE FINAL: %d rows for %d event ids", rows, ids)
	}
	if ids != rep.idsBefore {
		t.Errorf("change_events after OPTIMIZE FINAL: %d event ids, %d before", ids, rep.idsBefore)
	}
	return rep
}

// assertTransitions checks that change_events contains every state the test recorded after the
// system had caught up. Each record of each recorded state needs an event whose after image is that
// state, and each record that the next state lacks needs a deleted event.
func assertTransitions(t *testing.T, changes []changeRow, rounds []state) {
	t.Helper()
	afters := map[recordKey]map[string]bool{}
	deleted := map[recordKey]bool{}
	for _, c := range changes {
		k := recordKey{c.entity, c.id}
		if c.op == string(schema.OpDeleted) {
			deleted[k] = true
			continue
		}
		if afters[k] == nil {
			afters[k] = map[string]bool{}
		}
		afters[k][c.after] = true
	}
	missing := 0
	for i, round := range rounds {
		for k, want := range round {
			if afters[k][want] {
				continue
			}
			if missing++; missing <= 10 {
				t.Errorf("state %d: no event of %s has the after image %s", i, k, want)
			}
		}
		if i+1 == len(rounds) {
			continue
		}
		for k := range round {
			if _, still := rounds[i+1][k]; still || deleted[k] {
				continue
			}
			if missing++; missing <= 10 {
				t.Errorf("state %d: %s is gone in state %d but has no deleted event", i, k, i+1)
			}
		}
	}
	if missing > 10 {
		t.Errorf("%d transitions missing from change_events in all", missing)
	}
}

// assertNoFalseDeletes checks every deleted event: the record is absent from the final truth, and
// no later event of the record exists, since the simulator never brings an id back. It returns the
// number of deleted events.
func assertNoFalseDeletes(t *testing.T, changes []changeRow, final truth) int {
	t.Helper()
	deletedAt := map[recordKey]uint64{}
	for _, c := range changes {
		if c.op != string(schema.OpDeleted) {
			continue
		}
		k := recordKey{c.entity, c.id}
		deletedAt[k] = max(deletedAt[k], c.revision)
		if _, exists := final.records[k]; exists {
			t.Errorf("false delete: %s has a deleted event (revision %d) but still exists", k, c.revision)
		}
	}
	for _, c := range changes {
		k := recordKey{c.entity, c.id}
		if rev, ok := deletedAt[k]; ok && c.op != string(schema.OpDeleted) && c.revision > rev {
			t.Errorf("false delete: %s was deleted at revision %d and %s again at revision %d", k, rev, c.op, c.revision)
		}
	}
	return len(deletedAt)
}

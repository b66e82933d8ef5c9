package schema

import (
	"time"
)

// Names of the ClickHouse tables the sink writes.
const (
	TableTasks        = "tasks"
	TableTickets      = "tickets"
	TableTestSessions = "test_sessions"
	TableChangeEvents = "change_events"
)

// Tables lists the tables Rows produces rows for, in the order the sink inserts them.
var Tables = []string{TableTasks, TableTickets, TableTestSessions, TableChangeEvents}

// EntityTable returns the current-state table of an entity, or "" for an invalid entity.
func EntityTable(e Entity) string {
	switch e {
	case EntityTask:
		return TableTasks
	case EntityTicket:
		return TableTickets
	case EntityTestSession:
		return TableTestSessions
	}
	return ""
}

// Row is one ClickHouse row: the table it belongs to and its values in the order of
// Columns(Table), typed as clickhouse-go expects them for the column types of the migrations.
type Row struct {
	Table  string
	Values []any
}

// EventRows are the rows one event produces: the new version of the record for its entity table
// and the event itself for change_events.
type EventRows struct {
	Entity Row
	Change Row
}

// Columns returns the insert column list of a table, in the order of Row.Values, or nil for a table
// Rows does not write. Columns with a DEFAULT (inserted_at) are left out. The caller must not modify
// the returned slice.
func Columns(table string) []string {
	return columnNames[table]
}

// rowHead is the part of an entity row that comes from the event rather than from the record.
type rowHead struct {
	organizationID, taskID, entityID string
	version, revision                uint64
	isDeleted                        uint8
	op, eventID, contentHash         string
	observedAt                       time.Time
}

// taskRow is one row of the tasks table, each field typed as its column's values.
type taskRow struct {
	head                                      rowHead
	title                                     string
	createdAt                                 time.Time
	favorite                                  uint8
	folder                                    string
	labels, tagKeys, tagValues                []string
	lang, accessMethod                        string
	active                                    uint8
	activeAfter, activeBefore                 *time.Time
	steps                                     stepColumns
	programUUIDs, programNames                []string
	stageUUIDs, stageNames                    []string
	emailTemplateNames, emailTemplateSubjects []string
	privateChatEnabled                        uint8
	raw                                       string

	// Checked against the event, not stored.
	recordID, organizationIDField string
	// times holds what activeAfter and activeBefore point to.
	times [2]time.Time
}

// stepColumns are the values of the steps Nested columns of one task, one element per step.
type stepColumns struct {
	id, title                                  []string
	active                                     []uint8
	activeAfter, activeBefore                  []*time.Time
	attemptLimit                               []int64
	testID, testOrganizationID, testSource     []string
	webcamRecording, screenRecording           []string
	fullscreen, postAIProctoring, practiceMode []uint8
}

// ticketRow is one row of the tickets table.
type ticketRow struct {
	head                                             rowHead
	kind                                             string
	loggedIn                                         uint8
	fullname, email, invitationCode, directAccessURL *string
	source                                           string
	active                                           uint8
	activeAfter, activeBefore                        *time.Time
	group                                            string
	labels, tagKeys, tagValues                       []string
	rating                                           *uint8
	stage                                            *string
	raw                                              string

	recordID, taskIDField, organizationIDField string
	// times, strs and ratingValue hold what the pointer fields point to, so that a row needs no
	// allocation for them.
	times       [2]time.Time
	strs        [5]string
	ratingValue uint8
}

// testSessionRow is one row of the test_sessions table.
type testSessionRow struct {
	head                                            rowHead
	stepID, ticketID, status                        string
	ignored                                         uint8
	candidateID, candidateKind                      string
	folder, group                                   string
	labels, tagKeys, tagValues                      []string
	hasResult                                       uint8
	completedAt                                     *time.Time
	pointsAchieved, maxAchievablePoints, ratio      *float64
	noOfQuestions                                   *uint32
	resultSections, resultDimensions, resultEffects string
	raw                                             string

	recordID, taskIDField, organizationIDField string
	// result holds the values the pointers above point to, so that a row needs no allocation
	// for them.
	result struct {
		completedAt              time.Time
		points, maxPoints, ratio float64
		noOfQuestions            uint32
	}
}

// changeRow is one row of the change_events table.
type changeRow struct {
	organizationID, taskID, entity, entityID, eventID, op string
	revision, version                                     uint64
	observedAt, eventTime                                 time.Time
	changedFields                                         []string
	before, after                                         string
	contentHash, ticketID, stepID                         string
	statusBefore, statusAfter                             string
}

// column is one insert column of a table whose rows are of type R: its name and how its value is
// read from a row. The column lists below are the only place that defines which columns an insert
// names and what goes into them. A test compares them with the migrated tables in system.columns.
type column[R any] struct {
	name string
	// value returns the value boxed, as Row.Values holds it.
	value func(r *R) any
	// ops appends values to the column's typed slice in a Block.
	ops columnOps
	// add appends the value of r to values, a *[]T made by ops.newValues.
	add func(values any, r *R)
}

// columnOps are the operations of a Block on one column's typed slice, independent of the row type.
type columnOps struct {
	// newValues returns a new empty *[]T.
	newValues func() any
	// addBoxed appends v to values when v is a T, and reports whether it was.
	addBoxed func(values, v any) bool
	// slice returns the []T that values points to.
	slice func(values any) any
	// truncate cuts values to its first n elements.
	truncate func(values any, n int)
	// reset empties values, keeping its memory.
	reset func(values any)
}

// col returns the column name whose values of type T are read from a row by f.
func col[R, T any](name string, f func(r *R) T) column[R] {
	return column[R]{
		name:  name,
		value: func(r *R) any { return f(r) },
		add: func(values any, r *R) {
			p := values.(*[]T)
			*p = append(*p, f(r))
		},
		ops: columnOps{
			newValues: func() any { return new([]T) },
			addBoxed: func(values, v any) bool {
				t, ok := v.(T)
				if ok {
					p := values.(*[]T)
					*p = append(*p, t)
				}
				return ok
			},
			slice: func(values any) any { return *values.(*[]T) },
			truncate: func(values any, n int) {
				p := values.(*[]T)
				clear((*p)[n:])
				*p = (*p)[:n]
			},
			reset: func(values any) {
				p := values.(*[]T)
				clear(*p)
				*p = (*p)[:0]
			},
		},
	}
}

// head returns the leading columns every entity table shares, after the entity id column.
func head[R any](h func(r *R) *rowHead) []column[R] {
	return []column[R]{
		col("version", func(r *R) uint64 { return h(r).version }),
		col("revision", func(r *R) uint64 { return h(r).revision }),
		col("is_deleted", func(r *R) uint8 { return h(r).isDeleted }),
		col("op", func(r *R) string { return h(r).op }),
		col("event_id", func(r *R) string { return h(r).eventID }),
		col("content_hash", func(r *R) string { return h(r).contentHash }),
		col("observed_at", func(r *R) time.Time { return h(r).observedAt }),
	}
}

func concat[R any](parts ...[]column[R]) []column[R] {
	var out []column[R]
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var taskColumns = concat(
	[]column[taskRow]{
		col("organization_id", func(r *taskRow) string { return r.head.organizationID }),
		col("task_id", func(r *taskRow) string { return r.head.taskID }),
	},
	head(func(r *taskRow) *rowHead { return &r.head }),
	[]column[taskRow]{
		col("title", func(r *taskRow) string { return r.title }),
		col("created_at", func(r *taskRow) time.Time { return r.createdAt }),
		col("favorite", func(r *taskRow) uint8 { return r.favorite }),
		col("folder", func(r *taskRow) string { return r.folder }),
		col("labels", func(r *taskRow) []string { return r.labels }),
		col("tag_keys", func(r *taskRow) []string { return r.tagKeys }),
		col("tag_values", func(r *taskRow) []string { return r.tagValues }),
		col("lang", func(r *taskRow) string { return r.lang }),
		col("access_method", func(r *taskRow) string { return r.accessMethod }),
		col("active", func(r *taskRow) uint8 { return r.active }),
		col("active_after", func(r *taskRow) *time.Time { return r.activeAfter }),
		col("active_before", func(r *taskRow) *time.Time { return r.activeBefore }),
		col("steps.id", func(r *taskRow) []string { return r.steps.id }),
		col("steps.title", func(r *taskRow) []string { return r.steps.title }),
		col("steps.active", func(r *taskRow) []uint8 { return r.steps.active }),
		col("steps.active_after", func(r *taskRow) []*time.Time { return r.steps.activeAfter }),
		col("steps.active_before", func(r *taskRow) []*time.Time { return r.steps.activeBefore }),
		col("steps.attempt_limit", func(r *taskRow) []int64 { return r.steps.attemptLimit }),
		col("steps.test_id", func(r *taskRow) []string { return r.steps.testID }),
		col("steps.test_organization_id", func(r *taskRow) []string { return r.steps.testOrganizationID }),
		col("steps.test_source", func(r *taskRow) []string { return r.steps.testSource }),
		col("steps.webcam_recording", func(r *taskRow) []string { return r.steps.webcamRecording }),
		col("steps.screen_recording", func(r *taskRow) []string { return r.steps.screenRecording }),
		col("steps.fullscreen", func(r *taskRow) []uint8 { return r.steps.fullscreen }),
		col("steps.post_ai_proctoring", func(r *taskRow) []uint8 { return r.steps.postAIProctoring }),
		col("steps.practice_mode", func(r *taskRow) []uint8 { return r.steps.practiceMode }),
		col("program_uuids", func(r *taskRow) []string { return r.programUUIDs }),
		col("program_names", func(r *taskRow) []string { return r.programNames }),
		col("stage_uuids", func(r *taskRow) []string { return r.stageUUIDs }),
		col("stage_names", func(r *taskRow) []string { return r.stageNames }),
		col("email_template_names", func(r *taskRow) []string { return r.emailTemplateNames }),
		col("email_template_subjects", func(r *taskRow) []string { return r.emailTemplateSubjects }),
		col("private_chat_enabled", func(r *taskRow) uint8 { return r.privateChatEnabled }),
		col("raw", func(r *taskRow) string { return r.raw }),
	},
)

var ticketColumns = concat(
	[]column[ticketRow]{
		col("organization_id", func(r *ticketRow) string { return r.head.organizationID }),
		col("task_id", func(r *ticketRow) string { return r.head.taskID }),
		col("ticket_id", func(r *ticketRow) string { return r.head.entityID }),
	},
	head(func(r *ticketRow) *rowHead { return &r.head }),
	[]column[ticketRow]{
		col("kind", func(r *ticketRow) string { return r.kind }),
		col("logged_in", func(r *ticketRow) uint8 { return r.loggedIn }),
		col("fullname", func(r *ticketRow) *string { return r.fullname }),
		col("email", func(r *ticketRow) *string { return r.email }),
		col("invitation_code", func(r *ticketRow) *string { return r.invitationCode }),
		col("direct_access_url", func(r *ticketRow) *string { return r.directAccessURL }),
		col("source", func(r *ticketRow) string { return r.source }),
		col("active", func(r *ticketRow) uint8 { return r.active }),
		col("active_after", func(r *ticketRow) *time.Time { return r.activeAfter }),
		col("active_before", func(r *ticketRow) *time.Time { return r.activeBefore }),
		col("group_name", func(r *ticketRow) string { return r.group }),
		col("labels", func(r *ticketRow) []string { return r.labels }),
		col("tag_keys", func(r *ticketRow) []string { return r.tagKeys }),
		col("tag_values", func(r *ticketRow) []string { return r.tagValues }),
		col("rating", func(r *ticketRow) *uint8 { return r.rating }),
		col("stage", func(r *ticketRow) *string { return r.stage }),
		col("raw", func(r *ticketRow) string { return r.raw }),
	},
)

var testSessionColumns = concat(
	[]column[testSessionRow]{
		col("organization_id", func(r *testSessionRow) string { return r.head.organizationID }),
		col("task_id", func(r *testSessionRow) string { return r.head.taskID }),
		col("test_session_id", func(r *testSessionRow) string { return r.head.entityID }),
	},
	head(func(r *testSessionRow) *rowHead { return &r.head }),
	[]column[testSessionRow]{
		col("step_id", func(r *testSessionRow) string { return r.stepID }),
		col("ticket_id", func(r *testSessionRow) string { return r.ticketID }),
		col("status", func(r *testSessionRow) string { return r.status }),
		col("ignored", func(r *testSessionRow) uint8 { return r.ignored }),
		col("candidate_id", func(r *testSessionRow) string { return r.candidateID }),
		col("candidate_kind", func(r *testSessionRow) string { return r.candidateKind }),
		col("folder", func(r *testSessionRow) string { return r.folder }),
		col("group_name", func(r *testSessionRow) string { return r.group }),
		col("labels", func(r *testSessionRow) []string { return r.labels }),
		col("tag_keys", func(r *testSessionRow) []string { return r.tagKeys }),
		col("tag_values", func(r *testSessionRow) []string { return r.tagValues }),
		col("has_result", func(r *testSessionRow) uint8 { return r.hasResult }),
		col("completed_at", func(r *testSessionRow) *time.Time { return r.completedAt }),
		col("points_achieved", func(r *testSessionRow) *float64 { return r.pointsAchieved }),
		col("max_achievable_points", func(r *testSessionRow) *float64 { return r.maxAchievablePoints }),
		col("achievement_ratio", func(r *testSessionRow) *float64 { return r.ratio }),
		col("no_of_questions", func(r *testSessionRow) *uint32 { return r.noOfQuestions }),
		col("result_sections", func(r *testSessionRow) string { return r.resultSections }),
		col("result_dimensions", func(r *testSessionRow) string { return r.resultDimensions }),
		col("result_effects", func(r *testSessionRow) string { return r.resultEffects }),
		col("raw", func(r *testSessionRow) string { return r.raw }),
	},
)

var changeColumns = []column[changeRow]{
	col("organization_id", func(r *changeRow) string { return r.organizationID }),
	col("task_id", func(r *changeRow) string { return r.taskID }),
	col("entity", func(r *changeRow) string { return r.entity }),
	col("entity_id", func(r *changeRow) string { return r.entityID }),
	col("event_id", func(r *changeRow) string { return r.eventID }),
	col("op", func(r *changeRow) string { return r.op }),
	col("revision", func(r *changeRow) uint64 { return r.revision }),
	col("version", func(r *changeRow) uint64 { return r.version }),
	col("observed_at", func(r *changeRow) time.Time { return r.observedAt }),
	col("event_time", func(r *changeRow) time.Time { return r.eventTime }),
	col("changed_fields", func(r *changeRow) []string { return r.changedFields }),
	col("before", func(r *changeRow) string { return r.before }),
	col("after", func(r *changeRow) string { return r.after }),
	col("content_hash", func(r *changeRow) string { return r.contentHash }),
	col("ticket_id", func(r *changeRow) string { return r.ticketID }),
	col("step_id", func(r *changeRow) string { return r.stepID }),
	col("status_before", func(r *changeRow) string { return r.statusBefore }),
	col("status_after", func(r *changeRow) string { return r.statusAfter }),
}

var columnNames = map[string][]string{
	TableTasks:        names(taskColumns),
	TableTickets:      names(ticketColumns),
	TableTestSessions: names(testSessionColumns),
	TableChangeEvents: names(changeColumns),
}

// columnOpsOf lists the typed-slice operations of every column of each table, for Block.
var columnOpsOf = map[string][]columnOps{
	TableTasks:        opsOf(taskColumns),
	TableTickets:      opsOf(ticketColumns),
	TableTestSessions: opsOf(testSessionColumns),
	TableChangeEvents: opsOf(changeColumns),
}

func names[R any](cols []column[R]) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

func opsOf[R any](cols []column[R]) []columnOps {
	out := make([]columnOps, len(cols))
	for i, c := range cols {
		out[i] = c.ops
	}
	return out
}

// values returns the boxed values of r in column order.
func values[R any](cols []column[R], r *R) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = c.value(r)
	}
	return out
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

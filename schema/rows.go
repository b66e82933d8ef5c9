package schema

import (
	"encoding/json"
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

// column is one insert column: its name and how its value is taken from the source of a row. The
// column lists below are the only place that defines which columns an insert names and what goes
// into them. A test compares them with the migrated tables in system.columns.
type column[S any] struct {
	name  string
	value func(s *S) any
}

// source is the input of the value functions of an entity table: the event and its decoded image.
type source[R any] struct {
	ev  *Event
	rec *R
	raw json.RawMessage
}

// entityHead are the leading columns every entity table shares, after the entity id column.
func entityHead[R any]() []column[source[R]] {
	return []column[source[R]]{
		{"version", func(s *source[R]) any { return s.ev.Data.Version }},
		{"revision", func(s *source[R]) any { return s.ev.Data.Revision }},
		{"is_deleted", func(s *source[R]) any { return flag(s.ev.Data.Op == OpDeleted) }},
		{"op", func(s *source[R]) any { return string(s.ev.Data.Op) }},
		{"event_id", func(s *source[R]) any { return s.ev.ID }},
		{"content_hash", func(s *source[R]) any { return s.ev.Data.ContentHash }},
		{"observed_at", func(s *source[R]) any { return s.ev.Data.ObservedAt.UTC().Truncate(time.Second) }},
	}
}

func rawColumn[R any]() column[source[R]] {
	return column[source[R]]{"raw", func(s *source[R]) any { return string(s.raw) }}
}

func concat[S any](parts ...[]column[S]) []column[S] {
	var out []column[S]
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var taskColumns = concat(
	[]column[source[Task]]{
		{"organization_id", func(s *source[Task]) any { return s.ev.Data.OrganizationID }},
		{"task_id", func(s *source[Task]) any { return s.ev.Data.TaskID }},
	},
	entityHead[Task](),
	[]column[source[Task]]{
		{"title", func(s *source[Task]) any { return s.rec.Title }},
		{"created_at", func(s *source[Task]) any { return unixTime(s.rec.CreatedAt) }},
		{"favorite", func(s *source[Task]) any { return flag(s.rec.Favorite) }},
		{"folder", func(s *source[Task]) any { return s.rec.Folder }},
		{"labels", func(s *source[Task]) any { return strings0(s.rec.Labels) }},
		{"tag_keys", func(s *source[Task]) any { k, _ := s.rec.Tags.Sorted(); return k }},
		{"tag_values", func(s *source[Task]) any { _, v := s.rec.Tags.Sorted(); return v }},
		{"lang", func(s *source[Task]) any { return s.rec.Lang }},
		{"access_method", func(s *source[Task]) any { return s.rec.AccessMethod }},
		{"active", func(s *source[Task]) any { return flag(s.rec.Active) }},
		{"active_after", func(s *source[Task]) any { return nullableTime(s.rec.ActiveAfter) }},
		{"active_before", func(s *source[Task]) any { return nullableTime(s.rec.ActiveBefore) }},
		{"steps.id", stepValues(func(st *TaskStep) string { return st.ID })},
		{"steps.title", stepValues(func(st *TaskStep) string { return st.Title })},
		{"steps.active", stepValues(func(st *TaskStep) uint8 { return flag(st.Active) })},
		{"steps.active_after", stepValues(func(st *TaskStep) *time.Time { return nullableTime(st.ActiveAfter) })},
		{"steps.active_before", stepValues(func(st *TaskStep) *time.Time { return nullableTime(st.ActiveBefore) })},
		{"steps.attempt_limit", stepValues(func(st *TaskStep) int64 { return st.AttemptLimit })},
		{"steps.test_id", stepValues(func(st *TaskStep) string { return st.Test.TestID })},
		{"steps.test_organization_id", stepValues(func(st *TaskStep) string { return st.Test.OrganizationID })},
		{"steps.test_source", stepValues(func(st *TaskStep) string { return st.Test.Source })},
		{"steps.webcam_recording", stepValues(func(st *TaskStep) string { return st.WebcamRecording })},
		{"steps.screen_recording", stepValues(func(st *TaskStep) string { return st.ScreenRecording })},
		{"steps.fullscreen", stepValues(func(st *TaskStep) uint8 { return flag(st.Fullscreen) })},
		{"steps.post_ai_proctoring", stepValues(func(st *TaskStep) uint8 { return flag(st.PostAIProctoring) })},
		{"steps.practice_mode", stepValues(func(st *TaskStep) uint8 { return flag(st.PracticeMode) })},
		{"program_uuids", func(s *source[Task]) any { return refValues(s.rec.Programs, func(r NamedRef) string { return r.UUID }) }},
		{"program_names", func(s *source[Task]) any { return refValues(s.rec.Programs, func(r NamedRef) string { return r.Name }) }},
		{"stage_uuids", func(s *source[Task]) any { return refValues(s.rec.Stages, func(r NamedRef) string { return r.UUID }) }},
		{"stage_names", func(s *source[Task]) any { return refValues(s.rec.Stages, func(r NamedRef) string { return r.Name }) }},
		{"email_template_names", func(s *source[Task]) any {
			return refValues(s.rec.EmailTemplates, func(t EmailTemplate) string { return t.Name })
		}},
		{"email_template_subjects", func(s *source[Task]) any {
			return refValues(s.rec.EmailTemplates, func(t EmailTemplate) string { return t.Subject })
		}},
		{"private_chat_enabled", func(s *source[Task]) any { return flag(s.rec.PrivateChatEnabled) }},
		rawColumn[Task](),
	},
)

var ticketColumns = concat(
	[]column[source[Ticket]]{
		{"organization_id", func(s *source[Ticket]) any { return s.ev.Data.OrganizationID }},
		{"task_id", func(s *source[Ticket]) any { return s.ev.Data.TaskID }},
		{"ticket_id", func(s *source[Ticket]) any { return s.ev.Data.EntityID }},
	},
	entityHead[Ticket](),
	[]column[source[Ticket]]{
		{"kind", func(s *source[Ticket]) any { return s.rec.Kind }},
		{"logged_in", func(s *source[Ticket]) any { return flag(s.rec.LoggedIn) }},
		{"fullname", func(s *source[Ticket]) any { return s.rec.Fullname }},
		{"email", func(s *source[Ticket]) any { return s.rec.Email }},
		{"invitation_code", func(s *source[Ticket]) any { return s.rec.InvitationCode }},
		{"direct_access_url", func(s *source[Ticket]) any { return s.rec.DirectAccessURL }},
		{"source", func(s *source[Ticket]) any { return s.rec.Source }},
		{"active", func(s *source[Ticket]) any { return flag(s.rec.Active) }},
		{"active_after", func(s *source[Ticket]) any { return nullableTime(s.rec.ActiveAfter) }},
		{"active_before", func(s *source[Ticket]) any { return nullableTime(s.rec.ActiveBefore) }},
		{"group_name", func(s *source[Ticket]) any { return s.rec.Group }},
		{"labels", func(s *source[Ticket]) any { return strings0(s.rec.Labels) }},
		{"tag_keys", func(s *source[Ticket]) any { k, _ := s.rec.Tags.Sorted(); return k }},
		{"tag_values", func(s *source[Ticket]) any { _, v := s.rec.Tags.Sorted(); return v }},
		{"rating", func(s *source[Ticket]) any {
			if s.rec.Rating == nil {
				return (*uint8)(nil)
			}
			r := uint8(*s.rec.Rating)
			return &r
		}},
		{"stage", func(s *source[Ticket]) any { return s.rec.Stage }},
		rawColumn[Ticket](),
	},
)

var testSessionColumns = concat(
	[]column[source[TestSession]]{
		{"organization_id", func(s *source[TestSession]) any { return s.ev.Data.OrganizationID }},
		{"task_id", func(s *source[TestSession]) any { return s.ev.Data.TaskID }},
		{"test_session_id", func(s *source[TestSession]) any { return s.ev.Data.EntityID }},
	},
	entityHead[TestSession](),
	[]column[source[TestSession]]{
		{"step_id", func(s *source[TestSession]) any { return s.rec.StepID }},
		{"ticket_id", func(s *source[TestSession]) any { return s.rec.TicketID }},
		{"status", func(s *source[TestSession]) any { return s.rec.Status }},
		{"ignored", func(s *source[TestSession]) any { return flag(s.rec.Ignored) }},
		{"candidate_id", func(s *source[TestSession]) any { return s.rec.Candidate.ID }},
		{"candidate_kind", func(s *source[TestSession]) any { return s.rec.Candidate.Kind }},
		{"folder", func(s *source[TestSession]) any { return s.rec.Folder }},
		{"group_name", func(s *source[TestSession]) any { return s.rec.Group }},
		{"labels", func(s *source[TestSession]) any { return strings0(s.rec.Labels) }},
		{"tag_keys", func(s *source[TestSession]) any { k, _ := s.rec.Tags.Sorted(); return k }},
		{"tag_values", func(s *source[TestSession]) any { _, v := s.rec.Tags.Sorted(); return v }},
		{"has_result", func(s *source[TestSession]) any { return flag(s.rec.Result != nil) }},
		{"completed_at", resultValue(func(r *Result) *time.Time { return nullableTime(&r.CompletedAt) })},
		{"points_achieved", resultValue(func(r *Result) *float64 { return &r.Scoreboard.PointsAchieved })},
		{"max_achievable_points", resultValue(func(r *Result) *float64 { return &r.Scoreboard.MaxAchievablePoints })},
		{"achievement_ratio", resultValue(func(r *Result) *float64 { return &r.Scoreboard.AchievementRatio })},
		{"no_of_questions", resultValue(func(r *Result) *uint32 {
			if r.Scoreboard.NoOfQuestions == nil {
				return nil
			}
			n := uint32(*r.Scoreboard.NoOfQuestions)
			return &n
		})},
		{"result_sections", resultText(func(r *Result) json.RawMessage { return r.Sections })},
		{"result_dimensions", resultText(func(r *Result) json.RawMessage { return r.Dimensions })},
		{"result_effects", resultText(func(r *Result) json.RawMessage { return r.Effects })},
		rawColumn[TestSession](),
	},
)

// changeSource is the input of the value functions of change_events.
type changeSource struct {
	ev                        *Event
	ticketID, stepID          string
	statusBefore, statusAfter string
}

var changeColumns = []column[changeSource]{
	{"organization_id", func(s *changeSource) any { return s.ev.Data.OrganizationID }},
	{"task_id", func(s *changeSource) any { return s.ev.Data.TaskID }},
	{"entity", func(s *changeSource) any { return string(s.ev.Data.Entity) }},
	{"entity_id", func(s *changeSource) any { return s.ev.Data.EntityID }},
	{"event_id", func(s *changeSource) any { return s.ev.ID }},
	{"op", func(s *changeSource) any { return string(s.ev.Data.Op) }},
	{"revision", func(s *changeSource) any { return s.ev.Data.Revision }},
	{"version", func(s *changeSource) any { return s.ev.Data.Version }},
	{"observed_at", func(s *changeSource) any { return s.ev.Data.ObservedAt.UTC().Truncate(time.Second) }},
	{"event_time", func(s *changeSource) any { return s.ev.Time.UTC().Truncate(time.Second) }},
	{"changed_fields", func(s *changeSource) any { return strings0(s.ev.Data.ChangedFields) }},
	{"before", func(s *changeSource) any { return imageText(s.ev.Data.Before) }},
	{"after", func(s *changeSource) any { return imageText(s.ev.Data.After) }},
	{"content_hash", func(s *changeSource) any { return s.ev.Data.ContentHash }},
	{"ticket_id", func(s *changeSource) any { return s.ticketID }},
	{"step_id", func(s *changeSource) any { return s.stepID }},
	{"status_before", func(s *changeSource) any { return s.statusBefore }},
	{"status_after", func(s *changeSource) any { return s.statusAfter }},
}

var columnNames = map[string][]string{
	TableTasks:        names(taskColumns),
	TableTickets:      names(ticketColumns),
	TableTestSessions: names(testSessionColumns),
	TableChangeEvents: names(changeColumns),
}

func names[S any](cols []column[S]) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
	}
	return out
}

func values[S any](cols []column[S], s *S) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		out[i] = c.value(s)
	}
	return out
}

func stepValues[T any](f func(st *TaskStep) T) func(s *source[Task]) any {
	return func(s *source[Task]) any {
		out := make([]T, len(s.rec.Steps))
		for i := range s.rec.Steps {
			out[i] = f(&s.rec.Steps[i])
		}
		return out
	}
}

func refValues[R any](refs []R, f func(R) string) []string {
	out := make([]string, len(refs))
	for i, r := range refs {
		out[i] = f(r)
	}
	return out
}

func resultValue[T any](f func(r *Result) *T) func(s *source[TestSession]) any {
	return func(s *source[TestSession]) any {
		if s.rec.Result == nil {
			return (*T)(nil)
		}
		return f(s.rec.Result)
	}
}

func resultText(f func(r *Result) json.RawMessage) func(s *source[TestSession]) any {
	return func(s *source[TestSession]) any {
		if s.rec.Result == nil {
			return ""
		}
		return imageText(f(s.rec.Result))
	}
}

// imageText returns raw JSON as a string column value: "" for a missing or null value.
func imageText(raw json.RawMessage) string {
	if IsNull(raw) {
		return ""
	}
	return string(raw)
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

func strings0(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func unixTime(sec int64) time.Time { return time.Unix(sec, 0).UTC() }

func nullableTime(sec *int64) *time.Time {
	if sec == nil {
		return nil
	}
	t := unixTime(*sec)
	return &t
}

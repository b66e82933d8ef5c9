package testinvite

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"time"
)

// Mode is the detail level of a read: basic or detailed (basic plus more fields).
type Mode string

// Modes of the mode query parameter.
const (
	ModeBasic    Mode = "basic"
	ModeDetailed Mode = "detailed"
)

// Status is the status of a test instance. Values the client does not know are kept as they came.
type Status string

// Documented statuses of a test instance.
const (
	// StatusStarted is a test instance in progress.
	StatusStarted Status = "STARTED"
	// StatusComplete is a finished test instance; its result is set.
	StatusComplete Status = "COMPLETE"
	// StatusResetup is a test instance an administrator set up again so that the candidate can
	// continue it.
	StatusResetup Status = "RESETUP"
)

// Known reports whether s is one of the documented statuses.
func (s Status) Known() bool {
	return s == StatusStarted || s == StatusComplete || s == StatusResetup
}

// CandidateKind is "temp" for a candidate created from data sent to TestInvite and "user" for an
// organization user made a candidate. Unknown values are kept.
type CandidateKind string

// Documented candidate kinds.
const (
	CandidateTemp CandidateKind = "temp"
	CandidateUser CandidateKind = "user"
)

// UnixTime is a timestamp in whole Unix seconds, the unit of every TestInvite timestamp. Decoding
// accepts integers, fractional numbers (truncated) and numeric strings; any other value decodes to
// 0 without an error, since the raw record keeps it.
type UnixTime int64

// Time returns t as a time.Time in UTC.
func (t UnixTime) Time() time.Time { return time.Unix(int64(t), 0).UTC() }

// UnmarshalJSON decodes a number or numeric string of seconds.
func (t *UnixTime) UnmarshalJSON(data []byte) error {
	s := string(bytes.Trim(data, `"`))
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		*t = UnixTime(n)
		return nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		*t = UnixTime(int64(f))
		return nil
	}
	*t = 0
	return nil
}

// Tags is a string-keyed map of a task, candidate or test instance. A value that is not a JSON
// string is kept as its JSON text. A tags member that is not an object decodes to nil.
type Tags map[string]string

// UnmarshalJSON decodes an object of strings, keeping other values as JSON text. It never fails;
// the record's Raw keeps the original.
func (t *Tags) UnmarshalJSON(data []byte) error {
	var m map[string]string
	err := json.Unmarshal(data, &m)
	if err == nil {
		*t = m
		return nil
	}
	// Some value is not a string: decode again, keeping each value's JSON text.
	var raw map[string]json.RawMessage
	if json.Unmarshal(data, &raw) != nil || raw == nil {
		*t = nil
		return nil
	}
	out := make(Tags, len(raw))
	for k, v := range raw {
		var s string
		if json.Unmarshal(v, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(v)
		}
	}
	*t = out
	return nil
}

// Task is a TestInvite task: an assessment process holding one or more tests in steps. The fields
// after CreatedAt are only filled in detailed mode.
type Task struct {
	ID        string   `json:"taskId"`
	Title     string   `json:"title"`
	CreatedAt UnixTime `json:"createdAt"`

	OrganizationID     string          `json:"organizationId"`
	Favorite           bool            `json:"favorite"`
	Folder             string          `json:"folder"`
	Labels             []string        `json:"labels"`
	Tags               Tags            `json:"tags"`
	Lang               string          `json:"lang"`
	AccessMethod       string          `json:"accessMethod"`
	Active             bool            `json:"active"`
	ActiveAfter        *UnixTime       `json:"activeAfter"`
	ActiveBefore       *UnixTime       `json:"activeBefore"`
	Steps              []Step          `json:"steps"`
	Programs           []NamedRef      `json:"programs"`
	Stages             []NamedRef      `json:"stages"`
	EmailTemplates     []EmailTemplate `json:"emailTemplates"`
	PrivateChatEnabled bool            `json:"privateChatEnabled"`

	// Raw is the record exactly as the server sent it, unknown fields included.
	Raw json.RawMessage `json:"-"`

	typeErr error
}

// Step is one test of a task with its delivery settings.
type Step struct {
	ID               string    `json:"id"`
	Title            string    `json:"title"`
	Active           bool      `json:"active"`
	ActiveBefore     *UnixTime `json:"activeBefore"`
	ActiveAfter      *UnixTime `json:"activeAfter"`
	AttemptLimit     int       `json:"attemptLimit"` // -1 is unlimited
	Test             TestRef   `json:"test"`
	WebcamRecording  string    `json:"webcamRecording"`
	ScreenRecording  string    `json:"screenRecording"`
	Fullscreen       bool      `json:"fullscreen"`
	PostAIProctoring bool      `json:"postAiProctoring"`
	PracticeMode     bool      `json:"practiceMode"`
}

// TestRef names the test of a step.
type TestRef struct {
	TestID         string `json:"testId"`
	OrganizationID string `json:"organizationId"`
	Source         string `json:"source"`
}

// NamedRef is a program or stage of a task.
type NamedRef struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

// EmailTemplate is an e-mail template of a task.
type EmailTemplate struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
}

// Candidate is an invitation of one person into a task, called a ticket by the legacy API and by
// tisync's events. The fields after DirectAccessURL are only filled in detailed mode.
type Candidate struct {
	ID       string        `json:"candidateId"`
	Kind     CandidateKind `json:"kind"`
	TaskID   string        `json:"taskId"`
	LoggedIn bool          `json:"loggedIn"`
	Fullname string        `json:"fullname"`
	Email    string        `json:"email"`
	// InvitationCode is empty for kind user, for which the API sends null.
	InvitationCode string `json:"invitationCode"`
	// DirectAccessURL is the personal access link; empty for kind user.
	DirectAccessURL string `json:"directAccessUrl"`

	OrganizationID string    `json:"organizationId"`
	Source         string    `json:"source"`
	Active         bool      `json:"active"`
	ActiveAfter    *UnixTime `json:"activeAfter"`
	ActiveBefore   *UnixTime `json:"activeBefore"`
	Group          string    `json:"group"`
	Tags           Tags      `json:"tags"`
	Labels         []string  `json:"labels"`
	Rating         *int      `json:"rating"` // 1 to 5, nil when unrated
	Stage          *string   `json:"stage"`

	// Raw is the record exactly as the server sent it, unknown fields included.
	Raw json.RawMessage `json:"-"`

	typeErr error
}

// TestInstance is one attempt of a candidate at one step of a task, called a test session by
// tisync's events. The fields after Result are only filled in detailed mode, and the expand call
// fills the last five.
type TestInstance struct {
	ID       string `json:"testInstanceId"`
	TaskID   string `json:"taskId"`
	StepID   string `json:"stepId"`
	TicketID string `json:"ticketId"`
	Status   Status `json:"status"`
	Ignored  bool   `json:"ignored"`
	Result   Result `json:"result"`

	OrganizationID string       `json:"organizationId"`
	Candidate      CandidateRef `json:"candidate"`
	Folder         string       `json:"folder"`
	Group          string       `json:"group"`
	Labels         []string     `json:"labels"`
	Tags           Tags         `json:"tags"`

	CreditCost    *float64                   `json:"creditCost"`
	UniqID        string                     `json:"uniqId"`
	Test          *TestRef                   `json:"test"`
	RoomForm      map[string]json.RawMessage `json:"roomForm"`
	IdentityPhoto *IdentityPhoto             `json:"identityPhoto"`

	// Raw is the record exactly as the server sent it, unknown fields included.
	Raw json.RawMessage `json:"-"`

	typeErr error
}

// CandidateRef is the owner of a test instance.
type CandidateRef struct {
	ID   string        `json:"id"`
	Kind CandidateKind `json:"kind"`
}

// IdentityPhoto is the identity photo block of an expanded test instance.
type IdentityPhoto struct {
	URL *string `json:"url"`
}

// Result is the result of a test instance. The API sends false until a result exists; that, null
// and any value that is not an object decode to a Result with Available false.
type Result struct {
	// Available reports whether the API sent a result object.
	Available   bool        `json:"-"`
	CompletedAt UnixTime    `json:"completedAt"`
	Scoreboard  Scoreboard  `json:"scoreboard"`
	Sections    []Section   `json:"sections"`
	Dimensions  []Dimension `json:"dimensions"`
	Effects     []Effect    `json:"effects"`
}

// UnmarshalJSON decodes false, null or a result object. It never fails: a result it cannot read
// leaves Available false, and the raw record keeps the original.
func (r *Result) UnmarshalJSON(data []byte) error {
	*r = Result{}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil
	}
	type plain Result
	var p plain
	err := json.Unmarshal(data, &p)
	var typeErr *json.UnmarshalTypeError
	if err != nil && !errors.As(err, &typeErr) {
		return nil
	}
	*r = Result(p)
	r.Available = true
	return nil
}

// Scoreboard is the score of a result or of one of its parts. NoOfQuestions is only sent in
// detailed mode.
type Scoreboard struct {
	PointsAchieved      float64 `json:"pointsAchieved"`
	MaxAchievablePoints float64 `json:"maxAchievablePoints"`
	// AchievementRatio is PointsAchieved / MaxAchievablePoints; whether TestInvite sends it in
	// 0..1 or 0..100 is not documented.
	AchievementRatio float64 `json:"achievementRatio"`
	NoOfQuestions    int     `json:"noOfQuestions"`
}

// Section is the score of one section of a test.
type Section struct {
	UUID       string     `json:"uuid"`
	Scoreboard Scoreboard `json:"scoreboard"`
}

// Dimension is the score of one dimension of a test and of its sub-dimensions.
type Dimension struct {
	Name          string         `json:"name"`
	Scoreboard    Scoreboard     `json:"scoreboard"`
	SubDimensions []SubDimension `json:"subDimensions"`
}

// SubDimension is the score of one sub-dimension.
type SubDimension struct {
	Name       string     `json:"name"`
	Scoreboard Scoreboard `json:"scoreboard"`
}

// Effect is a personality-style score with its sub-effects.
type Effect struct {
	Name       string      `json:"name"`
	Score      float64     `json:"score"`
	SubEffects []SubEffect `json:"subEffects"`
}

// SubEffect is the score of one sub-effect.
type SubEffect struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

// decodeTolerant decodes data into v and returns the first type mismatch of a field, which
// encoding/json skips while it decodes the rest. Any other error is returned as err.
func decodeTolerant(data []byte, v any) (typeErr, err error) {
	err = json.Unmarshal(data, v)
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return err, nil
	}
	return nil, err
}

// UnmarshalJSON decodes a task and keeps a copy of data in Raw. A field of an unexpected JSON type
// is left at its zero value instead of failing the record.
func (t *Task) UnmarshalJSON(data []byte) error {
	type plain Task
	var p plain
	typeErr, err := decodeTolerant(data, &p)
	if err != nil {
		return err
	}
	*t = Task(p)
	t.Raw = bytes.Clone(data)
	t.typeErr = typeErr
	return nil
}

// UnmarshalJSON decodes a candidate and keeps a copy of data in Raw. A field of an unexpected JSON
// type is left at its zero value instead of failing the record.
func (c *Candidate) UnmarshalJSON(data []byte) error {
	type plain Candidate
	var p plain
	typeErr, err := decodeTolerant(data, &p)
	if err != nil {
		return err
	}
	*c = Candidate(p)
	c.Raw = bytes.Clone(data)
	c.typeErr = typeErr
	return nil
}

// UnmarshalJSON decodes a test instance and keeps a copy of data in Raw. A field of an unexpected
// JSON type is left at its zero value instead of failing the record.
func (ti *TestInstance) UnmarshalJSON(data []byte) error {
	type plain TestInstance
	var p plain
	typeErr, err := decodeTolerant(data, &p)
	if err != nil {
		return err
	}
	*ti = TestInstance(p)
	ti.Raw = bytes.Clone(data)
	ti.typeErr = typeErr
	return nil
}

// Record is the constraint of the record types a Scanner returns. Generic code reads a record's id
// and raw bytes through its methods.
type Record interface {
	Task | Candidate | TestInstance
	// RecordID returns the id: taskId, candidateId or testInstanceId.
	RecordID() string
	// RawJSON returns the record exactly as the server sent it.
	RawJSON() json.RawMessage
}

// RecordID returns the task id.
func (t Task) RecordID() string { return t.ID }

// RawJSON returns the task exactly as the server sent it.
func (t Task) RawJSON() json.RawMessage { return t.Raw }

// RecordID returns the candidate id.
func (c Candidate) RecordID() string { return c.ID }

// RawJSON returns the candidate exactly as the server sent it.
func (c Candidate) RawJSON() json.RawMessage { return c.Raw }

// RecordID returns the test instance id.
func (ti TestInstance) RecordID() string { return ti.ID }

// RawJSON returns the test instance exactly as the server sent it.
func (ti TestInstance) RawJSON() json.RawMessage { return ti.Raw }

func recordID[T Record](r *T) string { return (*r).RecordID() }

func recordRaw[T Record](r *T) json.RawMessage { return (*r).RawJSON() }

func recordTypeErr[T Record](r *T) error {
	switch v := any(r).(type) {
	case *Task:
		return v.typeErr
	case *Candidate:
		return v.typeErr
	case *TestInstance:
		return v.typeErr
	}
	return nil
}

// idKey returns the JSON member that holds the id of a record type.
func idKey[T Record]() string {
	var zero T
	switch any(zero).(type) {
	case Task:
		return "taskId"
	case Candidate:
		return "candidateId"
	}
	return "testInstanceId"
}

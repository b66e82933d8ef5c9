package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Task is a normalized TestInvite task: the REST API's detailed task object with timestamps as Unix
// seconds. Fields the API documents as optional or nullable are pointers, so that a record without
// them decodes to nil rather than to a zero value. Unknown fields are ignored by json.Unmarshal; the
// event's raw record keeps them.
type Task struct {
	TaskID    string `json:"taskId"`
	Title     string `json:"title"`
	CreatedAt int64  `json:"createdAt"`

	OrganizationID     string          `json:"organizationId"`
	Favorite           bool            `json:"favorite"`
	Folder             string          `json:"folder"`
	Labels             []string        `json:"labels"`
	Tags               Tags            `json:"tags"`
	Lang               string          `json:"lang"`
	AccessMethod       string          `json:"accessMethod"`
	Active             bool            `json:"active"`
	ActiveAfter        *int64          `json:"activeAfter"`
	ActiveBefore       *int64          `json:"activeBefore"`
	Steps              []TaskStep      `json:"steps"`
	Programs           []NamedRef      `json:"programs"`
	Stages             []NamedRef      `json:"stages"`
	EmailTemplates     []EmailTemplate `json:"emailTemplates"`
	PrivateChatEnabled bool            `json:"privateChatEnabled"`
}

// TaskStep is one step of a task: the test a candidate takes and how it is delivered.
type TaskStep struct {
	ID               string   `json:"id"`
	Title            string   `json:"title"`
	Active           bool     `json:"active"`
	ActiveAfter      *int64   `json:"activeAfter"`
	ActiveBefore     *int64   `json:"activeBefore"`
	AttemptLimit     int64    `json:"attemptLimit"` // -1 means unlimited attempts.
	Test             StepTest `json:"test"`
	WebcamRecording  string   `json:"webcamRecording"`
	ScreenRecording  string   `json:"screenRecording"`
	Fullscreen       bool     `json:"fullscreen"`
	PostAIProctoring bool     `json:"postAiProctoring"`
	PracticeMode     bool     `json:"practiceMode"`
}

// StepTest is the test a task step delivers.
type StepTest struct {
	TestID         string `json:"testId"`
	OrganizationID string `json:"organizationId"`
	Source         string `json:"source"`
}

// NamedRef is a program or a stage of a task.
type NamedRef struct {
	UUID string `json:"uuid"`
	Name string `json:"name"`
}

// EmailTemplate is an invitation e-mail template of a task.
type EmailTemplate struct {
	Name    string `json:"name"`
	Subject string `json:"subject"`
}

// Ticket is a normalized TestInvite ticket, which the REST API calls a candidate: its detailed
// candidate object with timestamps as Unix seconds.
type Ticket struct {
	CandidateID     string  `json:"candidateId"`
	Kind            string  `json:"kind"` // "user" or "temp"
	TaskID          string  `json:"taskId"`
	LoggedIn        bool    `json:"loggedIn"`
	Fullname        *string `json:"fullname"`
	Email           *string `json:"email"`
	InvitationCode  *string `json:"invitationCode"`  // null for kind "user"
	DirectAccessURL *string `json:"directAccessUrl"` // null for kind "user"

	OrganizationID string   `json:"organizationId"`
	Source         string   `json:"source"`
	Active         bool     `json:"active"`
	ActiveAfter    *int64   `json:"activeAfter"`
	ActiveBefore   *int64   `json:"activeBefore"`
	Group          string   `json:"group"`
	Tags           Tags     `json:"tags"`
	Labels         []string `json:"labels"`
	Rating         *int64   `json:"rating"` // 1 to 5 or null
	Stage          *string  `json:"stage"`
}

// TestSession is a normalized TestInvite test session, which the REST API calls a test instance: its
// detailed object, with Result nil where TestInvite reported false (no result yet).
type TestSession struct {
	TestInstanceID string  `json:"testInstanceId"`
	TaskID         string  `json:"taskId"`
	StepID         string  `json:"stepId"`
	TicketID       string  `json:"ticketId"`
	Status         string  `json:"status"` // STARTED, COMPLETE or RESETUP; other values are kept as they are
	Ignored        bool    `json:"ignored"`
	Result         *Result `json:"result"`

	OrganizationID string           `json:"organizationId"`
	Candidate      SessionCandidate `json:"candidate"`
	Folder         string           `json:"folder"`
	Group          string           `json:"group"`
	Labels         []string         `json:"labels"`
	Tags           Tags             `json:"tags"`
}

// SessionCandidate identifies the person who took a test session.
type SessionCandidate struct {
	ID   string `json:"id"`
	Kind string `json:"kind"` // "user" or "temp"
}

// Result is the outcome of a completed test session. Sections, Dimensions and Effects stay raw JSON
// (decode them into []Section, []Dimension and []Effect when needed) so that fields TestInvite adds
// later survive the round trip.
type Result struct {
	CompletedAt int64           `json:"completedAt"`
	Scoreboard  Scoreboard      `json:"scoreboard"`
	Sections    json.RawMessage `json:"sections"`
	Dimensions  json.RawMessage `json:"dimensions"`
	Effects     json.RawMessage `json:"effects"`
}

// Scoreboard is a score summary. AchievementRatio is PointsAchieved divided by MaxAchievablePoints as
// TestInvite reports it. The API documentation leaves open whether its scale is 0 to 1 or 0 to 100.
type Scoreboard struct {
	PointsAchieved      float64  `json:"pointsAchieved"`
	MaxAchievablePoints float64  `json:"maxAchievablePoints"`
	AchievementRatio    float64  `json:"achievementRatio"`
	NoOfQuestions       *float64 `json:"noOfQuestions"`
}

// Section is the score of one section of a test.
type Section struct {
	UUID       string     `json:"uuid"`
	Scoreboard Scoreboard `json:"scoreboard"`
}

// Dimension is the score of one competency dimension and its sub-dimensions.
type Dimension struct {
	Name          string         `json:"name"`
	Scoreboard    Scoreboard     `json:"scoreboard"`
	SubDimensions []SubDimension `json:"subDimensions"`
}

// SubDimension is the score of one sub-dimension of a Dimension.
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

// SubEffect is one score inside an Effect.
type SubEffect struct {
	Name  string  `json:"name"`
	Score float64 `json:"score"`
}

// Tags is a string-keyed tag map. TestInvite documents string values. A value of another JSON type
// is kept as its JSON text, so that such a value does not fail the decoding.
type Tags map[string]string

// UnmarshalJSON decodes a JSON object into t, keeping non-string values as JSON text. A JSON null
// decodes to a nil map.
func (t *Tags) UnmarshalJSON(b []byte) error {
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		*t = nil
		return nil
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("tags: %w", err)
	}
	m := make(Tags, len(raw))
	for k, v := range raw {
		var s string
		if len(v) > 0 && v[0] == '"' {
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("tags: value of %q: %w", k, err)
			}
		} else {
			s = string(v)
		}
		m[k] = s
	}
	*t = m
	return nil
}

// DecodeTask decodes a normalized task record. It returns an error when raw is not a JSON object of
// the documented field types.
func DecodeTask(raw json.RawMessage) (*Task, error) {
	var t Task
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode task: %w", err)
	}
	return &t, nil
}

// DecodeTicket decodes a normalized ticket record. It returns an error when raw is not a JSON object
// of the documented field types.
func DecodeTicket(raw json.RawMessage) (*Ticket, error) {
	var t Ticket
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode ticket: %w", err)
	}
	return &t, nil
}

// DecodeTestSession decodes a normalized test session record. It returns an error when raw is not a
// JSON object of the documented field types.
func DecodeTestSession(raw json.RawMessage) (*TestSession, error) {
	var s TestSession
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("decode test session: %w", err)
	}
	return &s, nil
}

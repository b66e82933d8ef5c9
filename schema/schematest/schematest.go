// Package schematest builds valid change events and normalized TestInvite records for tests of the
// components that publish or consume them, as net/http/httptest does for net/http.
package schematest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"time"

	"github.com/tisync/tisync/schema"
)

// Record is a normalized TestInvite record as a JSON object. Tests change fields in place and pass
// it to NewEvent.
type Record map[string]any

// Clone returns a deep copy of r, so that a test can derive the after image from the before image.
func (r Record) Clone() Record {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("schematest: marshal record: %v", err))
	}
	var out Record
	if err := json.Unmarshal(b, &out); err != nil {
		panic(fmt.Sprintf("schematest: unmarshal record: %v", err))
	}
	return out
}

// Task returns a detailed, normalized task with two steps, "s1" and "s2".
func Task(org, taskID string) Record {
	return Record{
		"taskId":         taskID,
		"title":          "Task " + taskID,
		"createdAt":      1700000000,
		"organizationId": org,
		"favorite":       true,
		"folder":         "Hiring",
		"labels":         []any{"backend", "go"},
		"tags":           map[string]any{"dept": "eng", "level": "senior"},
		"lang":           "en",
		"accessMethod":   "invitation-code",
		"active":         true,
		"activeAfter":    1700000100,
		"activeBefore":   nil,
		"steps": []any{
			map[string]any{
				"id": "s1", "title": "Coding", "active": true, "activeAfter": nil, "activeBefore": 1800000000,
				"attemptLimit": 1, "test": map[string]any{"testId": "t1", "organizationId": org, "source": "own-test"},
				"webcamRecording": "PHOTO", "screenRecording": "NONE", "fullscreen": true, "postAiProctoring": false, "practiceMode": false,
			},
			map[string]any{
				"id": "s2", "title": "Personality", "active": true, "activeAfter": 1700000200, "activeBefore": nil,
				"attemptLimit": -1, "test": map[string]any{"testId": "t2", "organizationId": "market", "source": "marketplace"},
				"webcamRecording": "NONE", "screenRecording": "SCREENSHOT", "fullscreen": false, "postAiProctoring": true, "practiceMode": true,
			},
		},
		"programs":           []any{map[string]any{"uuid": "p1", "name": "Graduates"}},
		"stages":             []any{map[string]any{"uuid": "g1", "name": "Screening"}, map[string]any{"uuid": "g2", "name": "Interview"}},
		"emailTemplates":     []any{map[string]any{"name": "invite", "subject": "Your test"}},
		"privateChatEnabled": false,
	}
}

// Ticket returns a detailed, normalized temporary ticket that has not logged in.
func Ticket(org, taskID, ticketID string) Record {
	return Record{
		"candidateId":     ticketID,
		"kind":            "temp",
		"taskId":          taskID,
		"loggedIn":        false,
		"fullname":        "Candidate " + ticketID,
		"email":           ticketID + "@example.com",
		"invitationCode":  "CODE" + ticketID,
		"directAccessUrl": "https://www.testinvite.com/t/CODE" + ticketID,
		"organizationId":  org,
		"source":          "pre-registration",
		"active":          true,
		"activeAfter":     nil,
		"activeBefore":    1800000000,
		"group":           "default",
		"tags":            map[string]any{"team": "platform"},
		"labels":          []any{"batch1"},
		"rating":          nil,
		"stage":           nil,
	}
}

// TestSession returns a detailed, normalized test session. A status of "COMPLETE" gets a result with
// the achievement ratio; any other status gets a null result.
func TestSession(org, taskID, sessionID, ticketID, stepID, status string, ratio float64) Record {
	r := Record{
		"testInstanceId": sessionID,
		"taskId":         taskID,
		"stepId":         stepID,
		"ticketId":       ticketID,
		"status":         status,
		"ignored":        false,
		"result":         nil,
		"organizationId": org,
		"candidate":      map[string]any{"id": ticketID, "kind": "temp"},
		"folder":         "Hiring",
		"group":          "default",
		"labels":         []any{"batch1"},
		"tags":           map[string]any{"team": "platform"},
	}
	if status == "COMPLETE" {
		r["result"] = map[string]any{
			"completedAt": 1700003600,
			"scoreboard": map[string]any{
				"pointsAchieved": ratio * 50, "maxAchievablePoints": 50, "achievementRatio": ratio, "noOfQuestions": 20,
			},
			"sections":   []any{map[string]any{"uuid": "sec1", "scoreboard": map[string]any{"pointsAchieved": ratio * 50, "maxAchievablePoints": 50, "achievementRatio": ratio, "noOfQuestions": 20}}},
			"dimensions": []any{},
			"effects":    []any{map[string]any{"name": "openness", "score": 3.5, "subEffects": []any{}}},
		}
	}
	return r
}

// Change describes one event for NewEvent.
type Change struct {
	Org, Task string
	Entity    schema.Entity
	EntityID  string
	Op        schema.Op
	Revision  uint64
	// Before and After are the record images; nil encodes as JSON null.
	Before, After Record
	// ObservedAt is the scan time; Version is derived from it plus Revision, so it grows per record
	// when ObservedAt does.
	ObservedAt time.Time
}

// NewEvent returns a valid event for c, with the deterministic id, content hash, changed fields and
// version the publisher would compute.
func NewEvent(c Change) schema.Event {
	before, after := marshalImage(c.Before), marshalImage(c.After)
	hashed := after
	if c.Op == schema.OpDeleted {
		hashed = before
	}
	h := fnv.New64a()
	h.Write(hashed)
	sum := h.Sum64()
	var changed []string
	if c.Op == schema.OpUpdated {
		changed = changedFields(c.Before, c.After)
	}
	if changed == nil {
		changed = []string{}
	}
	observed := c.ObservedAt.UTC()
	return schema.Event{
		SpecVersion:     schema.SpecVersion,
		ID:              schema.EventID(c.Org, c.Task, c.Entity, c.EntityID, c.Revision, sum),
		Source:          schema.Source(c.Org, c.Task),
		Type:            schema.EventType(c.Entity, c.Op),
		Subject:         c.EntityID,
		Time:            observed.Add(time.Second),
		DataContentType: schema.DataContentType,
		DataSchema:      schema.DataSchemaV1,
		Data: schema.Data{
			OrganizationID: c.Org,
			TaskID:         c.Task,
			Entity:         c.Entity,
			EntityID:       c.EntityID,
			Op:             c.Op,
			Revision:       c.Revision,
			Version:        uint64(observed.UnixMicro()) + c.Revision,
			ObservedAt:     observed,
			ContentHash:    schema.FormatHash(sum),
			ChangedFields:  changed,
			Before:         before,
			After:          after,
		},
	}
}

// Encode returns the JSON encoding of ev, panicking on an error that only a broken Event can cause.
func Encode(ev schema.Event) []byte {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(fmt.Sprintf("schematest: marshal event: %v", err))
	}
	return b
}

// Subject returns the NATS subject of ev.
func Subject(ev schema.Event) string {
	return schema.Subject(ev.Data.OrganizationID, ev.Data.TaskID, ev.Data.Entity, ev.Data.Op)
}

func marshalImage(r Record) json.RawMessage {
	if r == nil {
		return json.RawMessage("null")
	}
	// encoding/json sorts map keys, which is the normalized form.
	b, err := json.Marshal(map[string]any(r))
	if err != nil {
		panic(fmt.Sprintf("schematest: marshal record: %v", err))
	}
	return b
}

func changedFields(before, after Record) []string {
	var out []string
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	for k := range keys {
		b, _ := json.Marshal(before[k])
		a, _ := json.Marshal(after[k])
		_, inBefore := before[k]
		_, inAfter := after[k]
		if string(a) != string(b) || inBefore != inAfter {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// Package schema is the contract between the sync side of tisync (pollers, diff, publisher) and the
// sink side (consumer, ClickHouse writer). It holds the change event types, the JSON Schema of the
// events, the NATS subjects they travel on and the ClickHouse migrations.
package schema

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// Entity is the kind of TestInvite record an event describes.
type Entity string

// The entities tisync tracks. A ticket is what the REST API calls a candidate and a test session is
// what it calls a test instance.
const (
	EntityTask        Entity = "task"
	EntityTicket      Entity = "ticket"
	EntityTestSession Entity = "test_session"
)

// Entities lists every entity in the order a full poll cycle visits them.
var Entities = []Entity{EntityTask, EntityTicket, EntityTestSession}

// Valid reports whether e is one of the tracked entities.
func (e Entity) Valid() bool {
	switch e {
	case EntityTask, EntityTicket, EntityTestSession:
		return true
	}
	return false
}

// ParseEntity returns the entity named s, accepting the REST API's names (candidate, test_instance)
// as aliases.
func ParseEntity(s string) (Entity, error) {
	switch s {
	case "task", "tasks":
		return EntityTask, nil
	case "ticket", "tickets", "candidate", "candidates":
		return EntityTicket, nil
	case "test_session", "test_sessions", "test-session", "test-sessions", "test_instance", "test-instance", "test_instances", "test-instances":
		return EntityTestSession, nil
	}
	return "", fmt.Errorf("invalid entity %q: expected task, ticket or test_session", s)
}

// Op is the kind of change a record went through between two scans.
type Op string

// The operations an event can carry.
const (
	// OpSnapshot marks a record first seen during an initial or forced full load, so that analytics
	// can tell it apart from a record that was really created since the previous scan.
	OpSnapshot Op = "snapshot"
	OpCreated  Op = "created"
	OpUpdated  Op = "updated"
	OpDeleted  Op = "deleted"
)

// Valid reports whether o is one of the four operations.
func (o Op) Valid() bool {
	switch o {
	case OpSnapshot, OpCreated, OpUpdated, OpDeleted:
		return true
	}
	return false
}

// Constant envelope values of every event tisync publishes.
const (
	// SpecVersion is the CloudEvents specification version of the envelope.
	SpecVersion = "1.0"
	// DataContentType is the media type of the data member.
	DataContentType = "application/json"
	// DataSchemaV1 identifies version 1 of the data member. A change that breaks consumers gets a new
	// version and a new JSON Schema file beside the old one.
	DataSchemaV1 = "urn:tisync:schema:change-event:v1"
	// TypePrefix starts every CloudEvents type: com.testinvite.<entity>.<op>.
	TypePrefix = "com.testinvite."
	// SubjectRoot is the first token of every NATS subject tisync publishes on.
	SubjectRoot = "testinvite"
)

// Event is one change of one TestInvite record, as a CloudEvents 1.0 JSON document in structured mode.
// It is the body of every message on the TESTINVITE stream.
type Event struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Source          string    `json:"source"`
	Type            string    `json:"type"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	DataSchema      string    `json:"dataschema"`
	Data            Data      `json:"data"`
}

// Data is the payload of an event: which record changed, how, and its images before and after.
type Data struct {
	OrganizationID string `json:"organization_id"`
	// TaskID is the task the record belongs to. For a task event it equals EntityID.
	TaskID   string `json:"task_id"`
	Entity   Entity `json:"entity"`
	EntityID string `json:"entity_id"`
	Op       Op     `json:"op"`
	// Revision counts the changes tisync has observed for this record, starting at 1. It never
	// repeats for one record, even across a checkpoint reset.
	Revision uint64 `json:"revision"`
	// Version orders the rows of one record in ClickHouse (ReplacingMergeTree keeps the largest). It is
	// the observation time in Unix microseconds, raised when needed so that it grows for each record.
	Version uint64 `json:"version"`
	// ObservedAt is when the scan that found the change started.
	ObservedAt time.Time `json:"observed_at"`
	// ContentHash is the 64-bit hash of the normalized record after the change (of the record before
	// it for a delete), as 16 lowercase hex digits.
	ContentHash string `json:"content_hash"`
	// ChangedFields lists the top-level fields of the normalized record whose values differ between
	// Before and After, sorted. It is empty for snapshot, created and deleted events.
	ChangedFields []string `json:"changed_fields"`
	// Before is the normalized record before the change; null for snapshot and created events.
	Before json.RawMessage `json:"before"`
	// After is the normalized record after the change; null for deleted events.
	After json.RawMessage `json:"after"`
}

// EventType returns the CloudEvents type of an event, for example com.testinvite.ticket.updated.
func EventType(entity Entity, op Op) string {
	return TypePrefix + string(entity) + "." + string(op)
}

// Source returns the CloudEvents source of the events of one task.
func Source(organizationID, taskID string) string {
	return "/testinvite/organizations/" + organizationID + "/tasks/" + taskID
}

// Subject returns the NATS subject of an event:
// testinvite.<organization id>.<task id>.<entity>.<op>. The ids must have passed ValidID.
func Subject(organizationID, taskID string, entity Entity, op Op) string {
	return SubjectRoot + "." + organizationID + "." + taskID + "." + string(entity) + "." + string(op)
}

// StreamSubjects is the subject filter of the stream that carries every event.
const StreamSubjects = SubjectRoot + ".>"

// ValidID reports whether id can be used as a TestInvite id in a subject: one or more ASCII letters
// and digits, at most 128 of them.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// EventID returns the deterministic id of a change: the first 16 bytes of the SHA-256 of the
// organization, task, entity, entity id, revision and content hash, as 32 lowercase hex digits.
// Detecting the same change twice gives the same id, so JetStream and ClickHouse drop the copy. A
// record that changes back and forth gets a new id each time because its revision grows.
func EventID(organizationID, taskID string, entity Entity, entityID string, revision, contentHash uint64) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range []string{organizationID, taskID, string(entity), entityID} {
		// Length prefixes keep ("ab", "c") and ("a", "bc") apart.
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], revision)
	h.Write(n[:])
	binary.BigEndian.PutUint64(n[:], contentHash)
	h.Write(n[:])
	sum := h.Sum(nil)
	return hex.EncodeToString(sum[:16])
}

// FormatHash returns a 64-bit content hash as 16 lowercase hex digits.
func FormatHash(h uint64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], h)
	return hex.EncodeToString(b[:])
}

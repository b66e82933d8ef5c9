package diff

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/tisync/tisync/schema"
)

// Errors about one record. Scan.Add wraps them in a *RecordError.
var (
	// ErrInvalidID reports a record id that schema.ValidID rejects.
	ErrInvalidID = errors.New("invalid record id: expected 1 to 128 ASCII letters and digits")
	// ErrInvalidJSON reports raw bytes that are not well-formed JSON.
	ErrInvalidJSON = errors.New("invalid JSON")
	// ErrNotObject reports a record whose top-level JSON value is not an object.
	ErrNotObject = errors.New("record is not a JSON object")
	// ErrTooLarge reports a record larger than MaxRecordBytes.
	ErrTooLarge = errors.New("record too large: limit is " + strconv.Itoa(MaxRecordBytes) + " bytes")
	// ErrIDMismatch reports a record whose own id member (taskId, candidateId or testInstanceId)
	// is missing or differs from the id it was added under.
	ErrIDMismatch = errors.New("record id member disagrees with the record id")
	// ErrTaskMismatch reports a ticket or test session whose taskId differs from the scanned task.
	ErrTaskMismatch = errors.New("record belongs to another task")
)

// Errors about a scan as a whole.
var (
	// ErrInvalidOptions reports Options that NewScan rejects.
	ErrInvalidOptions = errors.New("invalid scan options")
	// ErrSnapshotMismatch reports a previous snapshot of another organization, task or entity than
	// the scan.
	ErrSnapshotMismatch = errors.New("previous snapshot belongs to another organization, task or entity")
	// ErrScanFinished reports a call on a Scan after Finish.
	ErrScanFinished = errors.New("scan already finished")
	// ErrNotMissing reports a confirmed deletion of a record that the scan did not report missing.
	ErrNotMissing = errors.New("record was not reported missing by this scan")
	// ErrPartialDelete reports confirmed deletions passed with a partial scan, which never deletes.
	ErrPartialDelete = errors.New("a partial scan cannot delete records")
)

// Errors about encoded snapshots.
var (
	// ErrCorruptSnapshot reports encoded snapshot bytes that fail their checks.
	ErrCorruptSnapshot = errors.New("corrupt snapshot")
	// ErrUnknownFormat reports an encoded snapshot of a format version this build cannot read.
	ErrUnknownFormat = errors.New("unknown snapshot format version")
)

// RecordError is a record that Scan.Add rejected. The scan stays usable: the record is not added,
// and when the previous snapshot holds the same id it is kept there unchanged, neither updated nor
// reported missing.
type RecordError struct {
	Entity schema.Entity
	// ID is the id the record was added under, possibly invalid.
	ID  string
	Err error
}

// Error returns the entity, the id and the reason.
func (e *RecordError) Error() string {
	id := e.ID
	if len(id) > 140 {
		id = id[:140] + "..."
	}
	return fmt.Sprintf("%s %q: %v", e.Entity, id, e.Err)
}

// Unwrap returns the reason, one of the record errors above.
func (e *RecordError) Unwrap() error { return e.Err }

package clickhouse

import (
	"context"
	"errors"
	"fmt"

	ch "github.com/ClickHouse/clickhouse-go/v2"
)

// ErrClosed is returned by every method of a Client after Close.
var ErrClosed = errors.New("clickhouse client closed")

// ErrLockTimeout is returned by Migrate when another runner held the migration lock for longer
// than Config.MigrationLockTimeout.
var ErrLockTimeout = errors.New("migration lock timed out")

// InsertError reports a failed insert into one table. Retrying the same rows is safe because every
// table deduplicates by key and version.
type InsertError struct {
	// Table is the table the insert went to.
	Table string
	// Rows is the number of rows of the failed insert.
	Rows int
	// RowError reports that the content of the rows caused the failure (a value ClickHouse or the
	// driver cannot convert), so that splitting the batch can isolate the offending row. When it is
	// false the failure does not depend on the rows (network, timeout, overload, missing table or
	// permission) and the same rows should be retried later.
	RowError bool
	// Err is the error of the driver or the server.
	Err error
}

// Error returns the table, row count and cause.
func (e *InsertError) Error() string {
	kind := "retryable"
	if e.RowError {
		kind = "row"
	}
	return fmt.Sprintf("insert %d rows into %s (%s error): %v", e.Rows, e.Table, kind, e.Err)
}

// Unwrap returns the driver or server error.
func (e *InsertError) Unwrap() error { return e.Err }

// IsRowError reports whether err is an *InsertError caused by the content of the rows. Only such
// errors justify splitting a batch to dead-letter a message; every other error is worth a retry.
func IsRowError(err error) bool {
	var ie *InsertError
	return errors.As(err, &ie) && ie.RowError
}

// ChecksumMismatchError reports an applied migration whose embedded file has changed since it was
// applied. Edit a migration by adding a new one instead.
type ChecksumMismatchError struct {
	Version uint32
	File    string
	// Applied is the checksum recorded when the migration ran; Embedded is the current file's.
	Applied, Embedded string
}

// Error names the file and both checksums.
func (e *ChecksumMismatchError) Error() string {
	return fmt.Sprintf("migration %s (version %d) changed after it was applied: recorded checksum %s, embedded file has %s; add a new migration instead of editing an applied one",
		e.File, e.Version, e.Applied, e.Embedded)
}

// rowErrorCodes are ClickHouse exception codes that a value of the inserted rows causes.
var rowErrorCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	53:  true, // TYPE_MISMATCH
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	117: true, // INCORRECT_DATA
	131: true, // TOO_LARGE_STRING_SIZE
	190: true, // SIZES_OF_ARRAYS_DOESNT_MATCH
	321: true, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
	349: true, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
}

// classifySend reports whether an error of PrepareBatch or Send was caused by the rows. Errors the
// server raises for reasons unrelated to the rows, network errors and context errors are not.
func classifySend(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ex *ch.Exception
	if errors.As(err, &ex) {
		return rowErrorCodes[ex.Code]
	}
	return false
}

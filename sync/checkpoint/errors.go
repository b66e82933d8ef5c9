package checkpoint

import (
	"errors"
	"fmt"
)

var (
	// ErrConflict reports that a checkpoint changed between the read that a write was based on
	// and the write: another worker saved, or an operator reset it. The write had no effect; load
	// the checkpoint again and redo the scan.
	ErrConflict = errors.New("checkpoint changed concurrently")
	// ErrNotFound reports a checkpoint that was never stored.
	ErrNotFound = errors.New("checkpoint not found")
	// ErrInvalidKey reports a Key whose ids or entity are invalid.
	ErrInvalidKey = errors.New("invalid checkpoint key")
	// ErrCorrupt matches every *CorruptError with errors.Is.
	ErrCorrupt = errors.New("checkpoint unreadable")
)

// CorruptError reports a checkpoint that cannot be read: a damaged or missing snapshot object, a
// snapshot of an unknown format version, or unreadable metadata. Such a checkpoint is never
// treated as empty, because that would emit every record as created again. An operator resets it
// instead, which starts a full snapshot load.
type CorruptError struct {
	Key Key
	// Object is the snapshot object the metadata points to; empty when the metadata itself is
	// unreadable.
	Object string
	Err    error
}

// Error names the checkpoint, the reason and the command that resets it.
func (e *CorruptError) Error() string {
	what := "metadata"
	if e.Object != "" {
		what = fmt.Sprintf("snapshot object %q", e.Object)
	}
	return fmt.Sprintf("checkpoint %s: %s unreadable: %v; run %q to start over with a full snapshot load",
		e.Key, what, e.Err, e.Key.ResetCommand())
}

// Unwrap returns the reason, for example an error wrapping diff.ErrCorruptSnapshot or
// diff.ErrUnknownFormat.
func (e *CorruptError) Unwrap() error { return e.Err }

// Is reports whether target is ErrCorrupt.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

package poll

import (
	"errors"
	"fmt"
)

var (
	// ErrSkipped reports a poll that did not run because another process holds the task's lease.
	ErrSkipped = errors.New("poll skipped")
	// ErrTaskNotFound reports a configured task that TestInvite does not know.
	ErrTaskNotFound = errors.New("task not found")
)

// MassDeleteError describes a tripped mass-delete guard. A poll reports it in its Summary, not as
// an error: the poll itself succeeds without the deletes.
type MassDeleteError struct {
	Missing  int
	Previous int
	MaxShare float64
}

func (e *MassDeleteError) Error() string {
	share := 0.0
	if e.Previous > 0 {
		share = float64(e.Missing) / float64(e.Previous)
	}
	return fmt.Sprintf("%d of %d records would be deleted (%.1f%%), above poll.mass_delete.max_share %.1f%%",
		e.Missing, e.Previous, 100*share, 100*e.MaxShare)
}

package consume

import (
	"errors"
	"strconv"
)

// ErrNotDeadLetter is returned by DeadLetterQueue methods for a stream sequence that holds no dead
// letter (deleted, replayed or never written).
var ErrNotDeadLetter = errors.New("no dead letter at this sequence")

// ErrReplayDuplicate is returned by DeadLetterQueue.Replay when the event stream dropped the
// republished message as a duplicate: the same dead letter was replayed before, inside the stream's
// duplicate window, and its deletion failed. The dead letter is kept.
var ErrReplayDuplicate = errors.New("replayed message dropped as duplicate")

// DeadLetterError reports a dead letter that cannot be replayed because headers it needs are
// missing or malformed.
type DeadLetterError struct {
	// Sequence is the dead letter's sequence in the dead-letter stream.
	Sequence uint64
	// Reason describes what is wrong.
	Reason string
}

// Error returns the sequence and the reason.
func (e *DeadLetterError) Error() string {
	return "dead letter " + strconv.FormatUint(e.Sequence, 10) + ": " + e.Reason
}

package schema

import "errors"

// ErrInvalidEvent is matched (errors.Is) by every error that rejects an event: a *SchemaError from
// ValidateEvent, DecodeEvent or DecodeRows, and a *SemanticError from DecodeEvent, DecodeRows,
// CheckSubject or Rows. A message whose event matches it can never be written and belongs in a
// dead-letter stream.
var ErrInvalidEvent = errors.New("invalid event")

// SchemaError reports that an event breaks the JSON Schema, as ValidateEvent finds, or that it is
// not JSON or not a JSON object, as every decoding function finds.
type SchemaError struct {
	// Reason lists the violations, each with the JSON pointer of the offending value.
	Reason string
}

// Error returns the violations prefixed with the schema id.
func (e *SchemaError) Error() string { return "event breaks schema " + DataSchemaV1 + ": " + e.Reason }

// Is reports whether target is ErrInvalidEvent.
func (e *SchemaError) Is(target error) bool { return target == ErrInvalidEvent }

// SemanticError reports an event that is a JSON object but that the native checks reject. A member
// may be missing, of the wrong JSON type or out of its range, or the event may contradict itself,
// for example with a type that does not match its entity and op.
type SemanticError struct {
	// Field is the JSON name of the offending member, such as "type" or "data.after".
	Field string
	// Reason describes what is wrong with the member.
	Reason string
}

// Error returns the field and the reason.
func (e *SemanticError) Error() string { return "invalid event: " + e.Field + ": " + e.Reason }

// Is reports whether target is ErrInvalidEvent.
func (e *SemanticError) Is(target error) bool { return target == ErrInvalidEvent }

package schema

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"sync"

	json "github.com/goccy/go-json"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// printer renders validation messages in English.
var printer = message.NewPrinter(language.English)

// EventSchemaV1 is the JSON Schema (draft 2020-12) of version 1 of the change event: the CloudEvents
// envelope, its data member and the normalized task, ticket and test session records.
//
//go:embed event.v1.schema.json
var EventSchemaV1 []byte

// eventSchemaURL is the $id of EventSchemaV1.
const eventSchemaURL = DataSchemaV1

var compiled = sync.OnceValues(func() (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(EventSchemaV1))
	if err != nil {
		return nil, fmt.Errorf("parse event schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(eventSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("load event schema: %w", err)
	}
	s, err := c.Compile(eventSchemaURL)
	if err != nil {
		return nil, fmt.Errorf("compile event schema: %w", err)
	}
	return s, nil
})

// ValidateEvent checks one JSON-encoded event against EventSchemaV1. It returns a *SchemaError
// (matching ErrInvalidEvent) that lists every violation when the event breaks the schema, including
// when b is not JSON at all. It is safe for concurrent use.
func ValidateEvent(b []byte) error {
	s, err := compiled()
	if err != nil {
		// The schema is embedded and covered by tests, so this is a build defect, not bad input.
		return err
	}
	doc, err := decodeDocument(b)
	if err != nil {
		return &SchemaError{Reason: "invalid JSON: " + err.Error()}
	}
	if err := s.Validate(doc); err != nil {
		return validationError(err, "")
	}
	return nil
}

// validationError turns a validator error into a *SchemaError; prefix is the JSON pointer of the
// validated value inside the event.
func validationError(err error, prefix string) error {
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		return &SchemaError{Reason: flattenValidation(ve, prefix)}
	}
	return &SchemaError{Reason: err.Error()}
}

// decodeDocument decodes one JSON value into the generic form the validator reads, with numbers as
// json.Number so that integers keep their precision. It rejects trailing data.
func decodeDocument(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); err != io.EOF {
		return nil, errors.New("trailing data after the JSON value")
	}
	return doc, nil
}

// flattenValidation turns the validator's tree of causes into one line per leaf violation, each
// prefixed with the JSON pointer of the offending value.
func flattenValidation(ve *jsonschema.ValidationError, prefix string) string {
	var buf bytes.Buffer
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			if buf.Len() > 0 {
				buf.WriteString("; ")
			}
			loc := prefix
			for _, tok := range e.InstanceLocation {
				loc += "/" + tok
			}
			if loc == "" {
				loc = "/"
			}
			fmt.Fprintf(&buf, "at %s: %s", loc, e.ErrorKind.LocalizedString(printer))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return buf.String()
}

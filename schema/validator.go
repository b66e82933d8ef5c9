package schema

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/zeebo/xxh3"
)

// parts are the subschemas of EventSchemaV1 that EventValidator applies one by one.
type parts struct {
	envelope *jsonschema.Schema
	records  map[Entity]*jsonschema.Schema
}

var compiledParts = sync.OnceValues(func() (*parts, error) {
	doc, err := decodeDocument(EventSchemaV1)
	if err != nil {
		return nil, fmt.Errorf("parse event schema: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource(eventSchemaURL, doc); err != nil {
		return nil, fmt.Errorf("load event schema: %w", err)
	}
	p := &parts{records: map[Entity]*jsonschema.Schema{}}
	if p.envelope, err = c.Compile(eventSchemaURL + "#/$defs/envelope"); err != nil {
		return nil, fmt.Errorf("compile event envelope schema: %w", err)
	}
	for e, def := range map[Entity]string{EntityTask: "task", EntityTicket: "ticket", EntityTestSession: "testSession"} {
		if p.records[e], err = c.Compile(eventSchemaURL + "#/$defs/" + def); err != nil {
			return nil, fmt.Errorf("compile %s record schema: %w", e, err)
		}
	}
	return p, nil
})

// entitySeeds make the image hashes of different entities differ, because an image accepted as a
// task may still be an invalid ticket.
var entitySeeds = map[Entity]uint64{EntityTask: 1, EntityTicket: 2, EntityTestSession: 3}

// EventValidator checks events against EventSchemaV1 with the same verdict as ValidateEvent, but
// validates each distinct record image only once. A record's image usually travels twice, as the
// after image of one change and the before image of the next, and images are the costly part of
// the document. It remembers the 128-bit hashes of the last images it accepted, per entity. It is safe
// for concurrent use.
type EventValidator struct {
	mu   sync.Mutex
	seen map[xxh3.Uint128]struct{}
	ring []xxh3.Uint128
	next int
}

// NewEventValidator returns a validator that remembers up to capacity record images; 0 disables the
// memory, so every image is validated.
func NewEventValidator(capacity int) *EventValidator {
	return &EventValidator{seen: make(map[xxh3.Uint128]struct{}, capacity), ring: make([]xxh3.Uint128, capacity)}
}

// Validate checks b, whose decoded form ev came from DecodeEvent(b), against EventSchemaV1. It
// returns a *SchemaError listing the violations, exactly when ValidateEvent(b) would.
func (v *EventValidator) Validate(b []byte, ev *Event) error {
	return v.validate(b, ev.Data.Entity, ev.Data.Before, ev.Data.After)
}

// ValidateDecoded is Validate for an event that DecodeRows decoded from b.
func (v *EventValidator) ValidateDecoded(b []byte, d *Decoded) error {
	before, after := d.Images()
	return v.validate(b, d.Entity(), []byte(before), []byte(after))
}

func (v *EventValidator) validate(b []byte, entity Entity, before, after []byte) error {
	p, err := compiledParts()
	if err != nil {
		return err
	}

	// The envelope is validated with the images blanked to {}, which the envelope schema accepts
	// wherever it accepts an object, so that the images are not decoded twice.
	images := []struct {
		name string
		raw  []byte
	}{{"before", before}, {"after", after}}
	envelope := b
	from := 0
	for _, img := range images {
		if IsNull(img.raw) {
			continue
		}
		i := bytes.Index(envelope[from:], img.raw)
		if i < 0 {
			continue // not found verbatim: the envelope check reads the image, which is correct, only slower
		}
		i += from
		blanked := make([]byte, 0, len(envelope)-len(img.raw)+2)
		blanked = append(append(append(blanked, envelope[:i]...), "{}"...), envelope[i+len(img.raw):]...)
		envelope, from = blanked, i+2
	}
	doc, err := decodeDocument(envelope)
	if err != nil {
		return &SchemaError{Reason: "invalid JSON: " + err.Error()}
	}
	if err := p.envelope.Validate(doc); err != nil {
		return validationError(err, "")
	}

	record := p.records[entity]
	for _, img := range images {
		if IsNull(img.raw) {
			continue
		}
		key := xxh3.Hash128Seed(img.raw, entitySeeds[entity])
		if v.known(key) {
			continue
		}
		doc, err := decodeDocument(img.raw)
		if err != nil {
			return &SchemaError{Reason: "invalid JSON in data." + img.name + ": " + err.Error()}
		}
		if err := record.Validate(doc); err != nil {
			return validationError(err, "/data/"+img.name)
		}
		v.remember(key)
	}
	return nil
}

func (v *EventValidator) known(key xxh3.Uint128) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	_, ok := v.seen[key]
	return ok
}

func (v *EventValidator) remember(key xxh3.Uint128) {
	if len(v.ring) == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if _, ok := v.seen[key]; ok {
		return
	}
	old := v.ring[v.next]
	if _, ok := v.seen[old]; ok && old != (xxh3.Uint128{}) {
		delete(v.seen, old)
	}
	v.ring[v.next] = key
	v.next = (v.next + 1) % len(v.ring)
	v.seen[key] = struct{}{}
}

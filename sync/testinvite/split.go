package testinvite

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// The page splitter finds the records of a page body in one pass, so that each record is parsed
// by encoding/json only once, for its typed fields. It checks the structure (nesting, strings and
// escapes) of what it walks; encoding/json validates each record and the pagination block fully.

// errTruncated is the splitter's error for a body that ends inside a value.
var errTruncated = errors.New("unexpected end of JSON input")

// syntaxError is the splitter's error for a malformed body.
type syntaxError struct {
	msg    string
	offset int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.offset) }

// splitPage returns the elements of the array member itemsKey and the raw pagination member of a
// page, looking one level into a payload member when the top level has neither.
func splitPage(body []byte, itemsKey string) (items [][]byte, pagination []byte, err error) {
	items, pagination, payload, found, err := splitObject(body, itemsKey)
	if err != nil {
		return nil, nil, err
	}
	if !found && pagination == nil && payload != nil {
		items, pagination, _, _, err = splitObject(payload, itemsKey)
	}
	return items, pagination, err
}

// splitObject walks one top-level object. found reports whether itemsKey was present.
func splitObject(body []byte, itemsKey string) (items [][]byte, pagination, payload []byte, found bool, err error) {
	s := splitter{b: body}
	s.space()
	if err := s.expect('{'); err != nil {
		return nil, nil, nil, false, err
	}
	s.space()
	if s.peek() == '}' {
		s.i++
		return nil, nil, nil, false, s.end()
	}
	for {
		s.space()
		rawKey, err := s.str()
		if err != nil {
			return nil, nil, nil, false, err
		}
		s.space()
		if err := s.expect(':'); err != nil {
			return nil, nil, nil, false, err
		}
		s.space()
		start := s.i
		key := string(rawKey) // compared and switched on without an allocation
		switch {
		case key == itemsKey && s.peek() == '[':
			found = true
			if items, err = s.array(); err != nil {
				return nil, nil, nil, false, err
			}
		case key == itemsKey && s.peek() == 'n':
			found = true
			if err := s.value(); err != nil {
				return nil, nil, nil, false, err
			}
		default:
			if err := s.value(); err != nil {
				return nil, nil, nil, false, err
			}
			switch key {
			case "pagination":
				pagination = body[start:s.i]
			case "payload":
				payload = body[start:s.i]
			case itemsKey:
				return nil, nil, nil, false, &syntaxError{"member " + itemsKey + " is not an array", start}
			}
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return items, pagination, payload, found, s.end()
		case 0:
			return nil, nil, nil, false, errTruncated
		default:
			return nil, nil, nil, false, &syntaxError{"expected , or } after object member", s.i}
		}
	}
}

type splitter struct {
	b []byte
	i int
}

func (s *splitter) peek() byte {
	if s.i >= len(s.b) {
		return 0
	}
	return s.b[s.i]
}

func (s *splitter) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *splitter) expect(c byte) error {
	switch s.peek() {
	case c:
		s.i++
		return nil
	case 0:
		return errTruncated
	}
	return &syntaxError{fmt.Sprintf("expected %q", c), s.i}
}

func (s *splitter) end() error {
	s.space()
	if s.i != len(s.b) {
		return &syntaxError{"data after the top-level value", s.i}
	}
	return nil
}

// str reads a string and returns its raw content without copying. A key written with escapes
// does not match the member names the splitter looks for, and none of them needs escapes.
func (s *splitter) str() ([]byte, error) {
	if err := s.expect('"'); err != nil {
		return nil, err
	}
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			out := s.b[start:s.i]
			s.i++
			return out, nil
		case c == '\\':
			s.i += 2
		case c < 0x20:
			return nil, &syntaxError{"control character in string", s.i}
		default:
			s.i++
		}
	}
	return nil, errTruncated
}

// array reads an array and returns its elements.
func (s *splitter) array() ([][]byte, error) {
	s.i++ // [
	items := make([][]byte, 0, 16)
	s.space()
	if s.peek() == ']' {
		s.i++
		return items, nil
	}
	for {
		s.space()
		start := s.i
		if err := s.value(); err != nil {
			return nil, err
		}
		items = append(items, s.b[start:s.i])
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return items, nil
		case 0:
			return nil, errTruncated
		default:
			return nil, &syntaxError{"expected , or ] after array element", s.i}
		}
	}
}

// value skips one value, checking the nesting of brackets and the termination of strings.
func (s *splitter) value() error {
	depth := 0
	for {
		s.space()
		switch c := s.peek(); c {
		case 0:
			return errTruncated
		case '"':
			if _, err := s.str(); err != nil {
				return err
			}
		case '{', '[':
			depth++
			s.i++
			continue
		case '}', ']':
			if depth == 0 {
				return &syntaxError{fmt.Sprintf("unexpected %q", c), s.i}
			}
			depth--
			s.i++
		case ',', ':':
			if depth == 0 {
				return &syntaxError{fmt.Sprintf("unexpected %q", c), s.i}
			}
			s.i++
			continue
		default:
			start := s.i
			for s.i < len(s.b) && !isDelimiter(s.b[s.i]) {
				s.i++
			}
			if s.i == start {
				return &syntaxError{fmt.Sprintf("unexpected %q", c), s.i}
			}
			if s.i == len(s.b) && depth > 0 {
				return errTruncated
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

func isDelimiter(c byte) bool {
	switch c {
	case ',', ':', '{', '}', '[', ']', '"', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// memberString returns the string value of the member key of a record's top-level object without
// decoding the other members. It returns "" when the member is missing or null, and an error when
// the value is not a string.
func memberString(record []byte, key string) (string, error) {
	s := splitter{b: record}
	s.space()
	if err := s.expect('{'); err != nil {
		return "", err
	}
	s.space()
	if s.peek() == '}' {
		return "", nil
	}
	for {
		s.space()
		rawKey, err := s.str()
		if err != nil {
			return "", err
		}
		s.space()
		if err := s.expect(':'); err != nil {
			return "", err
		}
		s.space()
		start := s.i
		if err := s.value(); err != nil {
			return "", err
		}
		if string(rawKey) == key {
			v := record[start:s.i]
			switch {
			case string(v) == "null":
				return "", nil
			case len(v) < 2 || v[0] != '"':
				return "", &syntaxError{"member " + key + " is not a string", start}
			case bytes.IndexByte(v, '\\') < 0:
				return string(v[1 : len(v)-1]), nil
			}
			var out string
			if err := json.Unmarshal(v, &out); err != nil {
				return "", err
			}
			return out, nil
		}
		s.space()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			return "", nil
		case 0:
			return "", errTruncated
		default:
			return "", &syntaxError{"expected , or } after object member", s.i}
		}
	}
}

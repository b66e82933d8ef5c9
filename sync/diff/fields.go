package diff

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// topMember is one top-level member of a canonical object: its name as encoded (without quotes)
// and its canonical value.
type topMember struct{ key, value []byte }

// appendMembers appends the top-level members of the canonical object rec to dst. It checks bounds
// but not the full grammar, so it relies on rec coming from a Normalizer.
func appendMembers(dst []topMember, rec []byte) ([]topMember, error) {
	if len(rec) < 2 || rec[0] != '{' || rec[len(rec)-1] != '}' {
		return dst, fmt.Errorf("normalized record is not an object: %w", ErrCorruptSnapshot)
	}
	i := 1
	if rec[i] == '}' {
		return dst, nil
	}
	for {
		if i >= len(rec) || rec[i] != '"' {
			return dst, fmt.Errorf("normalized record: member name expected at offset %d: %w", i, ErrCorruptSnapshot)
		}
		keyEnd := skipString(rec, i)
		if keyEnd < 0 || keyEnd >= len(rec) || rec[keyEnd] != ':' {
			return dst, fmt.Errorf("normalized record: bad member name at offset %d: %w", i, ErrCorruptSnapshot)
		}
		valEnd := skipValue(rec, keyEnd+1)
		if valEnd < 0 || valEnd >= len(rec) {
			return dst, fmt.Errorf("normalized record: bad value at offset %d: %w", keyEnd+1, ErrCorruptSnapshot)
		}
		dst = append(dst, topMember{key: rec[i+1 : keyEnd-1], value: rec[keyEnd+1 : valEnd]})
		switch rec[valEnd] {
		case ',':
			i = valEnd + 1
		case '}':
			if valEnd != len(rec)-1 {
				return dst, fmt.Errorf("normalized record: data after the object: %w", ErrCorruptSnapshot)
			}
			return dst, nil
		default:
			return dst, fmt.Errorf("normalized record: unexpected %q at offset %d: %w", rec[valEnd], valEnd, ErrCorruptSnapshot)
		}
	}
}

// skipString returns the index after the string that starts at b[i], or -1.
func skipString(b []byte, i int) int {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return -1
}

// skipValue returns the index after the compact JSON value that starts at b[i], or -1.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				j = skipString(b, j)
				if j < 0 {
					return -1
				}
				j--
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		return j
	}
}

// decodeKey returns the string value of an encoded member name.
func decodeKey(key []byte) string {
	if bytes.IndexByte(key, '\\') < 0 {
		return string(key)
	}
	// The canonical escapes (\" \\ \b \f \n \r \t \u00XX) are all valid Go escapes.
	s, err := strconv.Unquote(`"` + string(key) + `"`)
	if err != nil {
		return string(key)
	}
	return s
}

// ChangedFields returns the sorted names of the top-level members whose values differ between
// two normalized records, a member present in only one of them included. It compares canonical
// bytes, so both records must come from a Normalizer. It returns an error wrapping
// ErrCorruptSnapshot when one of them is not a canonical object.
func ChangedFields(before, after []byte) ([]string, error) {
	var buf [64]topMember
	a, err := appendMembers(buf[:0], before)
	if err != nil {
		return nil, err
	}
	split := len(a)
	all, err := appendMembers(a, after)
	if err != nil {
		return nil, err
	}
	a, b := all[:split], all[split:]

	// Both member lists are in canonical name order, so one merge pass finds every difference.
	fields := []string{}
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		var c int
		switch {
		case i == len(a):
			c = 1
		case j == len(b):
			c = -1
		default:
			c = bytes.Compare(a[i].key, b[j].key)
		}
		switch {
		case c < 0:
			fields = append(fields, decodeKey(a[i].key))
			i++
		case c > 0:
			fields = append(fields, decodeKey(b[j].key))
			j++
		default:
			if !bytes.Equal(a[i].value, b[j].value) {
				fields = append(fields, decodeKey(a[i].key))
			}
			i++
			j++
		}
	}
	slices.Sort(fields)
	return fields, nil
}

// Field returns the canonical value of the top-level member name of a normalized record, and
// whether the member is present.
func Field(normalized []byte, name string) (json.RawMessage, bool) {
	var buf [64]topMember
	members, err := appendMembers(buf[:0], normalized)
	if err != nil {
		return nil, false
	}
	for _, m := range members {
		if decodeKey(m.key) == name {
			return m.value, true
		}
	}
	return nil, false
}

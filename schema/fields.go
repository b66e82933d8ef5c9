package schema

import (
	"math"
	"sort"
	"strconv"
	"time"
)

// The readers below each consume one member value for the native checks. Their field arguments
// are joined into the member's dotted name only when they report an error, so the happy path
// builds no strings. A value that is not JSON at all yields the scanner's *syntaxError. A value of
// the wrong type or out of range yields a *SemanticError naming the member.

func join(where, name string) string {
	switch {
	case where == "":
		return name
	case name == "":
		return where
	}
	return where + "." + name
}

// mismatch returns the error for a value of kind got where want was expected.
func (sc *scanner) mismatch(got kind, where, name, want string) error {
	if got == kindInvalid {
		_, err := sc.skip(0)
		return err
	}
	return semantic(join(where, name), "expected %s, got %s", want, got)
}

func duplicate(where, name string) error {
	return semantic(join(where, name), "duplicate member: a name may appear only once in an object")
}

func missing(where, name string) error {
	return semantic(join(where, name), "missing: the schema requires it")
}

// requireAll returns the error for the first member of names whose bit (1<<index) is not in seen.
func requireAll(seen, required uint32, where string, names []string) error {
	if seen&required == required {
		return nil
	}
	for i, n := range names {
		if bit := uint32(1) << i; required&bit != 0 && seen&bit == 0 {
			return missing(where, n)
		}
	}
	return nil
}

func readString(sc *scanner, where, name string) (string, error) {
	if k := sc.peek(); k != kindString {
		return "", sc.mismatch(k, where, name, "string")
	}
	return sc.str()
}

// readNullableString reads a string or null into *dst, pointing it at store for a string.
func readNullableString(sc *scanner, where, name string, dst **string, store *string) error {
	switch k := sc.peek(); k {
	case kindNull:
		*dst = nil
		return sc.literal("null")
	case kindString:
		s, err := sc.str()
		*store, *dst = s, store
		return err
	default:
		return sc.mismatch(k, where, name, "string or null")
	}
}

func readBool(sc *scanner, where, name string) (uint8, error) {
	if k := sc.peek(); k != kindBoolean {
		return 0, sc.mismatch(k, where, name, "boolean")
	}
	b, err := sc.boolean()
	return flag(b), err
}

// readID reads a TestInvite id: 1 to 128 ASCII letters and digits.
func readID(sc *scanner, where, name string) (string, error) {
	s, err := readString(sc, where, name)
	if err == nil && !ValidID(s) {
		err = semantic(join(where, name), "%q is not 1 to 128 ASCII letters and digits", s)
	}
	return s, err
}

// readInteger reads a whole number from lo to hi.
func readInteger(sc *scanner, where, name string, lo, hi int64) (int64, error) {
	if k := sc.peek(); k != kindNumber {
		return 0, sc.mismatch(k, where, name, "integer")
	}
	lit, err := sc.number()
	if err != nil {
		return 0, err
	}
	v, ok := integerIn(lit, lo, hi)
	if !ok {
		return 0, semantic(join(where, name), "%s is invalid: expected an integer from %d to %d", lit, lo, hi)
	}
	return v, nil
}

// readPositive reads a whole number from 1 to 2^64-1. JSON Schema sets no maximum for these
// members, but their columns are UInt64.
func readPositive(sc *scanner, where, name string) (uint64, error) {
	if k := sc.peek(); k != kindNumber {
		return 0, sc.mismatch(k, where, name, "integer")
	}
	lit, err := sc.number()
	if err != nil {
		return 0, err
	}
	mag, neg, whole, fits := wholeNumber(lit)
	if !whole || !fits || neg || mag == 0 {
		return 0, semantic(join(where, name), "%s is invalid: expected an integer from 1 to %d", lit, uint64(math.MaxUint64))
	}
	return mag, nil
}

// readUnixSeconds reads Unix seconds from 0 to 2^32-1, the range of ClickHouse's DateTime.
func readUnixSeconds(sc *scanner, where, name string) (time.Time, error) {
	sec, err := readInteger(sc, where, name, 0, math.MaxUint32)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(sec, 0).UTC(), nil
}

// readNullableUnixSeconds reads null or Unix seconds into *dst, pointing it at store for a time.
func readNullableUnixSeconds(sc *scanner, where, name string, dst **time.Time, store *time.Time) error {
	if sc.peek() == kindNull {
		*dst = nil
		return sc.literal("null")
	}
	t, err := readUnixSeconds(sc, where, name)
	if err != nil {
		return err
	}
	*store, *dst = t, store
	return nil
}

// readNumber reads any number that fits a float64. JSON Schema's "number" has no range, but the
// columns are Float64, so a literal beyond ±1.8e308 is rejected.
func readNumber(sc *scanner, where, name string) (float64, error) {
	if k := sc.peek(); k != kindNumber {
		return 0, sc.mismatch(k, where, name, "number")
	}
	lit, err := sc.number()
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return 0, semantic(join(where, name), "%s is out of the range of a 64-bit float", lit)
	}
	return f, nil
}

// readStrings reads an array of strings, appending them to dst[:0].
func readStrings(sc *scanner, where, name string, dst []string) ([]string, error) {
	if k := sc.peek(); k != kindArray {
		return nil, sc.mismatch(k, where, name, "array of strings")
	}
	sc.arrayStart()
	out := dst[:0]
	for first := true; ; {
		more, err := sc.item(&first)
		if err != nil {
			return nil, err
		}
		if !more {
			return out, nil
		}
		if k := sc.peek(); k != kindString {
			return nil, sc.mismatch(k, where, name+"["+strconv.Itoa(len(out))+"]", "string")
		}
		s, err := sc.str()
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
}

// readObjects reads an array whose elements must be objects and returns its text.
func readObjects(sc *scanner, where, name string) (string, error) {
	if k := sc.peek(); k != kindArray {
		return "", sc.mismatch(k, where, name, "array of objects")
	}
	start := sc.i
	sc.arrayStart()
	for first, n := true, 0; ; n++ {
		more, err := sc.item(&first)
		if err != nil {
			return "", err
		}
		if !more {
			return sc.s[start:sc.i], nil
		}
		if k := sc.peek(); k != kindObject {
			return "", sc.mismatch(k, where, name+"["+strconv.Itoa(n)+"]", "object")
		}
		if _, err := sc.skip(1); err != nil {
			return "", err
		}
	}
}

// readTags reads a tag object into keys and values sorted by key, as the parallel tag_keys and
// tag_values columns store them. A string value is stored decoded and any other value as its JSON
// text. When a key appears twice the last value wins, as it does when decoding into a Go map.
func readTags(sc *scanner, where, name string) (keys, values []string, err error) {
	if k := sc.peek(); k != kindObject {
		return nil, nil, sc.mismatch(k, where, name, "object")
	}
	sc.objectStart()
	keys, values = []string{}, []string{}
	for first := true; ; {
		key, more, err := sc.member(&first)
		if err != nil {
			return nil, nil, err
		}
		if !more {
			break
		}
		var v string
		if sc.peek() == kindString {
			v, err = sc.str()
		} else {
			v, _, err = sc.span(1)
		}
		if err != nil {
			return nil, nil, err
		}
		keys = append(keys, key)
		values = append(values, v)
	}
	keys, values = sortTags(keys, values)
	return keys, values, nil
}

// tagPairs sorts parallel key and value slices by key, stably.
type tagPairs struct{ keys, values []string }

func (p tagPairs) Len() int           { return len(p.keys) }
func (p tagPairs) Less(i, j int) bool { return p.keys[i] < p.keys[j] }
func (p tagPairs) Swap(i, j int) {
	p.keys[i], p.keys[j] = p.keys[j], p.keys[i]
	p.values[i], p.values[j] = p.values[j], p.values[i]
}

// sortTags sorts the pairs by key and drops every pair whose key appears again later, in place.
func sortTags(keys, values []string) ([]string, []string) {
	if len(keys) < 2 {
		return keys, values
	}
	sort.Stable(tagPairs{keys, values})
	out := 0
	for i := range keys {
		if i+1 < len(keys) && keys[i+1] == keys[i] {
			continue // a later pair with the same key wins
		}
		keys[out], values[out] = keys[i], values[i]
		out++
	}
	return keys[:out], values[:out]
}

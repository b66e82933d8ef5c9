package schema

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// maxDepth bounds the nesting of arrays and objects, as encoding/json does, so that a hostile
// document cannot exhaust the stack.
const maxDepth = 10000

// scanner reads one JSON document (RFC 8259) from a string, token by token, without building
// generic values. Strings without escapes are returned as substrings of the document, so decoding
// allocates only for escaped strings. The grammar is the one encoding/json accepts: invalid UTF-8
// and lone surrogates in strings are replaced with U+FFFD, as encoding/json does. It is not safe
// for concurrent use.
type scanner struct {
	s string
	i int
}

// syntaxError is a JSON grammar violation at a byte offset.
type syntaxError struct {
	offset int
	msg    string
}

func (e *syntaxError) Error() string { return e.msg + " at offset " + strconv.Itoa(e.offset) }

func (sc *scanner) fail(msg string) error { return &syntaxError{offset: sc.i, msg: msg} }

// unexpected returns the error for the byte at the current offset, or for the end of input.
func (sc *scanner) unexpected(context string) error {
	if sc.i >= len(sc.s) {
		return sc.fail("unexpected end of JSON input " + context)
	}
	return sc.fail("invalid character " + strconv.QuoteRune(rune(sc.s[sc.i])) + " " + context)
}

func (sc *scanner) skipSpace() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// kind is the JSON type of the next value, as JSON Schema names it ("integer" aside).
type kind uint8

const (
	kindInvalid kind = iota
	kindNull
	kindBoolean
	kindNumber
	kindString
	kindArray
	kindObject
)

var kindNames = [...]string{"invalid", "null", "boolean", "number", "string", "array", "object"}

func (k kind) String() string { return kindNames[k] }

// peek skips whitespace and returns the kind of the next value without consuming it.
func (sc *scanner) peek() kind {
	sc.skipSpace()
	if sc.i >= len(sc.s) {
		return kindInvalid
	}
	switch c := sc.s[sc.i]; {
	case c == '{':
		return kindObject
	case c == '[':
		return kindArray
	case c == '"':
		return kindString
	case c == 't' || c == 'f':
		return kindBoolean
	case c == 'n':
		return kindNull
	case c == '-' || '0' <= c && c <= '9':
		return kindNumber
	}
	return kindInvalid
}

// literal consumes the literal word (true, false or null).
func (sc *scanner) literal(word string) error {
	if len(sc.s)-sc.i >= len(word) && sc.s[sc.i:sc.i+len(word)] == word {
		sc.i += len(word)
		return nil
	}
	for j := 0; j < len(word); j++ {
		if sc.i+j >= len(sc.s) || sc.s[sc.i+j] != word[j] {
			sc.i += j
			return sc.unexpected("in literal " + word)
		}
	}
	return nil
}

// boolean consumes true or false.
func (sc *scanner) boolean() (bool, error) {
	if sc.s[sc.i] == 't' {
		return true, sc.literal("true")
	}
	return false, sc.literal("false")
}

// number consumes a number and returns its literal text.
func (sc *scanner) number() (string, error) {
	start := sc.i
	s := sc.s
	i := sc.i
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	default:
		sc.i = i
		return "", sc.unexpected("in numeric literal")
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			sc.i = i
			return "", sc.unexpected("after decimal point in numeric literal")
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			sc.i = i
			return "", sc.unexpected("in exponent of numeric literal")
		}
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
	}
	sc.i = i
	return s[start:i], nil
}

// plain marks the bytes a string can contain without a closer look: not the quote, not the
// backslash, not a control character and not the start of a multi-byte UTF-8 sequence.
var plain = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str consumes a string and returns its value. A string without escapes or invalid UTF-8 is a
// substring of the document; any other allocates.
func (sc *scanner) str() (string, error) {
	s := sc.s
	i := sc.i + 1 // after the opening quote
	start := i
	ascii := true
	for {
		for i < len(s) && plain[s[i]] {
			i++
		}
		if i >= len(s) {
			sc.i = i
			return "", sc.unexpected("in string literal")
		}
		c := s[i]
		switch {
		case c == '"':
			sc.i = i + 1
			if ascii || utf8.ValidString(s[start:i]) {
				return s[start:i], nil
			}
			return unescape(s[start:i]), nil
		case c == '\\':
			return sc.escapedStr(start)
		case c < 0x20:
			sc.i = i
			return "", sc.unexpected("in string literal")
		default:
			ascii = false
		}
		i++
	}
}

// escapedStr finishes a string that contains escapes, which starts at byte start.
func (sc *scanner) escapedStr(start int) (string, error) {
	s := sc.s
	i := start
	for {
		if i >= len(s) {
			sc.i = i
			return "", sc.unexpected("in string literal")
		}
		c := s[i]
		switch {
		case c == '"':
			sc.i = i + 1
			return unescape(s[start:i]), nil
		case c == '\\':
			i++
			if i >= len(s) {
				sc.i = i
				return "", sc.unexpected("in string escape code")
			}
			switch s[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for j := 0; j < 4; j++ {
					if i >= len(s) || !isHex(s[i]) {
						sc.i = i
						return "", sc.unexpected("in \\u hexadecimal character escape")
					}
					i++
				}
			default:
				sc.i = i
				return "", sc.unexpected("in string escape code")
			}
		case c < 0x20:
			sc.i = i
			return "", sc.unexpected("in string literal")
		default:
			i++
		}
	}
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// unescape decodes the body of a string literal whose escapes are known to be well formed, with
// encoding/json's replacements of invalid UTF-8 and lone surrogates.
func unescape(s string) string {
	b := make([]byte, 0, len(s)+2*utf8.UTFMax)
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			i++
			switch s[i] {
			case '"', '\\', '/':
				b = append(b, s[i])
			case 'b':
				b = append(b, '\b')
			case 'f':
				b = append(b, '\f')
			case 'n':
				b = append(b, '\n')
			case 'r':
				b = append(b, '\r')
			case 't':
				b = append(b, '\t')
			case 'u':
				r := hex4(s[i+1:])
				i += 4
				if utf16.IsSurrogate(r) {
					// A valid pair is decoded as one rune; any other surrogate becomes U+FFFD
					// and the escape after it is decoded on its own.
					r2 := rune(-1)
					if i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' {
						r2 = hex4(s[i+3:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				b = utf8.AppendRune(b, r)
			}
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b = utf8.AppendRune(b, utf8.RuneError)
			} else {
				b = append(b, s[i:i+size]...)
			}
			i += size
		}
	}
	return string(b)
}

// hex4 decodes four hex digits known to be valid.
func hex4(s string) rune {
	var r rune
	for j := 0; j < 4; j++ {
		c := s[j]
		switch {
		case c <= '9':
			c -= '0'
		case c <= 'F':
			c -= 'A' - 10
		default:
			c -= 'a' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// objectStart consumes the opening brace of an object.
func (sc *scanner) objectStart() {
	sc.i++
}

// member reads the next member name of an object after objectStart, with its colon. It returns
// ok false after consuming the closing brace. first must start true and is updated.
func (sc *scanner) member(first *bool) (name string, ok bool, err error) {
	sc.skipSpace()
	if sc.i < len(sc.s) && sc.s[sc.i] == '}' && *first {
		sc.i++
		return "", false, nil
	}
	if !*first {
		if sc.i >= len(sc.s) {
			return "", false, sc.unexpected("after object key:value pair")
		}
		switch sc.s[sc.i] {
		case '}':
			sc.i++
			return "", false, nil
		case ',':
			sc.i++
			sc.skipSpace()
		default:
			return "", false, sc.unexpected("after object key:value pair")
		}
	}
	*first = false
	if sc.i >= len(sc.s) || sc.s[sc.i] != '"' {
		return "", false, sc.unexpected("looking for beginning of object key string")
	}
	if name, err = sc.str(); err != nil {
		return "", false, err
	}
	sc.skipSpace()
	if sc.i >= len(sc.s) || sc.s[sc.i] != ':' {
		return "", false, sc.unexpected("after object key")
	}
	sc.i++
	return name, true, nil
}

// arrayStart consumes the opening bracket of an array.
func (sc *scanner) arrayStart() {
	sc.i++
}

// item reports whether another element follows in an array after arrayStart, consuming the
// separating comma or the closing bracket. first must start true and is updated.
func (sc *scanner) item(first *bool) (bool, error) {
	sc.skipSpace()
	if sc.i >= len(sc.s) {
		return false, sc.unexpected("after array element")
	}
	if sc.s[sc.i] == ']' {
		sc.i++
		return false, nil
	}
	if !*first {
		if sc.s[sc.i] != ',' {
			return false, sc.unexpected("after array element")
		}
		sc.i++
	}
	*first = false
	return true, nil
}

// skip consumes any value, checking its grammar, and returns its kind.
func (sc *scanner) skip(depth int) (kind, error) {
	k := sc.peek()
	switch k {
	case kindNull:
		return k, sc.literal("null")
	case kindBoolean:
		_, err := sc.boolean()
		return k, err
	case kindNumber:
		_, err := sc.number()
		return k, err
	case kindString:
		_, err := sc.str()
		return k, err
	case kindArray:
		if depth >= maxDepth {
			return k, sc.fail("exceeded max depth")
		}
		sc.arrayStart()
		for first := true; ; {
			more, err := sc.item(&first)
			if err != nil || !more {
				return k, err
			}
			if _, err := sc.skip(depth + 1); err != nil {
				return k, err
			}
		}
	case kindObject:
		if depth >= maxDepth {
			return k, sc.fail("exceeded max depth")
		}
		sc.objectStart()
		for first := true; ; {
			_, more, err := sc.member(&first)
			if err != nil || !more {
				return k, err
			}
			if _, err := sc.skip(depth + 1); err != nil {
				return k, err
			}
		}
	}
	return k, sc.unexpected("looking for beginning of value")
}

// skipContainer moves past the object or array that starts at the current offset and returns its
// text, following only strings and nesting, without checking the grammar in between. It is for a
// value that a decoder checks afterwards; for valid JSON it ends where skip ends.
func (sc *scanner) skipContainer() (string, error) {
	s := sc.s
	start := sc.i
	depth := 0
	for i := start; i < len(s); i++ {
		switch s[i] {
		case '"':
			for i++; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				sc.i = i + 1
				return s[start:sc.i], nil
			}
		}
	}
	sc.i = len(s)
	return "", sc.unexpected("in object")
}

// span consumes any value and returns its text.
func (sc *scanner) span(depth int) (string, kind, error) {
	sc.skipSpace()
	start := sc.i
	k, err := sc.skip(depth)
	return sc.s[start:sc.i], k, err
}

// end checks that only whitespace follows the document.
func (sc *scanner) end() error {
	sc.skipSpace()
	if sc.i < len(sc.s) {
		return sc.unexpected("after top-level value")
	}
	return nil
}

package diff

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// array parses an array and appends it; under ctxSet its elements are sorted by their canonical
// bytes. Elements inherit only the free-form rule: a set's elements are not sets themselves.
func (n *Normalizer) array(ctx context, depth int) error {
	if depth > maxDepth {
		return n.syntaxError(fmt.Sprintf("nesting deeper than %d", maxDepth))
	}
	n.pos++ // '['
	start := len(n.out)
	n.out = append(n.out, '[')
	n.skipSpace()
	if n.pos < len(n.in) && n.in[n.pos] == ']' {
		n.pos++
		n.out = append(n.out, ']')
		return nil
	}
	sorted := ctx&ctxSet != 0 && ctx&ctxFreeForm == 0
	elemCtx := ctx & ctxFreeForm
	base := len(n.spans)
	defer func() { n.spans = n.spans[:base] }()
	for {
		n.skipSpace()
		elemStart := len(n.out)
		if err := n.value(elemCtx, depth); err != nil {
			return err
		}
		if sorted {
			n.spans = append(n.spans, span{elemStart, len(n.out)})
		}
		n.skipSpace()
		if n.pos >= len(n.in) {
			return n.syntaxError("unexpected end of input in an array")
		}
		if n.in[n.pos] == ',' {
			n.pos++
			n.out = append(n.out, ',')
			continue
		}
		if n.in[n.pos] == ']' {
			n.pos++
			break
		}
		return n.syntaxError("expected ',' or ']' in an array")
	}
	if sorted && len(n.spans)-base > 1 {
		spans := n.spans[base:]
		out := n.out
		if !slices.IsSortedFunc(spans, func(a, b span) int { return bytes.Compare(out[a.start:a.end], out[b.start:b.end]) }) {
			slices.SortStableFunc(spans, func(a, b span) int { return bytes.Compare(out[a.start:a.end], out[b.start:b.end]) })
			n.tmp = append(n.tmp[:0], n.out[start:]...)
			n.out = append(n.out[:start], '[')
			for i, s := range spans {
				if i > 0 {
					n.out = append(n.out, ',')
				}
				n.out = append(n.out, n.tmp[s.start-start:s.end-start]...)
			}
		}
	}
	n.out = append(n.out, ']')
	return nil
}

// str parses a string and appends its canonical encoding. Strings without escapes and with valid
// UTF-8, which is nearly all of them, are copied as they are.
func (n *Normalizer) str() error {
	n.pos++ // opening quote
	start := n.pos
	ascii := true
	for i := start; i < len(n.in); i++ {
		c := n.in[i]
		switch {
		case c == '"':
			s := n.in[start:i]
			if !ascii && !utf8.Valid(s) {
				return n.strSlow(start)
			}
			n.out = append(n.out, '"')
			n.out = append(n.out, s...)
			n.out = append(n.out, '"')
			n.pos = i + 1
			return nil
		case c == '\\':
			return n.strSlow(start)
		case c < 0x20:
			n.pos = i
			return n.syntaxError("control character in a string")
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	n.pos = len(n.in)
	return n.syntaxError("unterminated string")
}

// strSlow decodes a string with escapes or invalid UTF-8 from start, the byte after its opening
// quote, and appends it with the fewest escapes.
func (n *Normalizer) strSlow(start int) error {
	n.out = append(n.out, '"')
	i := start
	for i < len(n.in) {
		c := n.in[i]
		switch {
		case c == '"':
			n.out = append(n.out, '"')
			n.pos = i + 1
			return nil
		case c == '\\':
			if i+1 >= len(n.in) {
				n.pos = i
				return n.syntaxError("unterminated string")
			}
			switch e := n.in[i+1]; e {
			case '"', '\\', '/':
				n.out = appendStringRune(n.out, rune(e))
			case 'b':
				n.out = appendStringRune(n.out, '\b')
			case 'f':
				n.out = appendStringRune(n.out, '\f')
			case 'n':
				n.out = appendStringRune(n.out, '\n')
			case 'r':
				n.out = appendStringRune(n.out, '\r')
			case 't':
				n.out = appendStringRune(n.out, '\t')
			case 'u':
				r := hex4(n.in[i+2:])
				if r < 0 {
					n.pos = i
					return n.syntaxError("invalid \\u escape")
				}
				i += 6
				if utf16.IsSurrogate(r) {
					// A valid pair is consumed whole; anything else is replaced, and a second
					// escape that does not complete the pair is decoded on its own.
					r2 := rune(-1)
					if i+1 < len(n.in) && n.in[i] == '\\' && n.in[i+1] == 'u' {
						r2 = hex4(n.in[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						i += 6
						r = dec
					} else {
						r = utf8.RuneError
					}
				}
				n.out = appendStringRune(n.out, r)
				continue
			default:
				n.pos = i
				return n.syntaxError(fmt.Sprintf("invalid escape \\%c", e))
			}
			i += 2
		case c < 0x20:
			n.pos = i
			return n.syntaxError("control character in a string")
		case c < utf8.RuneSelf:
			n.out = appendStringRune(n.out, rune(c))
			i++
		default:
			r, size := utf8.DecodeRune(n.in[i:])
			n.out = utf8.AppendRune(n.out, r) // an invalid byte decodes to U+FFFD with size 1
			i += size
		}
	}
	n.pos = len(n.in)
	return n.syntaxError("unterminated string")
}

// hex4 decodes the four hex digits at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

const hexDigits = "0123456789abcdef"

// appendStringRune appends r as it appears inside a canonical string.
func appendStringRune(b []byte, r rune) []byte {
	switch r {
	case '"':
		return append(b, '\\', '"')
	case '\\':
		return append(b, '\\', '\\')
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	}
	if r < 0x20 {
		return append(b, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
	}
	return utf8.AppendRune(b, r)
}

// number parses a number and appends its canonical form. With timestamp set, the value is
// rounded down to whole seconds.
func (n *Normalizer) number(timestamp bool) error {
	in := n.in
	start, i := n.pos, n.pos
	if in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && '1' <= in[i] && in[i] <= '9':
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
	default:
		n.pos = i
		return n.syntaxError("invalid number")
	}
	integral := true
	if i < len(in) && in[i] == '.' {
		i++
		if i >= len(in) || in[i] < '0' || in[i] > '9' {
			n.pos = i
			return n.syntaxError("invalid number: no digit after '.'")
		}
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		integral = false
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if i >= len(in) || in[i] < '0' || in[i] > '9' {
			n.pos = i
			return n.syntaxError("invalid number: no digit in the exponent")
		}
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		integral = false
	}
	n.pos = i
	lit := in[start:i]
	if integral {
		if len(lit) == 2 && lit[0] == '-' && lit[1] == '0' {
			n.out = append(n.out, '0')
		} else {
			n.out = append(n.out, lit...)
		}
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		// NOTE: only a range error gets here, because the grammar was checked above. A value
		// beyond float64 range is kept as sent, because no float64 can represent it.
		n.out = append(n.out, lit...)
		return nil
	}
	n.out = appendNumber(n.out, f, timestamp)
	return nil
}

// appendNumber appends the canonical form of f: an integer when f is integral and exactly
// representable, otherwise the shortest round-trip float, formatted as encoding/json formats
// float64. With timestamp set, f is first rounded down to whole seconds.
func appendNumber(b []byte, f float64, timestamp bool) []byte {
	if timestamp {
		f = math.Floor(f)
		if math.Abs(f) < 1<<63 {
			return strconv.AppendInt(b, int64(f), 10)
		}
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return strconv.AppendInt(b, int64(f), 10)
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs < 1e-6 || abs >= 1e21 {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Shorten e-09 to e-9, as encoding/json does.
		if k := len(b); k >= 4 && b[k-4] == 'e' && b[k-3] == '-' && b[k-2] == '0' {
			b[k-2] = b[k-1]
			b = b[:k-1]
		}
	}
	return b
}

// timestampString parses a string in a timestamp position. An RFC 3339 time becomes integer UTC
// Unix seconds (rounded down); any other string is kept.
func (n *Normalizer) timestampString() error {
	start := len(n.out)
	if err := n.str(); err != nil {
		return err
	}
	s := n.out[start+1 : len(n.out)-1]
	if len(s) < len("2006-01-02T15:04:05Z") || len(s) > 64 || bytes.IndexByte(s, '\\') >= 0 {
		return nil
	}
	t, err := time.Parse(time.RFC3339, string(s))
	if err != nil {
		return nil
	}
	n.out = strconv.AppendInt(n.out[:start], t.Unix(), 10)
	return nil
}

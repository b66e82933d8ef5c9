package schema

import (
	"math"
	"strconv"
	"time"
)

// wholeNumber returns the magnitude and sign of a JSON number literal lit when it is a whole
// number in the sense of JSON Schema's "integer" type, which counts 1.0 and 1e2 as integers. whole
// is false for a fraction, and for a literal whose decimal exponent is beyond ±1,000,000 or whose
// exponent does not fit 18 digits: github.com/santhosh-tekuri/jsonschema/v6 cannot evaluate those
// (math/big rejects them) and treats them as not integers. fits is false when the magnitude
// exceeds 2^64-1. lit must be a valid JSON number.
func wholeNumber(lit string) (mag uint64, neg, whole, fits bool) {
	if lit[0] == '-' {
		neg = true
		lit = lit[1:]
	}
	// Fast path: plain digits.
	plain := true
	for i := 0; i < len(lit); i++ {
		if lit[i] < '0' || lit[i] > '9' {
			plain = false
			break
		}
	}
	if plain {
		v, err := strconv.ParseUint(lit, 10, 64)
		return v, neg, true, err == nil
	}

	// Split into integer digits, fraction digits and exponent.
	intPart, frac, expPart := lit, "", ""
	for i := 0; i < len(lit); i++ {
		if lit[i] == '.' || lit[i] == 'e' || lit[i] == 'E' {
			intPart = lit[:i]
			rest := lit[i:]
			if rest[0] == '.' {
				j := 1
				for j < len(rest) && rest[j] != 'e' && rest[j] != 'E' {
					j++
				}
				frac, rest = rest[1:j], rest[j:]
			}
			if rest != "" {
				expPart = rest[1:]
			}
			break
		}
	}
	var exp int64
	if expPart != "" {
		sign := int64(1)
		switch expPart[0] {
		case '-':
			sign = -1
			expPart = expPart[1:]
		case '+':
			expPart = expPart[1:]
		}
		for len(expPart) > 1 && expPart[0] == '0' {
			expPart = expPart[1:]
		}
		if len(expPart) > 18 {
			return 0, neg, false, false
		}
		e, _ := strconv.ParseInt(expPart, 10, 64)
		exp = sign * e
	}

	// The digits intPart+frac times 10^(exp-len(frac)); find the significant ones.
	digits := len(intPart) + len(frac)
	digit := func(i int) byte {
		if i < len(intPart) {
			return intPart[i]
		}
		return frac[i-len(intPart)]
	}
	first, last := -1, -1
	for i := 0; i < digits; i++ {
		if digit(i) != '0' {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 {
		return 0, neg, true, true // zero, whatever the exponent
	}
	exp10 := exp - int64(len(frac))
	if exp10 > 1e6 || exp10 < -1e6 {
		return 0, neg, false, false
	}
	// Value = digits[first..last] × 10^scale.
	scale := exp10 + int64(digits-1-last)
	if scale < 0 {
		return 0, neg, false, false
	}
	if int64(last-first+1)+scale > 20 {
		return 0, neg, true, false
	}
	var v uint64
	for i := first; i <= last; i++ {
		d := uint64(digit(i) - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, neg, true, false
		}
		v = v*10 + d
	}
	for ; scale > 0; scale-- {
		if v > math.MaxUint64/10 {
			return 0, neg, true, false
		}
		v *= 10
	}
	return v, neg, true, true
}

// integerIn returns the value of lit when it is a whole number from lo to hi. lo must be greater
// than math.MinInt64.
func integerIn(lit string, lo, hi int64) (int64, bool) {
	mag, neg, whole, fits := wholeNumber(lit)
	if !whole || !fits {
		return 0, false
	}
	if neg && mag != 0 {
		if lo >= 0 || mag > uint64(-lo) {
			return 0, false
		}
		v := -int64(mag)
		return v, v <= hi
	}
	if mag > uint64(hi) || hi < 0 || int64(mag) < lo {
		return 0, false
	}
	return int64(mag), true
}

// dateTime parses an RFC 3339 date-time as JSON Schema's "date-time" format and Go's time package
// both accept it. JSON Schema also accepts a leap second (23:59:60 in UTC) and signs inside the
// numeric fields (github.com/santhosh-tekuri/jsonschema/v6 reads them with strconv.Atoi); Go's
// time.Time cannot hold the former and rejects the latter, so dateTime rejects both. A lowercase
// t or z, which both accept in principle, is read as uppercase.
func dateTime(s string) (time.Time, bool) {
	// yyyy-mm-ddThh:mm:ss[.frac](Z|±hh:mm)
	if len(s) < 20 || s[4] != '-' || s[7] != '-' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	if s[10] != 'T' && s[10] != 't' {
		return time.Time{}, false
	}
	hh, ok1 := twoDigits(s[11:13])
	mm, ok2 := twoDigits(s[14:16])
	ss, ok3 := twoDigits(s[17:19])
	if !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 59 {
		return time.Time{}, false
	}

	rest := s[19:]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && '0' <= rest[n] && rest[n] <= '9' {
			n++
		}
		if n == 1 {
			return time.Time{}, false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z" || rest == "z":
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		zh, ok1 := twoDigits(rest[1:3])
		zm, ok2 := twoDigits(rest[4:6])
		if !ok1 || !ok2 || zh > 23 || zm > 59 {
			return time.Time{}, false
		}
	default:
		return time.Time{}, false
	}

	if s[10] == 't' || s[len(s)-1] == 'z' {
		b := []byte(s)
		b[10] = 'T'
		if b[len(b)-1] == 'z' {
			b[len(b)-1] = 'Z'
		}
		s = string(b)
	}
	// The date's calendar rules (month length, leap years) are time.Parse's, which the JSON
	// Schema validator also uses.
	t, err := time.Parse(time.RFC3339, s)
	return t, err == nil
}

func twoDigits(s string) (int, bool) {
	if s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' {
		return 0, false
	}
	return int(s[0]-'0')*10 + int(s[1]-'0'), true
}

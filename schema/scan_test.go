package schema

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
)

// FuzzScannerMatchesEncodingJSON checks that the scanner accepts exactly the documents
// encoding/json accepts, and decodes strings to the same values.
func FuzzScannerMatchesEncodingJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e-3,"x\u00e9\ud83d\ude00"],"b":{"c":null,"d":true}}`, `"\ud800\u0041"`, "\"a\xffb\"",
		`-0.0E+1`, `[]`, `{}`, ` 1 `, `01`, `[1,]`, `{"a":1,}`, `"\x"`, "\"\x01\"", `nul`, `"\ud83d\u0041"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc := &scanner{s: s}
		_, err := sc.skip(0)
		if err == nil {
			err = sc.end()
		}
		if want := json.Valid([]byte(s)); (err == nil) != want {
			t.Fatalf("scanner accepts %q: %v, encoding/json: %v", s, err == nil, want)
		}
		if err != nil || sc.peekAt(0) != kindString {
			return
		}
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		sc = &scanner{s: s}
		sc.skipSpace()
		got, err := sc.str()
		if err != nil || got != want {
			t.Fatalf("str(%q) = %q, %v; encoding/json decodes %q", s, got, err, want)
		}
	})
}

// peekAt returns the kind of the value at offset i without moving the scanner.
func (sc *scanner) peekAt(i int) kind {
	c := scanner{s: sc.s, i: i}
	return c.peek()
}

// TestWholeNumberMatchesBigRat checks wholeNumber against math/big, which the JSON Schema validator
// uses to tell integers from other numbers.
func TestWholeNumberMatchesBigRat(t *testing.T) {
	literals := []string{"0", "-0", "1", "-1", "1.0", "1.5", "10e-1", "15e-1", "1e2", "1E+2", "0.0001e4", "0e999999999",
		"18446744073709551615", "18446744073709551616", "1844674407370955161.5e1", "184467440737095516150e-1",
		"1e19", "1e20", "100000000000000000000e-2", "0.000e-5", "5e-1000001", "1e1000001", "12345678901234567890123e-5"}
	for _, lit := range literals {
		mag, neg, whole, fits := wholeNumber(lit)
		r, ok := new(big.Rat).SetString(lit)
		wantWhole := ok && r.IsInt()
		if whole != wantWhole {
			t.Errorf("wholeNumber(%s) whole = %v, math/big says %v", lit, whole, wantWhole)
			continue
		}
		if !whole {
			continue
		}
		n := r.Num()
		wantFits := n.IsUint64() || new(big.Int).Neg(n).IsUint64()
		if fits != wantFits {
			t.Errorf("wholeNumber(%s) fits = %v, want %v", lit, fits, wantFits)
			continue
		}
		if !fits {
			continue
		}
		got := new(big.Int).SetUint64(mag)
		if neg {
			got.Neg(got)
		}
		if got.Cmp(n) != 0 {
			t.Errorf("wholeNumber(%s) = %s, want %s", lit, got, n)
		}
	}
}

func TestDateTime(t *testing.T) {
	cases := map[string]bool{
		"2026-03-01T12:00:00Z":           true,
		"2026-03-01T12:00:00.123456789Z": true,
		"2026-03-01T12:00:00+05:30":      true,
		"2026-03-01t12:00:00z":           true,
		"2026-03-01T12:00:00":            false,
		"2026-03-01T12:00:00+24:00":      false,
		"2026-03-01T12:00:00,5Z":         false,
		"2026-03-01T12:00:00.Z":          false,
		"2026-02-30T12:00:00Z":           false,
		"2026-03-01T24:00:00Z":           false,
		"2026-03-01T23:59:60Z":           false,
		"2026-03-01 12:00:00Z":           false,
		strings.Repeat("9", 20):          false,
	}
	for s, want := range cases {
		if _, ok := dateTime(s); ok != want {
			t.Errorf("dateTime(%q) accepted %v, want %v", s, ok, want)
		}
	}
}

// Package jsonscan reads the plain form of small JSON objects without
// reflection: the fast paths of Tandem's hot decoders (a session's
// acknowledgement in pkg/api, a stored event in pkg/event) are written with
// it. Each method reports false on anything outside the plain form it
// knows (a string with escapes other than \\, \" and \/, a number with a
// sign, fraction or exponent, …); the caller then decodes with
// encoding/json, so a Scanner never decides a refusal.
package jsonscan

import (
	"encoding/json"
	"math"
	"unicode/utf8"
)

// Scanner reads B from position I.
type Scanner struct {
	B   []byte
	I   int
	buf []byte // unescaped string bytes
}

// New returns a Scanner at the start of b.
func New(b []byte) Scanner { return Scanner{B: b} }

// Reset moves the Scanner to the start of b, keeping the room it has for
// unescaped strings: one Scanner reads the lines of a batch without an
// allocation per escaped string (a UNC path's backslashes are escaped).
// Bytes StrBytes returned before are overwritten.
func (sc *Scanner) Reset(b []byte) { sc.B, sc.I = b, 0 }

// WS skips blanks.
func (sc *Scanner) WS() {
	for sc.I < len(sc.B) {
		switch sc.B[sc.I] {
		case ' ', '\t', '\n', '\r':
			sc.I++
		default:
			return
		}
	}
}

// Byte reads c after blanks.
func (sc *Scanner) Byte(c byte) bool {
	sc.WS()
	if sc.I < len(sc.B) && sc.B[sc.I] == c {
		sc.I++
		return true
	}
	return false
}

// End reports whether only blanks are left.
func (sc *Scanner) End() bool {
	sc.WS()
	return sc.I == len(sc.B)
}

// Key reads `"name":` (a name without escapes) and the blanks after it.
func (sc *Scanner) Key() ([]byte, bool) {
	sc.WS()
	if sc.I >= len(sc.B) || sc.B[sc.I] != '"' {
		return nil, false
	}
	j := sc.I + 1
	for j < len(sc.B) && sc.B[j] != '"' && sc.B[j] != '\\' && sc.B[j] >= 0x20 {
		j++
	}
	if j >= len(sc.B) || sc.B[j] != '"' {
		return nil, false
	}
	key := sc.B[sc.I+1 : j]
	sc.I = j + 1
	if !sc.Byte(':') {
		return nil, false
	}
	sc.WS()
	return key, true
}

// Next reads the `,` or `}` after a member: more is true after a comma.
func (sc *Scanner) Next() (more, ok bool) {
	if sc.Byte('}') {
		return false, true
	}
	return true, sc.Byte(',')
}

// Str reads a string whose only escapes are \\, \" and \/, in valid UTF-8.
func (sc *Scanner) Str() (string, bool) {
	raw, ok := sc.StrBytes()
	return string(raw), ok
}

// StrBytes is Str without the copy: the bytes are valid until the next
// call.
func (sc *Scanner) StrBytes() ([]byte, bool) {
	if sc.I >= len(sc.B) || sc.B[sc.I] != '"' {
		return nil, false
	}
	run := sc.I + 1 // the start of the bytes not yet copied
	sc.buf = sc.buf[:0]
	escaped := false
	for j := run; j < len(sc.B); j++ {
		c := sc.B[j]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		switch c {
		case '"':
			raw := sc.B[run:j]
			if escaped {
				sc.buf = append(sc.buf, raw...)
				raw = sc.buf
			}
			if !utf8.Valid(raw) {
				return nil, false
			}
			sc.I = j + 1
			return raw, true
		case '\\':
			if j+1 >= len(sc.B) {
				return nil, false
			}
			switch e := sc.B[j+1]; e {
			case '\\', '"', '/':
				sc.buf = append(append(sc.buf, sc.B[run:j]...), e)
			default:
				return nil, false
			}
			escaped = true
			j++
			run = j + 1
		default:
			return nil, false
		}
	}
	return nil, false
}

// Uint reads an unsigned integer of at most digits digits (no sign, no
// leading zero, no fraction or exponent).
func (sc *Scanner) Uint(digits int) (uint64, bool) {
	start := sc.I
	var n uint64
	for sc.I < len(sc.B) && sc.B[sc.I] >= '0' && sc.B[sc.I] <= '9' {
		d := uint64(sc.B[sc.I] - '0')
		if n > (math.MaxUint64-d)/10 {
			return 0, false
		}
		n = n*10 + d
		sc.I++
	}
	k := sc.I - start
	if k == 0 || k > digits || (k > 1 && sc.B[start] == '0') {
		return 0, false
	}
	if sc.I < len(sc.B) {
		switch sc.B[sc.I] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	return n, true
}

// Object reads a JSON object and returns its bytes, checked with
// json.Valid: its extent is found by counting brackets outside strings.
func (sc *Scanner) Object() ([]byte, bool) {
	if sc.I >= len(sc.B) || sc.B[sc.I] != '{' {
		return nil, false
	}
	start, depth, in := sc.I, 0, false
	for j := start; j < len(sc.B); j++ {
		c := sc.B[j]
		switch {
		case in && c == '\\':
			j++
		case c == '"':
			in = !in
		case in:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth == 0 {
				obj := sc.B[start : j+1]
				if !json.Valid(obj) {
					return nil, false
				}
				sc.I = j + 1
				return obj, true
			}
		}
	}
	return nil, false
}

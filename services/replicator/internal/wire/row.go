package wire

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
)

// CheckRow checks a row as Change.Columns reads it (and refuses a column
// named twice), returning its column names, sorted, without copying a
// large value.
func CheckRow(row []byte) ([]string, error) {
	cols, _, err := scanRow(rowScanner{b: row})
	return cols, err
}

func scanRow(r rowScanner) ([]string, []any, error) {
	r.ws()
	if !r.eat('{') {
		return nil, nil, errors.New("row is not an object of literals")
	}
	var cols []string
	var vals []any
	seen := map[string]bool{}
	for r.ws(); !r.eat('}'); r.ws() {
		if len(cols) > 0 && (!r.eat(',') || !r.wsThen()) {
			return nil, nil, errors.New("row is not an object of literals: want a comma")
		}
		col, val, err := r.member()
		if err != nil {
			return nil, nil, err
		}
		if seen[col] {
			return nil, nil, fmt.Errorf("column %q twice", col)
		}
		seen[col] = true
		cols, vals = append(cols, col), append(vals, val)
	}
	if r.ws(); r.i != len(r.b) {
		return nil, nil, errors.New("row is not an object of literals: trailing text")
	}
	if len(cols) == 0 {
		return nil, nil, errors.New("row has no columns")
	}
	if r.joined && len(r.blobs) > 0 {
		return nil, nil, errors.New("row joined from pieces: blobs left over")
	}
	sortColumns(cols, vals)
	return cols, vals, nil
}

// rowScanner reads a row's JSON text from b at i.
type rowScanner struct {
	b []byte
	i int
	// joined: b is a Joined row's text, each blob literal's digits taken
	// out (X''), and its values are blobs, in order; else a blob's digits
	// are only checked and its value is nil.
	joined bool
	blobs  [][]byte
	// values: a blob's value is its bytes (Change.Columns), not nil.
	values bool
}

func (r *rowScanner) ws() {
	for r.i < len(r.b) && bytes.IndexByte([]byte(" \t\r\n"), r.b[r.i]) >= 0 {
		r.i++
	}
}

// wsThen skips white space and reports that text follows.
func (r *rowScanner) wsThen() bool {
	r.ws()
	return r.i < len(r.b)
}

func (r *rowScanner) eat(c byte) bool {
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

// member reads `"column": "literal"`.
func (r *rowScanner) member() (string, any, error) {
	raw, escaped, err := r.str()
	if err != nil {
		return "", nil, err
	}
	col := string(raw[1 : len(raw)-1])
	if escaped {
		if col, err = unquote(raw); err != nil {
			return "", nil, err
		}
	}
	if !ValidIdent(col) {
		return "", nil, fmt.Errorf("column name %q", col)
	}
	if r.ws(); !r.eat(':') || !r.wsThen() {
		return "", nil, fmt.Errorf("column %s: want a colon", col)
	}
	raw, escaped, err = r.str()
	if err != nil {
		return "", nil, fmt.Errorf("column %s: %w", col, err)
	}
	v, err := r.literal(raw, escaped)
	if err != nil {
		return "", nil, fmt.Errorf("column %s: %w", col, err)
	}
	return col, v, nil
}

// str reads a JSON string: its text with the quotes, and whether it holds
// escapes.
func (r *rowScanner) str() (raw []byte, escaped bool, err error) {
	start := r.i
	if !r.eat('"') {
		return nil, false, errors.New("row is not an object of literals: want a string")
	}
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			return r.b[start:r.i], escaped, nil
		case c == '\\':
			escaped = true
			r.i += 2
		case c < 0x20:
			return nil, false, errors.New("row is not an object of literals: a control character in a string")
		default:
			r.i++
		}
	}
	return nil, false, errors.New("row is not an object of literals: unterminated string")
}

// literal reads the literal of a JSON string (with its quotes). A blob's
// digits are only checked (its value is nil), or, in a Joined row's text,
// its value is the next of the row's blobs.
func (r *rowScanner) literal(raw []byte, escaped bool) (any, error) {
	if escaped {
		s, err := unquote(raw)
		if err != nil {
			return nil, err
		}
		return ParseLiteral(s)
	}
	lit := raw[1 : len(raw)-1]
	if len(lit) < 3 || (lit[0] != 'X' && lit[0] != 'x') || lit[1] != '\'' || lit[len(lit)-1] != '\'' {
		return ParseLiteral(string(lit))
	}
	hexText := lit[2 : len(lit)-1]
	if r.joined {
		if len(hexText) != 0 || len(r.blobs) == 0 {
			return nil, errors.New("row joined from pieces: a blob literal without its blob")
		}
		b := r.blobs[0]
		r.blobs = r.blobs[1:]
		return b, nil
	}
	if r.values {
		v, _, err := parseBlob(string(lit))
		return v, err
	}
	if len(hexText)%2 != 0 {
		return nil, errors.New("blob literal: odd length hex")
	}
	for k, c := range hexText {
		if _, ok := unhex(c); !ok {
			return nil, fmt.Errorf("blob literal: invalid hex at %d", k)
		}
	}
	return nil, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// sortColumns sorts cols by name, and vals with them.
func sortColumns(cols []string, vals []any) {
	for i := 1; i < len(cols); i++ {
		for j := i; j > 0 && cols[j] < cols[j-1]; j-- {
			cols[j], cols[j-1] = cols[j-1], cols[j]
			vals[j], vals[j-1] = vals[j-1], vals[j]
		}
	}
}

// Joiner joins the pieces of a row too large for one message (their
// Chunks, in order), taking each blob literal's digits out of the text as
// they arrive and decoding them into the blob's bytes: a row of a 50 MiB
// blob (100 MiB of literal) is held as its 50 MiB, once.
type Joiner struct {
	left  int // at most this many bytes of the row's text are still to come
	text  []byte
	blobs [][]byte
	at    []int // where each blob's digits were in text
	st    joinState
	half  int // the first digit of a byte being decoded, -1 when none
}

type joinState int

const (
	joinOut     joinState = iota // between strings
	joinStart                    // after a string's opening quote
	joinX                        // after `"X`
	joinString                   // inside a string, not a blob literal
	joinEscape                   // after a backslash in a string
	joinDigits                   // inside a blob literal's digits
	joinBlobEnd                  // after a blob literal's closing quote
)

// NewJoiner starts a row of at most size bytes of text (its pieces times
// PieceSize).
func NewJoiner(size int) *Joiner { return &Joiner{left: size, half: -1} }

// Write adds the next chunk of the row's text.
func (j *Joiner) Write(chunk string) error {
	j.left -= len(chunk)
	for i := 0; i < len(chunk); i++ {
		c := chunk[i]
		switch j.st {
		case joinDigits:
			n, err := j.digits(chunk[i:])
			if err != nil {
				return err
			}
			if i += n; i == len(chunk) {
				return nil
			}
			j.st = joinBlobEnd // at the closing quote
			j.text = append(j.text, chunk[i])
			continue
		case joinBlobEnd:
			if c != '"' {
				return errors.New("row joined from pieces: text after a blob literal")
			}
			j.st = joinOut
		case joinX:
			if c == '\'' {
				// Sized once from what is left of the row: growing by
				// appends would copy the blob several times.
				j.blobs = append(j.blobs, make([]byte, 0, max(j.left+len(chunk)-i, 0)/2))
				j.st = joinDigits
				j.text = append(j.text, c)
				j.at = append(j.at, len(j.text))
				continue
			}
			j.st = joinString
			j.stringByte(c)
		case joinStart:
			if c == 'X' || c == 'x' {
				j.st = joinX
			} else {
				j.st = joinString
				j.stringByte(c)
			}
		case joinString:
			j.stringByte(c)
		case joinEscape:
			j.st = joinString
		case joinOut:
			if c == '"' {
				j.st = joinStart
			}
		}
		j.text = append(j.text, c)
	}
	return nil
}

// digits decodes the blob literal's digits at the start of s into the
// last blob, up to its closing quote, and returns how many bytes it read
// (len(s) when the quote is not in s).
func (j *Joiner) digits(s string) (int, error) {
	end := strings.IndexByte(s, '\'')
	if end < 0 {
		end = len(s)
	}
	run := s[:end]
	last := len(j.blobs) - 1
	b := j.blobs[last]
	if j.half >= 0 && len(run) > 0 {
		lo := unhexTable[run[0]]
		if lo > 15 {
			return 0, fmt.Errorf("row joined from pieces: blob literal: invalid hex %q", run[0])
		}
		b = append(b, byte(j.half)<<4|lo)
		run, j.half = run[1:], -1
	}
	pairs := len(run) / 2
	if free := cap(b) - len(b); free < pairs {
		b = append(b, make([]byte, pairs-free)...)[:len(b)]
	}
	dst := b[len(b) : len(b)+pairs]
	for k := range dst {
		hi, lo := unhexTable[run[2*k]], unhexTable[run[2*k+1]]
		if hi|lo > 15 {
			return 0, fmt.Errorf("row joined from pieces: blob literal: invalid hex at %d", 2*k)
		}
		dst[k] = hi<<4 | lo
	}
	b = b[:len(b)+pairs]
	if len(run)%2 == 1 {
		if j.half = int(unhexTable[run[len(run)-1]]); j.half > 15 {
			return 0, fmt.Errorf("row joined from pieces: blob literal: invalid hex %q", run[len(run)-1])
		}
	}
	j.blobs[last] = b
	if end < len(s) && j.half >= 0 {
		return 0, errors.New("row joined from pieces: blob literal: odd length hex")
	}
	return end, nil
}

// unhexTable maps a hex digit to its value, anything else to 0xff.
var unhexTable = func() (t [256]byte) {
	for c := range t {
		v, ok := unhex(byte(c))
		t[c] = v
		if !ok {
			t[c] = 0xff
		}
	}
	return t
}()

// stringByte moves on from byte c inside a string.
func (j *Joiner) stringByte(c byte) {
	switch c {
	case '"':
		j.st = joinOut
	case '\\':
		j.st = joinEscape
	}
}

// Joined is the row once its last piece is in.
func (j *Joiner) Joined() (*Joined, error) {
	if j.st != joinOut {
		return nil, errors.New("row joined from pieces: it ends inside a string")
	}
	return &Joined{text: j.text, blobs: j.blobs, at: j.at}, nil
}

// Joined is a row joined from pieces: its text with every blob literal's
// digits taken out (X”), and those blobs' bytes, in order.
type Joined struct {
	text  []byte
	blobs [][]byte
	at    []int
}

// Check checks the row as Change.Columns reads it (a column named twice is
// refused) and returns its column names, sorted.
func (r *Joined) Check() ([]string, error) {
	cols, _, err := scanRow(rowScanner{b: r.text, joined: true, blobs: r.blobs})
	return cols, err
}

// Columns decodes the row like Change.Columns; a blob's value is the
// Joined's own memory.
func (r *Joined) Columns() ([]string, []any, error) {
	return scanRow(rowScanner{b: r.text, joined: true, blobs: r.blobs})
}

// JSON is the row's whole text, as it was sent (a copy: a large row is
// held twice while it is used).
func (r *Joined) JSON() []byte {
	n := len(r.text)
	for _, b := range r.blobs {
		n += 2 * len(b)
	}
	out := make([]byte, 0, n)
	from := 0
	for k, b := range r.blobs {
		out = append(out, r.text[from:r.at[k]]...)
		for _, c := range b {
			out = append(out, upperHex[c>>4], upperHex[c&15])
		}
		from = r.at[k]
	}
	return append(out, r.text[from:]...)
}

const upperHex = "0123456789ABCDEF"

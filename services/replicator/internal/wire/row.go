package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ColumnsInPlace decodes a row like Change.Columns, using row's own memory
// for its values: a blob's hex is decoded into the bytes it occupied, so a
// row of a 50 MiB blob (100 MiB of JSON text) costs no further 150 MB (the
// JSON string, then the blob). row must not be used afterwards. It is
// stricter than Columns: a column named twice is refused.
func ColumnsInPlace(row []byte) ([]string, []any, error) {
	return scanRow(row, true)
}

// CheckRow checks a row as ColumnsInPlace does and returns its column
// names, sorted, leaving row unchanged (and a large value uncopied).
func CheckRow(row []byte) ([]string, error) {
	cols, _, err := scanRow(row, false)
	return cols, err
}

func scanRow(row []byte, decode bool) ([]string, []any, error) {
	r := rowScanner{b: row, decode: decode}
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
	sortColumns(cols, vals)
	return cols, vals, nil
}

// rowScanner reads a row's JSON text from b at i.
type rowScanner struct {
	b      []byte
	i      int
	decode bool // blobs are decoded in place; else only checked
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
	col := string(raw)
	if escaped {
		if err := json.Unmarshal(raw, &col); err != nil {
			return "", nil, err
		}
	} else {
		col = col[1 : len(col)-1]
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
	v, err := literalInPlace(raw, escaped, r.decode)
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

// literalInPlace reads the literal of a JSON string (with its quotes); a
// blob's bytes are decoded into raw itself, or (decode false) only
// checked, and its value is nil.
func literalInPlace(raw []byte, escaped, decode bool) (any, error) {
	if escaped {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, err
		}
		return ParseLiteral(s)
	}
	lit := raw[1 : len(raw)-1]
	if len(lit) < 3 || (lit[0] != 'X' && lit[0] != 'x') || lit[1] != '\'' || lit[len(lit)-1] != '\'' {
		return ParseLiteral(string(lit))
	}
	hexText := lit[2 : len(lit)-1]
	if bytes.IndexByte(hexText, '\'') >= 0 {
		return nil, fmt.Errorf("not a blob literal: %q", trim(string(lit)))
	}
	b, err := unhexInPlace(hexText, decode)
	if err != nil {
		return nil, fmt.Errorf("blob literal: %w", err)
	}
	return b, nil
}

// unhexInPlace decodes the hex digits of h into h's first half (byte k is
// written once digits 2k and 2k+1 are read, and k ≤ 2k), or (decode
// false) only checks them and returns nil.
func unhexInPlace(h []byte, decode bool) ([]byte, error) {
	if len(h)%2 != 0 {
		return nil, errors.New("odd length hex")
	}
	for k := 0; k < len(h)/2; k++ {
		hi, ok1 := unhex(h[2*k])
		lo, ok2 := unhex(h[2*k+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("invalid hex at %d", 2*k)
		}
		if decode {
			h[k] = hi<<4 | lo
		}
	}
	if !decode {
		return nil, nil
	}
	return h[: len(h)/2 : len(h)/2], nil
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

package wire

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Text values are bytes. SQLite stores whatever bytes an application
// binds as text, valid UTF-8 or not, and a row's JSON text carries them
// as they are. Go's encoding/json would replace each invalid byte of a
// string with U+FFFD, in both directions, so the row text is read here
// byte for byte (unquote), the conflict record is written byte for byte
// (quote), and the two string fields of a change that can hold any bytes
// — PK, and Chunk, whose edges can also cut a character in two — travel
// in hex (pkx, chunkx) when they are not valid UTF-8 (Batch.Encode,
// Decode).

// unquote reads a JSON string (with its quotes) into its bytes: escapes
// are decoded as JSON defines them, every other byte is kept as it is.
func unquote(raw []byte) (string, error) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", errors.New("not a JSON string")
	}
	s := raw[1 : len(raw)-1]
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return "", errors.New("a quote inside a JSON string")
		case c < 0x20:
			return "", errors.New("a control character in a JSON string")
		case c != '\\':
			out = append(out, c)
			continue
		}
		if i++; i == len(s) {
			return "", errors.New("a JSON string ends in a backslash")
		}
		switch s[i] {
		case '"', '\\', '/':
			out = append(out, s[i])
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, n, err := unicodeEscape(s[i+1:])
			if err != nil {
				return "", err
			}
			out, i = utf8.AppendRune(out, r), i+n
		default:
			return "", fmt.Errorf("escape \\%c in a JSON string", s[i])
		}
	}
	return string(out), nil
}

// unicodeEscape reads the four digits after `\u` (and a second escape
// when they are the first half of a surrogate pair), returning the rune
// and how many bytes it read.
func unicodeEscape(s []byte) (rune, int, error) {
	four := func(s []byte) (rune, bool) {
		if len(s) < 4 {
			return 0, false
		}
		v, err := strconv.ParseUint(string(s[:4]), 16, 16)
		return rune(v), err == nil
	}
	r, ok := four(s)
	if !ok {
		return 0, 0, errors.New("bad \\u escape in a JSON string")
	}
	if utf16.IsSurrogate(r) && len(s) >= 10 && s[4] == '\\' && s[5] == 'u' {
		if r2, ok := four(s[6:]); ok {
			if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
				return d, 10, nil
			}
		}
	}
	if utf16.IsSurrogate(r) {
		r = utf8.RuneError // as encoding/json reads a lone surrogate
	}
	return r, 4, nil
}

// quote appends s to dst as a JSON string, byte for byte: only the quote,
// the backslash and control characters are escaped.
func quote(dst []byte, s string) []byte {
	const digits = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, '\\', 'n')
		case c == '\r':
			dst = append(dst, '\\', 'r')
		case c == '\t':
			dst = append(dst, '\\', 't')
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', digits[c>>4], digits[c&0xf])
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}

// toWire moves a PK or Chunk that is not valid UTF-8 into its hex field.
func toWire(c Change) Change {
	if !utf8.ValidString(c.PK) {
		c.PKHex, c.PK = hex.EncodeToString([]byte(c.PK)), ""
	}
	if !utf8.ValidString(c.Chunk) {
		c.ChunkHex, c.Chunk = hex.EncodeToString([]byte(c.Chunk)), ""
	}
	return c
}

// fromWire reverses toWire.
func fromWire(c *Change) error {
	for _, f := range []struct {
		hex  *string
		text *string
		name string
	}{{&c.PKHex, &c.PK, "pk"}, {&c.ChunkHex, &c.Chunk, "chunk"}} {
		if *f.hex == "" {
			continue
		}
		if *f.text != "" {
			return fmt.Errorf("change %d: both %s and %sx", c.Seq, f.name, f.name)
		}
		b, err := hex.DecodeString(*f.hex)
		if err != nil {
			return fmt.Errorf("change %d: %sx: %w", c.Seq, f.name, err)
		}
		*f.text, *f.hex = string(b), ""
	}
	return nil
}

package logging

// One key once per JSON line. zerolog appends fields as they are added, so a
// field that both For and a service's own context add ("pair", "node",
// "role") would appear twice, and log stores such as Elasticsearch and Loki
// reject or mangle such lines. New wraps a JSON writer in uniqueKeys, which
// drops a repeated key with the same value and renames one with a different
// value (key_2, key_3, …), so nothing is lost and no key repeats.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// UniqueKeys returns a writer that passes JSON log lines to w with no
// top-level key repeated (see uniqueKeys). New uses it for FormatJSON; test
// loggers that format differently put it in front of their own writer.
func UniqueKeys(w io.Writer) io.Writer { return uniqueKeys{w} }

// uniqueKeys rewrites each line written to it (zerolog writes one event per
// Write) so that no top-level key repeats. Lines that are not JSON objects
// pass unchanged.
type uniqueKeys struct{ w io.Writer }

func (u uniqueKeys) Write(p []byte) (int, error) {
	fields, err := objectFields(p)
	if err != nil || !hasDuplicate(fields) {
		return u.w.Write(p)
	}
	if _, err := u.w.Write(rewrite(fields)); err != nil {
		return 0, err
	}
	return len(p), nil
}

type field struct {
	key   string
	value json.RawMessage
}

// objectFields reads a JSON object's top-level fields in order.
func objectFields(line []byte) ([]field, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	var out []field
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := t.(string)
		if !ok {
			return nil, errors.New("not a key")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, field{key, v})
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return nil, errors.New("unterminated object")
	}
	return out, nil
}

func hasDuplicate(fields []field) bool {
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		if seen[f.key] {
			return true
		}
		seen[f.key] = true
	}
	return false
}

func rewrite(fields []field) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	seen := make(map[string]json.RawMessage, len(fields))
	n := 0
	for _, f := range fields {
		key := f.key
		if prev, dup := seen[key]; dup {
			if bytes.Equal(prev, f.value) {
				continue
			}
			for i := 2; ; i++ {
				key = f.key + "_" + strconv.Itoa(i)
				if _, taken := seen[key]; !taken {
					break
				}
			}
		}
		seen[key] = f.value
		if n > 0 {
			b.WriteByte(',')
		}
		n++
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(f.value)
	}
	b.WriteString("}\n")
	return b.Bytes()
}

// CheckJSONLine reports an error when line is not one JSON object, or when
// a key repeats in it (at any depth). Tests use it on every log line they
// see.
func CheckJSONLine(line []byte) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := checkValue(dec); err != nil {
		return fmt.Errorf("log line %s: %w", bytes.TrimSpace(line), err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("log line %s: more than one JSON value", bytes.TrimSpace(line))
	}
	return nil
}

func checkValue(dec *json.Decoder) error {
	t, err := dec.Token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			k := kt.(string)
			if seen[k] {
				return fmt.Errorf("key %q repeats", k)
			}
			seen[k] = true
			if err := checkValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	case json.Delim('['):
		for dec.More() {
			if err := checkValue(dec); err != nil {
				return err
			}
		}
		_, err = dec.Token()
		return err
	}
	return nil
}

// CheckJSONLines checks every line of a log (see CheckJSONLine); lines that
// do not start with '{' (a panic, a child's output) are skipped. It returns
// the number of lines checked.
func CheckJSONLines(log []byte) (int, error) {
	n := 0
	for _, line := range bytes.Split(log, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		n++
		if err := CheckJSONLine(line); err != nil {
			return n, err
		}
	}
	return n, nil
}

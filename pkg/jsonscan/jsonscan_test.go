package jsonscan

import "testing"

// Object finds an object's end past brackets and quotes inside strings, and
// refuses what is not valid JSON.
func TestObject(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{`{}rest`, `{}`, true},
		{`{"a":"}{]["} , x`, `{"a":"}{]["}`, true},
		{`{"a":"\"}"}x`, `{"a":"\"}"}`, true},
		{`{"a":[1,{"b":"\\"}]}`, `{"a":[1,{"b":"\\"}]}`, true},
		{`{"a":}`, ``, false},
		{`{"a":1]`, ``, false},
		{`{"a":1`, ``, false},
		{`[1]`, ``, false},
	} {
		sc := New([]byte(c.in))
		got, ok := sc.Object()
		if ok != c.ok || string(got) != c.want {
			t.Errorf("Object(%s) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
		if ok && sc.I != len(c.want) {
			t.Errorf("Object(%s) left the scanner at %d, want %d", c.in, sc.I, len(c.want))
		}
	}
}

// Str reads the escapes it knows and declines the others, and invalid
// UTF-8.
func TestStr(t *testing.T) {
	for _, c := range []struct {
		in, want string
		ok       bool
	}{
		{`"plain"`, "plain", true},
		{`"a\\b\"c\/d"`, `a\b"c/d`, true},
		{`"\u0041"`, "", false},
		{`"\n"`, "", false},
		{"\"a\x01\"", "", false},
		{"\"\xff\"", "", false},
		{`"open`, "", false},
	} {
		sc := New([]byte(c.in))
		got, ok := sc.Str()
		if ok != c.ok || got != c.want {
			t.Errorf("Str(%s) = %q, %v; want %q, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

// Uint reads plain unsigned integers only.
func TestUint(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0", 0, true}, {"42,", 42, true}, {"18446744073709551615", 1<<64 - 1, true},
		{"18446744073709551616", 0, false}, {"01", 0, false}, {"1.5", 0, false}, {"1e3", 0, false}, {"-1", 0, false},
	} {
		sc := New([]byte(c.in))
		got, ok := sc.Uint(20)
		if ok != c.ok || ok && got != c.want {
			t.Errorf("Uint(%s) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
	}
}

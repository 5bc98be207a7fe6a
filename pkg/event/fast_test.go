package event

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// What Encode writes takes the fast path, and comes back as it went in.
func TestDecodeStoredFastTakesEncoded(t *testing.T) {
	e, err := New("print-1", "a", "monitor", NodeActivated, 1<<40, t0.Add(123456789*time.Nanosecond),
		map[string]any{"reason": `F6: "quoted" \ and / and ünïcode`, "n": []int{1, 2}, "nested": map[string]any{"x": "}{]["}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, ok := decodeStoredFast(b)
	if !ok {
		t.Fatalf("Encode's output did not take the fast path: %s", b)
	}
	want, err := DecodeStored(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) || !got.Time.Equal(e.Time) || string(got.Data) != string(e.Data) {
		t.Fatalf("fast decode differs:\n got %+v\nwant %+v", got, want)
	}
}

// Forms outside the plain one go to encoding/json, which decides.
func TestDecodeStoredFastDeclines(t *testing.T) {
	for _, in := range []string{
		`{"id":"a","id":"b"}`, // a repeated attribute: json.Unmarshal keeps the last
		`{"ID":"a"}`,          // json.Unmarshal matches names without case
		`{"id":"\u0041"}`,     // an escape the scanner does not read
		`{"epoch":-1}`, `{"epoch":1.0}`, `{"epoch":1e3}`,
		`{"data":[1]}`, `{"data":{"a":}}`, `{"time":null}`,
		`{"id":"a"} x`, // trailing data
		`{"extra":1}`,  // an unknown attribute: json.Unmarshal ignores it
	} {
		if _, ok := decodeStoredFast([]byte(in)); ok {
			t.Errorf("%s: took the fast path", in)
		}
	}
}

// Whatever the fast path accepts, json.Unmarshal accepts and decodes the
// same.
func FuzzDecodeStoredFast(f *testing.F) {
	good, _ := New("p", "a", "monitor", NodeStarted, 1, t0, map[string]any{"reason": `a "b" \ c`, "d": []any{1, "}"}})
	b, _ := good.Encode()
	f.Add(b)
	f.Add([]byte(`{"specversion":"1.0","data":{}}`))
	f.Add([]byte(` { "epoch" : 18446744073709551615 , "time" : "2026-01-02T03:04:05.6+01:00" } `))
	f.Add([]byte(`{"data":{"a":"\\\"}"}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, ok := decodeStoredFast(in)
		if !ok {
			return
		}
		var want Envelope
		if err := json.Unmarshal(in, &want); err != nil {
			t.Fatalf("the fast path accepted what json.Unmarshal refuses (%v): %q", err, in)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast decode differs for %q:\n got %+v\nwant %+v", in, got, want)
		}
	})
}

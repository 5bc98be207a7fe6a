package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestRoundTrip(t *testing.T) {
	e, err := New("p", "a", "monitor", NodeActivated, 7, t0, map[string]any{"reason": "peer lost"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || got.Epoch != 7 || got.Type != NodeActivated || !got.Time.Equal(t0) {
		t.Fatalf("round trip changed the event: %+v", got)
	}
	if e.Subject() != "tandem.p.events.a.node.activated" {
		t.Fatalf("subject %q", e.Subject())
	}
	for _, k := range []string{`"specversion":"1.0"`, `"id":`, `"source":"tandem://p/a/monitor"`, `"pair":"p"`, `"node":"a"`, `"epoch":7`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("encoded event lacks %s: %s", k, b)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	good, _ := New("p", "a", "monitor", NodeStarted, 1, t0, nil)
	b, _ := good.Encode()
	s := string(b)
	cases := map[string]string{
		"empty":           ``,
		"not json":        `hello`,
		"array":           `[]`,
		"wrong version":   strings.Replace(s, `"1.0"`, `"0.3"`, 1),
		"unknown field":   strings.Replace(s, `{`, `{"x":1,`, 1),
		"bad pair":        strings.Replace(s, `"pair":"p"`, `"pair":"P!"`, 1),
		"bad type":        strings.Replace(s, NodeStarted, "node.started", 1),
		"data not object": strings.Replace(s, `"data":{}`, `"data":3`, 1),
		"trailing":        s + `{}`,
		"too large":       strings.Repeat(" ", MaxSize+1),
		"negative epoch":  strings.Replace(s, `"epoch":1`, `"epoch":-1`, 1),
	}
	for name, in := range cases {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: accepted %q", name, in)
		}
	}
	for name, in := range cases {
		if name == "unknown field" || name == "trailing" {
			continue // DecodeStored reads what Tandem stored; it does not look for these
		}
		if _, err := DecodeStored([]byte(in)); err == nil {
			t.Errorf("DecodeStored %s: accepted %q", name, in)
		}
	}
	if _, err := Decode([]byte(strings.Repeat(" ", MaxSize+1))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized input: %v, want ErrTooLarge", err)
	}
}

func FuzzDecode(f *testing.F) {
	good, _ := New("p", "a", "monitor", NodeStarted, 1, t0, map[string]int{"n": 1})
	b, _ := good.Encode()
	f.Add(b)
	f.Add([]byte(`{"specversion":"1.0"}`))
	f.Add([]byte(`null`))
	huge := good
	huge.Epoch = 1<<64 - 1
	hb, _ := json.Marshal(huge)
	f.Add(hb)
	f.Fuzz(func(t *testing.T, in []byte) {
		e, err := Decode(in)
		if err != nil {
			return
		}
		// Whatever Decode accepts must encode and decode to the same event.
		out, err := e.Encode()
		if err != nil {
			t.Fatalf("accepted event does not encode: %v", err)
		}
		e2, err := Decode(out)
		if err != nil || e2.ID != e.ID || e2.Type != e.Type || e2.Epoch != e.Epoch {
			t.Fatalf("re-decode differs: %v %+v", err, e2)
		}
		if _, err := DecodeStored(in); err != nil {
			t.Fatalf("Decode accepted what DecodeStored refuses: %v", err)
		}
		if e.Epoch > MaxEpoch {
			t.Fatalf("accepted epoch %d beyond %d", e.Epoch, MaxEpoch)
		}
	})
}

func TestCheckEpoch(t *testing.T) {
	for _, tt := range []struct {
		epoch, newest uint64
		ok            bool
	}{
		{1, 0, true}, {7, 6, true}, {MaxEpochJump, 0, true}, {MaxEpochJump + 1, 0, false},
		{1<<64 - 1, 5, false}, {MaxEpoch + 1, MaxEpoch, false}, {MaxEpoch, MaxEpoch - 1, true}, {3, 9, true},
	} {
		if err := CheckEpoch(tt.epoch, tt.newest); (err == nil) != tt.ok {
			t.Errorf("CheckEpoch(%d, %d) = %v, want ok %v", tt.epoch, tt.newest, err, tt.ok)
		}
	}
	e, err := New("p", "a", "monitor", NodeActivated, 1<<64-1, time.Now(), nil)
	if err == nil {
		if err := e.Validate(); err == nil {
			t.Error("an event in epoch 2^64-1 validates")
		}
	}
}

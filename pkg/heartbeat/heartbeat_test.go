package heartbeat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
)

func goodHeartbeat() Heartbeat {
	return Heartbeat{V: 1, Pair: "p", Node: "a", Role: "master", State: "active", Epoch: 2,
		Seq: 1, Sent: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)}
}

func TestHeartbeatRejects(t *testing.T) {
	b, _ := json.Marshal(goodHeartbeat())
	if _, err := Decode(b, "p"); err != nil {
		t.Fatal(err)
	}
	s := string(b)
	bad := map[string]string{
		"wrong pair":    s,
		"version":       strings.Replace(s, `"v":1`, `"v":9`, 1),
		"role":          strings.Replace(s, `"master"`, `"boss"`, 1),
		"state":         strings.Replace(s, `"active"`, `"on"`, 1),
		"node":          strings.Replace(s, `"node":"a"`, `"node":"A.B"`, 1),
		"unknown field": strings.Replace(s, `{`, `{"evil":true,`, 1),
		"oversized":     strings.Repeat(" ", MaxSize+1) + s,
		"maint left":    strings.Replace(s, `"maintenance_left_ms":0`, `"maintenance_left_ms":5`, 1),
		"negative":      strings.Replace(s, `"epoch":2`, `"epoch":-2`, 1),
	}
	for name, in := range bad {
		pair := "p"
		if name == "wrong pair" {
			pair = "q"
		}
		if _, err := Decode([]byte(in), pair); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func FuzzDecodeHeartbeat(f *testing.F) {
	b, _ := json.Marshal(goodHeartbeat())
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := Decode(in, "p")
		if err != nil {
			return
		}
		if h.Epoch > event.MaxEpoch {
			t.Fatalf("accepted epoch %d", h.Epoch)
		}
		out, _ := json.Marshal(h)
		if _, err := Decode(out, "p"); err != nil {
			t.Fatalf("accepted heartbeat does not re-decode: %v", err)
		}
	})
}

func TestDecodeSender(t *testing.T) {
	later := []byte(`{"v":1,"pair":"p","node":"a","role":"master","later":"field"}`)
	h, err := DecodeSender(later, "p")
	if err != nil || h.Node != "a" || h.Role != "master" {
		t.Fatalf("sender of a heartbeat with a later field: %+v %v", h, err)
	}
	if _, err := Decode(later, "p"); err == nil {
		t.Fatal("Decode accepted an unknown field")
	}
	for _, in := range []string{`{"v":2,"pair":"p","node":"a","role":"master"}`, `{"v":1,"pair":"q","node":"a","role":"master"}`,
		`{"v":1,"pair":"p","node":"a b","role":"master"}`, `{"v":1,"pair":"p","node":"a","role":"boss"}`, `master a`} {
		if _, err := DecodeSender([]byte(in), "p"); err == nil {
			t.Errorf("sender of %s accepted", in)
		}
	}
}

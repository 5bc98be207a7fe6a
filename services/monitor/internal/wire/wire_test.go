package wire

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
	if _, err := DecodeHeartbeat(b, "p"); err != nil {
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
		if _, err := DecodeHeartbeat([]byte(in), pair); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func TestControlRejects(t *testing.T) {
	if _, err := DecodeControl([]byte(`{"v":1,"pair":"p","from":"a","kind":"take","epoch":3}`), "p"); err != nil {
		t.Fatal(err)
	}
	for _, in := range []string{`{"v":1,"pair":"p","from":"a","kind":"nuke","epoch":3}`, `{"v":1,"pair":"p","from":"","kind":"take"}`, `[]`} {
		if _, err := DecodeControl([]byte(in), "p"); err == nil {
			t.Errorf("accepted %s", in)
		}
	}
}

func FuzzDecodeHeartbeat(f *testing.F) {
	b, _ := json.Marshal(goodHeartbeat())
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		h, err := DecodeHeartbeat(in, "p")
		if err != nil {
			return
		}
		if h.Epoch > event.MaxEpoch {
			t.Fatalf("accepted epoch %d", h.Epoch)
		}
		out, _ := json.Marshal(h)
		if _, err := DecodeHeartbeat(out, "p"); err != nil {
			t.Fatalf("accepted heartbeat does not re-decode: %v", err)
		}
	})
}

func FuzzDecodeControl(f *testing.F) {
	f.Add([]byte(`{"v":1,"pair":"p","from":"a","kind":"yield","epoch":3}`))
	f.Add([]byte(`{"v":1,"pair":"p","from":"a","kind":"take","epoch":18446744073709551615}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		if c, err := DecodeControl(in, "p"); err == nil && c.Epoch > event.MaxEpoch {
			t.Fatalf("accepted epoch %d", c.Epoch)
		}
	})
}

// TestHeartbeatWithHealthOldDecoder: health travels in a header, so the
// heartbeat body a new node sends is exactly what an old node's strict
// decoder accepts.
func TestHealthHeader(t *testing.T) {
	h := Health{V: 1, Healthy: false, Checks: []CheckHealth{{Name: "spooler", Output: "HTTP 503", Since: time.Unix(1, 0).UTC()}, {Name: "port", Healthy: true}}}
	b, _ := json.Marshal(h)
	got, err := DecodeHealth(string(b))
	if err != nil {
		t.Fatal(err)
	}
	if f := got.Failing(); len(f) != 1 || f[0] != "spooler" {
		t.Errorf("failing %v", f)
	}
	s := string(b)
	for name, in := range map[string]string{
		"healthy but failing": strings.Replace(s, `"healthy":false`, `"healthy":true`, 1),
		"bad name":            strings.Replace(s, `"spooler"`, `"a.b"`, 1),
		"version":             strings.Replace(s, `"v":1`, `"v":2`, 1),
		"unknown field":       strings.Replace(s, `{`, `{"x":1,`, 1),
		"oversized":           strings.Repeat(" ", MaxHealthSize+1) + s,
	} {
		if _, err := DecodeHealth(in); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
}

func FuzzDecodeHealth(f *testing.F) {
	f.Add(`{"v":1,"healthy":true,"checks":[]}`)
	f.Add(`{"v":1,"healthy":false,"checks":[{"name":"x","healthy":false,"output":"o","since":"2026-01-01T00:00:00Z"}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		h, err := DecodeHealth(in)
		if err != nil {
			return
		}
		if h.Healthy != (len(h.Failing()) == 0) {
			t.Fatalf("accepted inconsistent health %+v", h)
		}
	})
}

func TestTakeReason(t *testing.T) {
	ok := "F15: check web failed on alpha"
	if got := TakeReason(ok); got != ok {
		t.Errorf("TakeReason(%q) = %q", ok, got)
	}
	for _, bad := range []string{"", "switchover", "F15: " + strings.Repeat("x", 600), "F15: a\nb", "F15: \xff"} {
		if got := TakeReason(bad); got != "" {
			t.Errorf("TakeReason(%q) = %q, want refused", bad, got)
		}
	}
}

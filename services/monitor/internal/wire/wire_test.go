package wire

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
)

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

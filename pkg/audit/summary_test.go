package audit_test

import (
	"testing"

	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/event"
)

func TestSummary(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{`{"reason":"F2: no peer heard","from":"starting"}`, "F2: no peer heard"},
		{`{"phase":"made","reason":"R1: asked","bytes":1}`, "R1: asked"},
		{`{"reason":""}`, ""},
		{`{"hook":"on-activate","exit_code":0,"duration_ms":12}`, "on-activate: exit 0 in 12ms"},
		{`{"hook":"on-activate","exit_code":1,"duration_ms":30000,"error":"timed out"}`, "on-activate: exit 1 in 30000ms: timed out"},
		{"{\"active\": \"a\",\n  \"known\": 0}", `{"active": "a", "known": 0}`},
		{`{}`, "{}"},
		{`[1, 2]`, "[1, 2]"},
		{`not json`, "not json"},
	} {
		if got := audit.Summary(event.Envelope{Data: []byte(c.data)}); got != c.want {
			t.Errorf("%s: got %q, want %q", c.data, got, c.want)
		}
	}
}

// Fields of an unexpected JSON type are not taken for what they are not.
func TestSummaryOddFields(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{`{"reason":5,"from":"x"}`, `{"reason":5,"from":"x"}`},
		{`{"hook":"h","exit_code":2}`, "h: exit 2 in <nil>ms"},
		{`{"hook":"h","exit_code":0,"duration_ms":1,"error":7}`, "h: exit 0 in 1ms"},
		{`{"reason":"a \"quoted\" why"}`, `a "quoted" why`},
		{``, ``},
	} {
		if got := audit.Summary(event.Envelope{Data: []byte(c.data)}); got != c.want {
			t.Errorf("%s: got %q, want %q", c.data, got, c.want)
		}
	}
}

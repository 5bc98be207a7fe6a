package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tandem-ha/tandem/pkg/event"
)

// summaryFields are the fields of an event's data that Summary reads, of
// any event type (event.Why's reason, event.HookResult's hook fields). A
// field of another JSON type than these is treated as absent.
type summaryFields struct {
	Reason     json.RawMessage `json:"reason"`
	Hook       json.RawMessage `json:"hook"`
	ExitCode   json.RawMessage `json:"exit_code"`
	DurationMS json.RawMessage `json:"duration_ms"`
	Error      json.RawMessage `json:"error"`
}

// Summary is what an event says, in one line, as tandem audit replay's
// WHAT column and tandem demo's timeline print it: the reason, when the
// data has one; for a hook's run, the hook, its exit code, its duration
// and its error; else the data itself on one line (or the raw data when it
// is not a JSON object).
func Summary(e event.Envelope) string {
	data := bytes.TrimSpace(e.Data)
	var f summaryFields
	if len(data) == 0 || data[0] != '{' || json.Unmarshal(data, &f) != nil {
		return string(e.Data)
	}
	if r, ok := text(f.Reason); ok {
		return r
	}
	if h, ok := text(f.Hook); ok {
		s := fmt.Sprintf("%s: exit %s in %sms", h, literal(f.ExitCode), literal(f.DurationMS))
		if e, ok := text(f.Error); ok {
			s += ": " + e
		}
		return s
	}
	return strings.Join(strings.Fields(string(e.Data)), " ")
}

// text is raw as a JSON string's value, if it is one.
func text(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// literal is raw as it was written ("<nil>" when absent, as the summary
// always printed it).
func literal(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return "<nil>"
	}
	return string(raw)
}

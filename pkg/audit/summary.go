package audit

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/tandem-ha/tandem/pkg/event"
)

// Summary is what an event says, in one line, as tandem audit replay's
// WHAT column and tandem demo's timeline print it: the reason, when the
// data has one; for a hook's run, the hook, its exit code, its duration
// and its error; else the data itself on one line (or the raw data when it
// is not a JSON object).
func Summary(e event.Envelope) string {
	var d map[string]any
	if json.Unmarshal(e.Data, &d) != nil {
		return string(e.Data)
	}
	if r, ok := d["reason"].(string); ok {
		return r
	}
	if h, ok := d["hook"].(string); ok {
		s := fmt.Sprintf("%s: exit %v in %vms", h, d["exit_code"], d["duration_ms"])
		if e, ok := d["error"].(string); ok {
			s += ": " + e
		}
		return s
	}
	return strings.Join(strings.Fields(string(e.Data)), " ")
}

// Package wire is the monitor-to-monitor wire format besides the heartbeat
// (pkg/heartbeat, F5): the control messages of a switchover (F8) and the
// health a heartbeat carries in a header (F15), as JSON with a schema
// version.
// Decoders are strict (size limit, unknown fields, every field validated)
// because they read whatever arrives on the pair's subjects.
package wire

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Version is the schema version of the control and health messages.
const Version = 1

// MaxSize is the largest message accepted.
const MaxSize = 4 << 10

// Control is a switchover message: "yield" (master → active standby) or
// "take" (yielding node → the other).
type Control struct {
	V     int    `json:"v"`
	Pair  string `json:"pair"`
	From  string `json:"from"`
	Kind  string `json:"kind"`
	Epoch uint64 `json:"epoch"`
}

// DecodeControl decodes and validates a control message meant for pair.
func DecodeControl(b []byte, pair string) (Control, error) {
	var c Control
	if err := event.DecodeStrict(b, MaxSize, &c); err != nil {
		return Control{}, fmt.Errorf("control: %w", err)
	}
	switch {
	case c.V != Version:
		return Control{}, fmt.Errorf("control: schema version %d, want %d", c.V, Version)
	case c.Pair != pair:
		return Control{}, fmt.Errorf("control: for pair %q, this is pair %q", c.Pair, pair)
	case !subject.ValidName(c.From):
		return Control{}, fmt.Errorf("control: node name %q", c.From)
	case c.Kind != "yield" && c.Kind != "take":
		return Control{}, fmt.Errorf("control: kind %q", c.Kind)
	case c.Epoch > event.MaxEpoch:
		return Control{}, fmt.Errorf("control: epoch %d beyond %d", c.Epoch, event.MaxEpoch)
	}
	return c, nil
}

// HealthHeader is the NATS header of a heartbeat that carries the node's
// health (F15). It is a header, not a field of Heartbeat, so that a monitor
// of an older version, whose heartbeat decoder refuses unknown fields,
// ignores it; a heartbeat without it is from a node without checks (or
// older): healthy.
const HealthHeader = "Tandem-Health"

// MaxHealthSize is the largest health header accepted.
const MaxHealthSize = 8 << 10

// Health is a node's health as its heartbeats carry it.
type Health struct {
	V       int           `json:"v"`
	Healthy bool          `json:"healthy"`
	Checks  []CheckHealth `json:"checks"`
}

// CheckHealth is one check's state.
type CheckHealth struct {
	Name    string    `json:"name"`
	Healthy bool      `json:"healthy"`
	Output  string    `json:"output"`
	Since   time.Time `json:"since"`
}

// DecodeHealth decodes and validates a health header.
func DecodeHealth(s string) (Health, error) {
	var h Health
	if err := event.DecodeStrict([]byte(s), MaxHealthSize, &h); err != nil {
		return Health{}, fmt.Errorf("health: %w", err)
	}
	if h.V != Version {
		return Health{}, fmt.Errorf("health: schema version %d, want %d", h.V, Version)
	}
	all := true
	for _, c := range h.Checks {
		if !subject.ValidName(c.Name) {
			return Health{}, fmt.Errorf("health: check name %q", c.Name)
		}
		all = all && c.Healthy
	}
	if h.Healthy != all {
		return Health{}, fmt.Errorf("health: healthy %v, but its checks say %v", h.Healthy, all)
	}
	return h, nil
}

// Failing names the unhealthy checks.
func (h Health) Failing() []string {
	var out []string
	for _, c := range h.Checks {
		if !c.Healthy {
			out = append(out, c.Name)
		}
	}
	return out
}

// ReasonHeader is the NATS header of a Take that says why the node yields
// when its health made it (F15), for the peer's activation reason. A header,
// like HealthHeader, so that older peers ignore it.
const ReasonHeader = "Tandem-Reason"

// maxReason bounds a Take's reason.
const maxReason = 512

// TakeReason is the reason of a Take header as the machine may use it: a
// health reason ("F15: …") of printable text within maxReason bytes, else
// "" (the peer then says why from what its heartbeats told).
func TakeReason(h string) string {
	if len(h) > maxReason || !strings.HasPrefix(h, "F15: ") || !utf8.ValidString(h) {
		return ""
	}
	for _, r := range h {
		if !unicode.IsPrint(r) {
			return ""
		}
	}
	return h
}

// Package heartbeat is the heartbeat a monitor publishes every interval
// (F5) on subject.Heartbeat(pair, node): the one definition of its format,
// schema version and size limit. The monitor decodes its peer's heartbeats
// strictly (Decode); other services that only need to know who speaks —
// the license service learning which node is the master — read the
// sender (DecodeSender), ignoring fields added later.
package heartbeat

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/member"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Version is the heartbeat's schema version.
const Version = 1

// MaxSize is the largest heartbeat accepted.
const MaxSize = 4 << 10

// Heartbeat is what a monitor says of itself every interval.
type Heartbeat struct {
	V     int    `json:"v"`
	Pair  string `json:"pair"`
	Node  string `json:"node"`
	Role  string `json:"role"`
	State string `json:"state"`
	Epoch uint64 `json:"epoch"`
	// Maintenance: on, how long it still lasts, and the version of the
	// setting (the newer setting wins between the nodes).
	Maintenance        bool      `json:"maintenance"`
	MaintenanceLeftMS  int64     `json:"maintenance_left_ms"`
	MaintenanceVersion uint64    `json:"maintenance_version"`
	Seq                uint64    `json:"seq"`
	Sent               time.Time `json:"sent"`
	// WitnessDown: the sender cannot reach the pair's witness (F14).
	WitnessDown bool `json:"witness_down,omitempty"`
}

// Decode decodes and validates a heartbeat meant for pair: size limit, no
// unknown fields, every field checked.
func Decode(b []byte, pair string) (Heartbeat, error) {
	var h Heartbeat
	if err := event.DecodeStrict(b, MaxSize, &h); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: %w", err)
	}
	if err := h.validSender(pair); err != nil {
		return Heartbeat{}, err
	}
	return h, h.validate()
}

// DecodeSender reads who sent a heartbeat meant for pair: its version,
// pair, node and role are checked, other fields are not (a newer monitor
// may add some).
func DecodeSender(b []byte, pair string) (Heartbeat, error) {
	if len(b) > MaxSize {
		return Heartbeat{}, fmt.Errorf("heartbeat: %w: %d bytes, limit %d", event.ErrTooLarge, len(b), MaxSize)
	}
	var h struct {
		V    int    `json:"v"`
		Pair string `json:"pair"`
		Node string `json:"node"`
		Role string `json:"role"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return Heartbeat{}, fmt.Errorf("heartbeat: %w", err)
	}
	out := Heartbeat{V: h.V, Pair: h.Pair, Node: h.Node, Role: h.Role}
	return out, out.validSender(pair)
}

func (h Heartbeat) validSender(pair string) error {
	switch {
	case h.V != Version:
		return fmt.Errorf("heartbeat: schema version %d, want %d", h.V, Version)
	case h.Pair != pair:
		return fmt.Errorf("heartbeat: for pair %q, this is pair %q", h.Pair, pair)
	case !subject.ValidName(h.Node):
		return fmt.Errorf("heartbeat: node name %q", h.Node)
	case !member.Role(h.Role).Valid():
		return fmt.Errorf("heartbeat: role %q", h.Role)
	}
	return nil
}

func (h Heartbeat) validate() error {
	switch {
	case !member.State(h.State).Valid():
		return fmt.Errorf("heartbeat: state %q", h.State)
	case h.MaintenanceLeftMS < 0 || (!h.Maintenance && h.MaintenanceLeftMS != 0):
		return fmt.Errorf("heartbeat: maintenance left %dms with maintenance %v", h.MaintenanceLeftMS, h.Maintenance)
	case h.Sent.IsZero():
		return errors.New("heartbeat: no send time")
	case h.Epoch > event.MaxEpoch:
		return fmt.Errorf("heartbeat: epoch %d beyond %d", h.Epoch, event.MaxEpoch)
	}
	return nil
}

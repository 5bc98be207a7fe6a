// Package event is the envelope every Tandem event travels in (SPEC §7 A1):
// the CloudEvents 1.0 attribute names plus pair, node and epoch. The id is
// also the NATS message id (Nats-Msg-Id), so a re-published event is stored
// once.
//
// Decode is strict: it limits the size, refuses unknown attributes, and
// validates every field, so a service can hand it any bytes from the wire.
package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nuid"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// SpecVersion is the CloudEvents version of the envelope.
const SpecVersion = "1.0"

// MaxSize is the largest encoded envelope Decode accepts.
const MaxSize = 64 << 10

// Event types (the type attribute). They may not be renamed.
const (
	NodeStarted          = "tandem.node.started"
	NodeActivated        = "tandem.node.activated"
	NodeDeactivated      = "tandem.node.deactivated"
	NodeStalled          = "tandem.node.stalled"
	PeerLost             = "tandem.peer.lost"
	PeerFound            = "tandem.peer.found"
	CollisionResolved    = "tandem.collision.resolved"
	SwitchoverRequested  = "tandem.switchover.requested"
	SwitchoverCompleted  = "tandem.switchover.completed"
	SwitchoverRefused    = "tandem.switchover.refused"
	SwitchoverRolledBack = "tandem.switchover.rolledback"
	MaintenanceChanged   = "tandem.maintenance.changed"
	HookFinished         = "tandem.hook.finished"
	FailoverSuppressed   = "tandem.failover.suppressed"
	FailoverNotified     = "tandem.failover.notified"
	ReplPaused           = "tandem.repl.paused"
	ReplResumed          = "tandem.repl.resumed"
	ReplSnapshot         = "tandem.repl.snapshot"
	ReplConflict         = "tandem.repl.conflict"
	ReplStatusWritten    = "tandem.repl.status.written"
	ReplBlocked          = "tandem.repl.blocked"
	ReplRefused          = "tandem.repl.refused"
	LicenseAdded         = "tandem.license.added"
	LicenseRefused       = "tandem.license.refused"
	LicenseWarning       = "tandem.license.warning"
	LicenseInvalid       = "tandem.license.invalid"
	LicenseValid         = "tandem.license.valid"
	InputRejected        = "tandem.input.rejected"
	// Health checks (F15): a check turned unhealthy (after fall failures)
	// or healthy again (after rise successes); both nodes unhealthy (data
	// critical true), or no longer (false).
	CheckFailed    = "tandem.check.failed"
	CheckRecovered = "tandem.check.recovered"
	HealthCritical = "tandem.health.critical"
	// The witness (F14): it did not answer a node, or answers again.
	WitnessUnreachable = "tandem.witness.unreachable"
	WitnessReachable   = "tandem.witness.reachable"
	// AuditChanged: an event stream or mirror was found changed (deleted,
	// retention shrunk, deny flags lifted) and restored — critical.
	AuditChanged = "tandem.audit.changed"
)

// Envelope is one event.
type Envelope struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	Pair            string          `json:"pair"`
	Node            string          `json:"node"`
	Epoch           uint64          `json:"epoch"`
	Data            json.RawMessage `json:"data"`
}

// New makes an envelope with a fresh id. data is marshalled as JSON; a nil
// data becomes {}.
func New(pair, node, service, typ string, epoch uint64, now time.Time, data any) (Envelope, error) {
	raw := json.RawMessage(`{}`)
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return Envelope{}, fmt.Errorf("marshal %s data: %w", typ, err)
		}
		raw = b
	}
	e := Envelope{
		SpecVersion:     SpecVersion,
		ID:              nuid.Next(),
		Source:          Source(pair, node, service),
		Type:            typ,
		Time:            now.UTC(),
		DataContentType: "application/json",
		Pair:            pair,
		Node:            node,
		Epoch:           epoch,
		Data:            raw,
	}
	return e, e.Validate()
}

// Source is the source attribute of events made by service on node.
func Source(pair, node, service string) string {
	return "tandem://" + pair + "/" + node + "/" + service
}

// Subject is the NATS subject the event is published on.
func (e Envelope) Subject() string { return subject.Event(e.Pair, e.Node, e.Type) }

// Encode validates and marshals e.
func (e Envelope) Encode() ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("%w: event of %d bytes, limit %d", ErrTooLarge, len(b), MaxSize)
	}
	return b, nil
}

var (
	// ErrTooLarge is returned for input over MaxSize.
	ErrTooLarge = errors.New("too large")
	// ErrInvalid is wrapped by every validation error.
	ErrInvalid = errors.New("invalid event")
)

// validID: 1–64 of [A-Za-z0-9_-].
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validToken: [a-z] then up to 31 of [a-z0-9_] (first), or of [a-z0-9-]
// (dash).
func validToken(s string, dash bool) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || (c == '_' && !dash) || (c == '-' && dash)
		if !ok {
			return false
		}
	}
	return true
}

// validType: "tandem" and two to four tokens, dot separated.
func validType(s string) bool {
	rest, ok := strings.CutPrefix(s, "tandem.")
	if !ok {
		return false
	}
	parts := strings.Split(rest, ".")
	if len(parts) < 2 || len(parts) > 4 {
		return false
	}
	for _, p := range parts {
		if !validToken(p, false) {
			return false
		}
	}
	return true
}

// validSource: tandem://<pair>/<node>/<service>.
func validSource(s string) bool {
	rest, ok := strings.CutPrefix(s, "tandem://")
	if !ok {
		return false
	}
	parts := strings.Split(rest, "/")
	return len(parts) == 3 && subject.ValidName(parts[0]) && subject.ValidName(parts[1]) && validToken(parts[2], true)
}

// Validate checks every attribute.
func (e Envelope) Validate() error {
	switch {
	case e.SpecVersion != SpecVersion:
		return fmt.Errorf("%w: specversion %q, want %q", ErrInvalid, e.SpecVersion, SpecVersion)
	case !validID(e.ID):
		return fmt.Errorf("%w: id %q", ErrInvalid, e.ID)
	case !validType(e.Type):
		return fmt.Errorf("%w: type %q", ErrInvalid, e.Type)
	case !validSource(e.Source):
		return fmt.Errorf("%w: source %q", ErrInvalid, e.Source)
	case !subject.ValidName(e.Pair):
		return fmt.Errorf("%w: pair %q", ErrInvalid, e.Pair)
	case !subject.ValidName(e.Node):
		return fmt.Errorf("%w: node %q", ErrInvalid, e.Node)
	case e.Time.IsZero():
		return fmt.Errorf("%w: no time", ErrInvalid)
	case e.Epoch > MaxEpoch:
		return fmt.Errorf("%w: epoch %d beyond %d", ErrInvalid, e.Epoch, MaxEpoch)
	case e.DataContentType != "" && e.DataContentType != "application/json":
		return fmt.Errorf("%w: datacontenttype %q", ErrInvalid, e.DataContentType)
	}
	if d := bytes.TrimSpace(e.Data); len(d) == 0 || d[0] != '{' {
		return fmt.Errorf("%w: data must be a JSON object", ErrInvalid)
	}
	return nil
}

// Decode parses and validates one encoded envelope. It refuses input over
// MaxSize, unknown attributes, trailing data and invalid fields.
func Decode(b []byte) (Envelope, error) {
	var e Envelope
	if err := DecodeStrict(b, MaxSize, &e); err != nil {
		return Envelope{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// DecodeStored parses and validates an event read back from a Tandem event
// stream (a replay). It validates every attribute like Decode but, for
// speed, does not look for unknown attributes; services reading input from
// the wire use Decode.
func DecodeStored(b []byte) (Envelope, error) {
	if len(b) > MaxSize {
		return Envelope{}, fmt.Errorf("%w: %w: %d bytes, limit %d", ErrInvalid, ErrTooLarge, len(b), MaxSize)
	}
	e, ok := decodeStoredFast(b)
	if !ok {
		e = Envelope{}
		if err := json.Unmarshal(b, &e); err != nil {
			return Envelope{}, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if err := e.Validate(); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// DecodeStrict unmarshals one JSON value of at most max bytes into v,
// refusing unknown fields and trailing data. Every wire decoder in Tandem
// uses it.
func DecodeStrict(b []byte, max int, v any) error {
	if len(b) > max {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(b), max)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data after JSON value")
	}
	return nil
}

package event

import (
	"encoding/json"
	"fmt"
	"time"
)

// The data of each event type (the data attribute) is one Go type below:
// producers emit these values, consumers decode them with DecodeData or
// As. A field marked omitempty is absent where it does not apply (a
// reader of the type sees its zero value); every other field is always
// present. Fields may be added; none may be renamed.

// Why is the reason, in words, that most events carry (F13). It is
// embedded in the data types that have one.
type Why struct {
	Reason string `json:"reason"`
}

// Because is the Why of reason.
func Because(reason string) Why { return Why{Reason: reason} }

// SetReason sets the reason; the failover machine names the reason of
// every event it emits in one place.
func (w *Why) SetReason(r string) { w.Reason = r }

// Reasoned is event data with a reason.
type Reasoned interface{ SetReason(string) }

// Activation is the data of tandem.node.activated: the node became active
// in a new epoch (the envelope's). Outage says the activation follows the
// loss of the active peer (F6) and not a start, switchover or health
// handover.
type Activation struct {
	Why
	From   string `json:"from"`
	Outage bool   `json:"outage"`
}

// Deactivation is the data of tandem.node.deactivated.
type Deactivation struct {
	Why
	From string `json:"from"`
}

// PeerHeard is the data of tandem.peer.found.
type PeerHeard struct {
	Why
	Peer      string `json:"peer"`
	PeerState string `json:"peer_state"`
	PeerEpoch uint64 `json:"peer_epoch"`
}

// PeerMissing is the data of tandem.peer.lost.
type PeerMissing struct {
	Why
	Peer string `json:"peer"`
}

// Collision is the data of tandem.collision.resolved: both nodes were
// active (F7) and the master stays active in a new epoch.
type Collision struct {
	Why
	Peer          string `json:"peer"`
	PeerEpoch     uint64 `json:"peer_epoch"`
	PreviousEpoch uint64 `json:"previous_epoch"`
}

// SwitchoverRequest is the data of tandem.switchover.requested. Automatic
// is set for a failback (F9) or a health handover (F15), which names the
// failing checks.
type SwitchoverRequest struct {
	Why
	To        string   `json:"to"`
	Automatic bool     `json:"automatic,omitempty"`
	Checks    []string `json:"checks,omitempty"`
}

// SwitchoverDone is the data of tandem.switchover.completed: To is active
// in Epoch.
type SwitchoverDone struct {
	Why
	To    string `json:"to"`
	Epoch uint64 `json:"epoch"`
}

// SwitchoverRefusal is the data of tandem.switchover.refused: the reply
// code and the node the request named.
type SwitchoverRefusal struct {
	Why
	Code string `json:"code"`
	Node string `json:"node"`
}

// SwitchoverRollback is the data of tandem.switchover.rolledback.
type SwitchoverRollback struct {
	Why
	To string `json:"to"`
}

// MaintenanceChange is the data of tandem.maintenance.changed. LeftTicks
// is absent when maintenance expired.
type MaintenanceChange struct {
	Why
	On        bool `json:"on"`
	LeftTicks *int `json:"left_ticks,omitempty"`
}

// Stall is the data of tandem.node.stalled (F12).
type Stall struct {
	Why
	LateTicks int `json:"late_ticks"`
	// Unreported is how many stalls came since the previous
	// tandem.node.stalled event without an event of their own (at most one
	// event per 10 s).
	Unreported int `json:"unreported,omitempty"`
}

// Suppression is the data of tandem.failover.suppressed: either the
// peer was lost on evidence that does not allow a failover (maintenance,
// health, …), or the witness holds the peer's lease (F14).
type Suppression struct {
	Why
	*LostPeer
	*WitnessLease
}

// LostPeer is the peer whose loss did not fail over, and how it was lost.
type LostPeer struct {
	Peer string `json:"peer"`
	Lost string `json:"lost"`
}

// WitnessLease is the lease the witness holds: for whom, in which epoch,
// for how many more ticks.
type WitnessLease struct {
	Holder      string `json:"holder"`
	HolderEpoch uint64 `json:"holder_epoch"`
	LeftTicks   int64  `json:"left_ticks"`
}

// CheckChange is the data of tandem.check.failed and
// tandem.check.recovered (F15). Healthy is the node's health after it.
type CheckChange struct {
	Why
	Check   string `json:"check"`
	Output  string `json:"output"`
	Healthy bool   `json:"healthy"`
}

// Criticality is the data of tandem.health.critical: both nodes
// unhealthy (Critical, with each side's failing checks), or no longer.
type Criticality struct {
	Why
	Critical   bool     `json:"critical"`
	Checks     []string `json:"checks,omitempty"`
	PeerChecks []string `json:"peer_checks,omitempty"`
}

// WitnessDown is the data of tandem.witness.unreachable (F14).
type WitnessDown struct {
	Why
	Required bool `json:"required"`
}

// HookResult is the data of tandem.hook.finished (F11).
type HookResult struct {
	Hook       string `json:"hook"`
	Command    string `json:"command"`
	State      string `json:"state"`
	ExitCode   int    `json:"exit_code"`
	DurationMS int64  `json:"duration_ms"`
	Output     string `json:"output"`
	OK         bool   `json:"ok"`
	Error      string `json:"error,omitempty"`
}

// Rejected is the data of tandem.input.rejected (SPEC §9): what kind of
// input, on which subject, and why.
type Rejected struct {
	Why
	Kind    string `json:"kind"`
	Subject string `json:"subject,omitempty"`
}

// Notified is the data of tandem.failover.notified (N6).
type Notified struct {
	Epoch        uint64 `json:"epoch"`
	Active       string `json:"active"`
	Failed       string `json:"failed"`
	Source       string `json:"source"`
	Known        int    `json:"known"`
	Acknowledged int    `json:"acknowledged"`
	Switched     int    `json:"switched"`
	Complete     bool   `json:"complete"`
	NotifiedMS   int64  `json:"notified_ms"`
	AllAckedMS   *int64 `json:"all_acked_ms,omitempty"`
}

// Snapshot is the data of tandem.repl.snapshot, in its phases: started,
// made (for the peer), restored, discarded (an operator's resync
// --discard), backup-detected (R9).
type Snapshot struct {
	Why
	Phase     string            `json:"phase"`
	From      string            `json:"from,omitempty"`
	Bytes     int64             `json:"bytes,omitempty"`
	Log       uint64            `json:"log,omitempty"`
	DB        string            `json:"db,omitempty"`
	Seconds   float64           `json:"seconds,omitempty"`
	Taken     int               `json:"taken,omitempty"`
	Kept      int               `json:"kept,omitempty"`
	Conflicts int               `json:"conflicts,omitempty"`
	Discarded map[string]int    `json:"discarded,omitempty"`
	Refused   map[string]string `json:"refused,omitempty"`
	Shipped   uint64            `json:"shipped,omitempty"`
	LogHigh   uint64            `json:"log_high,omitempty"`
}

// Conflict is the data of tandem.repl.conflict (R3): one row changed on
// both nodes; LoserRow is the losing row (column → SQL literal), absent
// for a delete.
type Conflict struct {
	Why
	Table         string          `json:"table"`
	PK            string          `json:"pk"`
	Kind          string          `json:"kind"`
	Winner        string          `json:"winner"`
	Loser         string          `json:"loser"`
	LoserOp       string          `json:"loser_op"`
	WinnerVersion string          `json:"winner_version"`
	LoserVersion  string          `json:"loser_version"`
	LoserRow      json.RawMessage `json:"loser_row,omitempty"`
}

// StatusWritten is the data of tandem.repl.status.written (R8).
type StatusWritten struct {
	Why
	Active string `json:"active"`
	Epoch  uint64 `json:"epoch"`
	Time   string `json:"time"`
}

// Blocked is the data of tandem.repl.blocked (R10): why, what needed the
// attempt (Attempt, when not in the reason), and when it is tried again.
type Blocked struct {
	Why
	RetryInSeconds float64 `json:"retry_in_seconds,omitempty"`
	Attempt        string  `json:"why,omitempty"`
}

// TableRefused is the data of tandem.repl.refused (R11).
type TableRefused struct {
	Why
	Table string `json:"table"`
}

// AddedLicense is the data of tandem.license.added (L2).
type AddedLicense struct {
	ID       string   `json:"id"`
	Customer string   `json:"customer"`
	Product  string   `json:"product"`
	Features []string `json:"features"`
	Seats    int      `json:"seats"`
	Expires  string   `json:"expires"`
}

// LicenseRefusal is the data of tandem.license.refused (L1, L2); the
// license's id and customer when it could be read.
type LicenseRefusal struct {
	Why
	ID       string `json:"id,omitempty"`
	Customer string `json:"customer,omitempty"`
}

// LicenseState is the data of tandem.license.warning, .invalid and .valid
// (L4).
type LicenseState struct {
	Why
	Level       string    `json:"level"`
	DaysLeft    int       `json:"days_left"`
	GraceLeft   string    `json:"grace_left"`
	LastContact time.Time `json:"last_contact"`
}

// AuditChange is the data of tandem.audit.changed (A3).
type AuditChange struct {
	Severity string   `json:"severity"`
	Changes  []string `json:"changes"`
	Restored bool     `json:"restored"`
}

// dataTypes makes an empty value of each event type's data.
var dataTypes = map[string]func() any{
	NodeStarted:          func() any { return new(Why) },
	NodeActivated:        func() any { return new(Activation) },
	NodeDeactivated:      func() any { return new(Deactivation) },
	NodeStalled:          func() any { return new(Stall) },
	PeerLost:             func() any { return new(PeerMissing) },
	PeerFound:            func() any { return new(PeerHeard) },
	CollisionResolved:    func() any { return new(Collision) },
	SwitchoverRequested:  func() any { return new(SwitchoverRequest) },
	SwitchoverCompleted:  func() any { return new(SwitchoverDone) },
	SwitchoverRefused:    func() any { return new(SwitchoverRefusal) },
	SwitchoverRolledBack: func() any { return new(SwitchoverRollback) },
	MaintenanceChanged:   func() any { return new(MaintenanceChange) },
	HookFinished:         func() any { return new(HookResult) },
	FailoverSuppressed:   func() any { return new(Suppression) },
	FailoverNotified:     func() any { return new(Notified) },
	ReplPaused:           func() any { return new(Why) },
	ReplResumed:          func() any { return new(Why) },
	ReplSnapshot:         func() any { return new(Snapshot) },
	ReplConflict:         func() any { return new(Conflict) },
	ReplStatusWritten:    func() any { return new(StatusWritten) },
	ReplBlocked:          func() any { return new(Blocked) },
	ReplRefused:          func() any { return new(TableRefused) },
	LicenseAdded:         func() any { return new(AddedLicense) },
	LicenseRefused:       func() any { return new(LicenseRefusal) },
	LicenseWarning:       func() any { return new(LicenseState) },
	LicenseInvalid:       func() any { return new(LicenseState) },
	LicenseValid:         func() any { return new(LicenseState) },
	InputRejected:        func() any { return new(Rejected) },
	CheckFailed:          func() any { return new(CheckChange) },
	CheckRecovered:       func() any { return new(CheckChange) },
	HealthCritical:       func() any { return new(Criticality) },
	WitnessUnreachable:   func() any { return new(WitnessDown) },
	WitnessReachable:     func() any { return new(Why) },
	AuditChanged:         func() any { return new(AuditChange) },
}

// Types lists every event type Tandem emits.
func Types() []string {
	out := make([]string, 0, len(dataTypes))
	for t := range dataTypes {
		out = append(out, t)
	}
	return out
}

// ErrUnknownType is returned for data of an event type Tandem does not
// emit.
var ErrUnknownType = fmt.Errorf("%w: unknown event type", ErrInvalid)

// DecodeData decodes e's data strictly (size limit, no unknown fields, no
// trailing data) into the type of e.Type, and returns a pointer to it
// (*Activation for tandem.node.activated, …).
func DecodeData(e Envelope) (any, error) {
	mk, ok := dataTypes[e.Type]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownType, e.Type)
	}
	v := mk()
	if err := DecodeStrict(e.Data, MaxSize, v); err != nil {
		return nil, fmt.Errorf("%w: %s data: %w", ErrInvalid, e.Type, err)
	}
	return v, nil
}

// As decodes e's data strictly into T, which must be the data type of
// e.Type.
func As[T any](e Envelope) (T, error) {
	var zero T
	v, err := DecodeData(e)
	if err != nil {
		return zero, err
	}
	p, ok := v.(*T)
	if !ok {
		return zero, fmt.Errorf("%w: %s data is %T, not %T", ErrInvalid, e.Type, v, zero)
	}
	return *p, nil
}

package failover

import (
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/member"
)

// Ready is what the driver must carry out, in the order of its fields.
type Ready struct {
	// PersistEpoch: write Epoch (the node's), Seen (the highest epoch
	// seen anywhere) and Reserve (the epoch of the node's next activation)
	// to disk before anything else — or last, when PersistAfterSend says
	// so.
	PersistEpoch bool
	Epoch        uint64
	Seen         uint64
	Reserve      uint64
	// Heartbeat: send a heartbeat now (periodic, or because something changed).
	Heartbeat bool
	// Messages to the peer's monitor.
	Messages []Message
	// Events to publish.
	Events []Event
	// Hooks to run, in order.
	Hooks []Hook
	// Lease: ask the witness (F14) and step the answer in as a LeaseReply.
	Lease *LeaseRequest
}

// PersistAfterSend reports whether the driver may write r's epochs after
// it has sent and published everything else (and before the hooks), given
// reserved, the Reserve of the last write that reached the disk: when the
// write records this node's own new epoch (Epoch == Seen: an activation,
// or the start) and that epoch is not above the reservation. A crash
// before the write then loses nothing the next run needs: it starts above
// the reservation (Config.Reserved). Every other write (a newer epoch of
// the peer's, an epoch beyond the reservation) comes first.
func (r Ready) PersistAfterSend(reserved uint64) bool {
	return r.PersistEpoch && r.Epoch == r.Seen && r.Epoch <= reserved
}

func (r Ready) empty() bool {
	return !r.PersistEpoch && !r.Heartbeat && len(r.Messages) == 0 && len(r.Events) == 0 && len(r.Hooks) == 0 && r.Lease == nil
}

// MsgKind is the kind of a control message.
type MsgKind string

// Control messages (F8).
const (
	MsgYield MsgKind = "yield"
	MsgTake  MsgKind = "take"
)

// Message is a control message to the peer.
type Message struct {
	Kind  MsgKind
	To    string
	Epoch uint64
	// Reason is why a Take is sent, when health made the node yield
	// (F15): the peer names it in its activation.
	Reason string
}

// Event is an event to publish (F13). Reason says why, in words.
type Event struct {
	Type   string
	Epoch  uint64
	Reason string
	// Data is the event's data: the pkg/event type of Type, with Reason
	// set.
	Data event.Reasoned
}

// Outage reports whether e is an activation after the loss of the active
// peer (F6): an outage event.
func (e Event) Outage() bool {
	a, ok := e.Data.(*event.Activation)
	return ok && a.Outage
}

// Hook is a hook to run for a transition into State (F11).
type Hook struct {
	State State
	Epoch uint64
}

// Status is the node's view of the pair.
type Status struct {
	Self         string
	Role         member.Role
	State        State
	Epoch        uint64
	Seen         uint64 // the highest epoch seen anywhere, this node's included
	Peer         string
	PeerHeard    bool
	PeerRole     member.Role
	PeerState    State
	PeerEpoch    uint64
	PeerSilence  int // ticks since the last heartbeat
	Maintenance  bool
	MaintLeft    int // ticks
	MaintVersion uint64
	Switchover   string // "", "yielding", "asked"
	InSync       bool
	// Health (F15): this node's checks, the peer's as its heartbeat said,
	// and whether both are unhealthy.
	Healthy     bool
	Checks      []CheckStatus
	PeerHealthy bool
	PeerFailing []string
	Critical    bool
	Witness     WitnessStatus // F14
}

// Status returns the node's view of the pair.
func (m *Machine) Status() Status {
	s := Status{
		Self: m.cfg.Self, Role: m.cfg.Role, State: m.state, Epoch: m.epoch, Seen: m.seen,
		Peer: m.peer.name, PeerHeard: m.peer.heard, PeerRole: m.peer.role,
		PeerState: m.peer.state, PeerEpoch: m.peer.epoch, PeerSilence: m.peer.silence,
		Maintenance: m.maint.on, MaintLeft: m.maint.left, MaintVersion: m.maint.version,
		InSync:  m.inSync,
		Healthy: m.healthy(), Checks: m.checkStatuses(), PeerHealthy: !m.peer.unhealthy,
		PeerFailing: m.peer.failing, Critical: m.critical, Witness: m.witnessStatus(),
	}
	if m.sw != nil {
		s.Switchover = map[swKind]string{swYielding: "yielding", swAsked: "asked"}[m.sw.kind]
	}
	return s
}

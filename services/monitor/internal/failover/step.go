package failover

import (
	"fmt"
	"strings"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/member"
	"github.com/tandem-ha/tandem/pkg/reply"
)

// Input is anything Step accepts.
type Input interface{ isInput() }

// Heartbeat is a heartbeat received from the peer (F5).
type Heartbeat struct {
	From  string
	Role  member.Role
	State State
	Epoch uint64
	// Maintenance as the peer knows it; MaintLeft in ticks.
	Maint        bool
	MaintLeft    int
	MaintVersion uint64
	// Unhealthy: the peer's health checks fail (F15), naming them in
	// Failing. A peer without checks, or too old to send its health, is
	// healthy.
	Unhealthy bool
	Failing   []string
	// WitnessDown: the peer cannot reach the witness (F14).
	WitnessDown bool
}

// LinkDown says the link to the peer closed. Gone is set when the peer's
// process is proven dead (its port refused the connection); silence is not
// proof.
type LinkDown struct{ Gone bool }

// LinkUp says the link to the peer is up again.
type LinkUp struct{}

// Stall says the node's own timers ran late (F12).
type Stall struct{ Ticks int }

// Switchover is the admin command (F8). To may be empty: the passive node.
type Switchover struct{ To string }

// SetMaintenance is the admin command (F10). For is in ticks; 0 when off.
type SetMaintenance struct {
	On  bool
	For int
}

// Yield is the master's request to the active standby to hand over (F8).
// Epoch is the standby's epoch as the master knows it.
type Yield struct {
	From  string
	Epoch uint64
}

// Take is the yielding node's request to activate (F8). Epoch is the
// yielding node's epoch; Reason, if set, why it yields (F15).
type Take struct {
	From   string
	Epoch  uint64
	Reason string
}

// SyncState is the replicator's word on whether this node is in sync (F9).
type SyncState struct{ InSync bool }

// HookDone says that a hook of Ready.Hooks has finished, successfully or
// not (a hook is killed at its time limit). The driver reports every hook,
// also when no command is configured for it: a yielding node sends Take
// only once its on_passive hook is done (F8).
type HookDone struct {
	State State
	Epoch uint64
}

func (Heartbeat) isInput()      {}
func (LinkDown) isInput()       {}
func (LinkUp) isInput()         {}
func (Stall) isInput()          {}
func (Switchover) isInput()     {}
func (SetMaintenance) isInput() {}
func (Yield) isInput()          {}
func (Take) isInput()           {}
func (SyncState) isInput()      {}
func (HookDone) isInput()       {}

// Step applies one input. A bad input or a refused command returns an error
// (a *reply.Error for commands) and changes nothing.
func (m *Machine) Step(in Input) error {
	var err error
	switch in := in.(type) {
	case Heartbeat:
		err = m.stepHeartbeat(in)
	case LinkDown:
		m.stepLinkDown(in)
	case LinkUp:
		// Heartbeats decide; a link that is up proves nothing by itself,
		// but the peer should hear this node at once.
		m.linkUp = true
		m.rd.Heartbeat = true
	case Stall:
		m.stepStall(in)
	case Switchover:
		err = m.stepSwitchover(in)
	case SetMaintenance:
		err = m.stepMaintenance(in)
	case Yield:
		err = m.stepYield(in)
	case Take:
		err = m.stepTake(in)
	case SyncState:
		m.inSync = in.InSync
	case HookDone:
		m.stepHookDone(in)
	case CheckResult:
		err = m.stepCheck(in)
	case LeaseReply:
		m.stepLease(in)
	default:
		err = fmt.Errorf("failover: unknown input %T", in)
	}
	if err != nil {
		return err
	}
	m.decide()
	return nil
}

func (m *Machine) checkPeer(from string) error {
	switch {
	case from == m.cfg.Self:
		return fmt.Errorf("message claims to come from this node %q", from)
	case m.peer.name != "" && from != m.peer.name:
		return fmt.Errorf("message from %q, but the peer is %q: a pair has two nodes", from, m.peer.name)
	}
	return nil
}

func (m *Machine) stepHeartbeat(h Heartbeat) error {
	if err := m.checkPeer(h.From); err != nil {
		return err
	}
	switch {
	case h.Role == m.cfg.Role:
		return fmt.Errorf("heartbeat from %q claims role %s, which is this node's role: check both configurations", h.From, h.Role)
	case h.Role != member.Master && h.Role != member.Standby:
		return fmt.Errorf("heartbeat role %q", h.Role)
	case h.State != Starting && h.State != Passive && h.State != Active:
		return fmt.Errorf("heartbeat state %q", h.State)
	case h.MaintLeft < 0:
		return fmt.Errorf("heartbeat maintenance left %d", h.MaintLeft)
	}
	m.peer.name = h.From
	if !m.peer.heard {
		m.peer.heard = true
		m.stableFor = 0
		reason := "heartbeat received"
		if m.peer.everHeard {
			reason = "heartbeat received again"
		}
		m.peer.everHeard = true
		m.emit(event.PeerFound, reason, &event.PeerHeard{Peer: h.From, PeerState: string(h.State), PeerEpoch: h.Epoch})
	}
	m.peer.silence, m.linkDownLeft, m.lostReason = 0, 0, ""
	m.peer.role, m.peer.state, m.peer.epoch = h.Role, h.State, h.Epoch
	m.peer.unhealthy, m.peer.failing = h.Unhealthy, h.Failing
	m.peer.witnessDown, m.peerGone = h.WitnessDown, false
	m.observeEpoch(h.Epoch)
	m.adoptMaintenance(h)
	m.observeSwitchover()
	m.outrank()
	return nil
}

// outrank moves an active node above a newer epoch its peer holds while
// not active: the peer was active in that epoch while the two did not hear
// each other (its link refused, say) and came back passive. Clients follow
// only the newest epoch, so without this they would stay with the peer's
// last notification while this node serves (F1, F7).
func (m *Machine) outrank() {
	if m.state != Active || m.peer.state == Active || m.peer.epoch <= m.epoch {
		return
	}
	was := m.peer.epoch
	m.raiseEpoch()
	m.rd.Heartbeat = true
	m.emit(event.NodeActivated, fmt.Sprintf("F7: %s was active in epoch %d, newer than this node's; %s is not active now, and this node, active, moves above it so that clients follow it", m.peer.name, was, m.peer.name),
		&event.Activation{From: string(Active)})
	m.rd.Hooks = append(m.rd.Hooks, Hook{State: Active, Epoch: m.epoch})
}

// adoptMaintenance takes the peer's maintenance setting when it is newer.
func (m *Machine) adoptMaintenance(h Heartbeat) {
	newer := h.MaintVersion > m.maint.version ||
		(h.MaintVersion == m.maint.version && h.Role == member.Master && h.Maint != m.maint.on)
	if !newer {
		return
	}
	changed := h.Maint != m.maint.on
	m.maint = maintenance{on: h.Maint, left: h.MaintLeft, version: h.MaintVersion}
	if changed {
		m.emit(event.MaintenanceChanged, "set on "+h.From, &event.MaintenanceChange{On: h.Maint, LeftTicks: &h.MaintLeft})
	}
}

// observeSwitchover completes a yield once the peer is active in a newer epoch.
func (m *Machine) observeSwitchover() {
	if m.sw == nil || m.sw.kind != swYielding || m.peer.state != Active || m.peer.epoch <= m.sw.epoch {
		return
	}
	to := m.sw.to
	m.sw = nil
	m.emit(event.SwitchoverCompleted, fmt.Sprintf("%s is active in epoch %d", to, m.peer.epoch), &event.SwitchoverDone{To: to, Epoch: m.peer.epoch})
}

func (m *Machine) stepLinkDown(l LinkDown) {
	m.linkUp = false
	if !m.peer.heard {
		return
	}
	if l.Gone {
		m.peerGone = true
		m.losePeer("link to the peer closed and its process refused the connection")
		return
	}
	if m.linkDownLeft == 0 {
		m.linkDownLeft = m.cfg.linkDownTicks()
	}
}

// stepStall gives the peer one more heartbeat interval: a node whose own
// timers ran late does not trust the silence it measured (F12). It also
// sends a heartbeat at once: its peer has measured the same pause as this
// node's silence, and its next heartbeat, a whole interval later, could come
// after the peer's timeout (a 300 ms freeze at the fast profile, F16).
// Its event is limited (stallReports).
func (m *Machine) stepStall(s Stall) {
	grace := m.cfg.TimeoutTicks - m.cfg.HeartbeatTicks
	if m.peer.heard && m.peer.silence > grace {
		m.peer.silence = grace
	}
	m.rd.Heartbeat = true
	ok, unreported := m.stalls.report(m.now, s.Ticks, m.cfg.StallReportTicks)
	if !ok {
		return
	}
	reason := fmt.Sprintf("F12: timers ran %d ticks late; re-checking the peer before any failover", s.Ticks)
	if unreported > 0 {
		reason += fmt.Sprintf(" (%d earlier stalls not reported)", unreported)
	}
	m.emit(event.NodeStalled, reason, &event.Stall{LateTicks: s.Ticks, Unreported: unreported})
}

func (m *Machine) refuse(code, msg, node string) error {
	m.emit(event.SwitchoverRefused, msg, &event.SwitchoverRefusal{Code: code, Node: node})
	return &reply.Error{Code: code, Message: msg, Node: node}
}

func (m *Machine) stepSwitchover(s Switchover) error {
	if m.cfg.Role != member.Master {
		master := m.peer.name
		return m.refuse(reply.CodeNotMaster, fmt.Sprintf("a switchover is accepted only by the master %s; this is the standby %s", orUnknown(master), m.cfg.Self), master)
	}
	switch {
	case m.sw != nil:
		return m.refuse(reply.CodeBusy, "a switchover is already in progress", "")
	case s.To != "" && s.To != m.cfg.Self && m.peer.name != "" && s.To != m.peer.name:
		// A name that is not the pair's is the first thing to say, also
		// while the peer is down.
		return m.refuse(reply.CodeUnknownNode, fmt.Sprintf("node %q is not in this pair (%s, %s)", s.To, m.cfg.Self, m.peer.name), "")
	case !m.peer.heard:
		return m.refuse(reply.CodeInvalidState, fmt.Sprintf("the peer %s is not reachable: a switchover needs both nodes", orUnknown(m.peer.name)), "")
	}
	m.emit(event.SwitchoverRequested, "requested by an admin", &event.SwitchoverRequest{To: s.To})
	switch {
	case m.state == Active && m.peer.state == Passive && s.To != m.cfg.Self:
		m.yield(m.peer.name, "switchover to "+m.peer.name, "")
	case m.state == Passive && m.peer.state == Active && s.To != m.peer.name:
		m.askPeerToYield()
	default:
		to := s.To
		if to == "" {
			to = "the passive node"
		}
		return m.refuse(reply.CodeInvalidState, fmt.Sprintf("cannot switch over to %s: this node is %s, the peer is %s", to, m.state, m.peer.state), "")
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown: no heartbeat heard yet)"
	}
	return s
}

// yield turns this node passive and hands over to the peer: an active (or
// starting) node first runs on_passive and sends Take once the hook is done
// (stepHookDone); a node already passive sends Take at once. takeReason
// goes with the Take ("" for a switchover an admin asked for).
func (m *Machine) yield(to, reason, takeReason string) {
	m.sw = &switchover{kind: swYielding, to: to, left: m.cfg.ConfirmTicks, epoch: m.epoch, reason: takeReason}
	m.wit.held = false // the peer takes the lease over with the Take (F14)
	if m.state == Passive {
		m.sendTake()
		return
	}
	m.sw.hookPending = true
	m.deactivate(Passive, reason)
}

func (m *Machine) sendTake() {
	m.rd.Messages = append(m.rd.Messages, Message{Kind: MsgTake, To: m.sw.to, Epoch: m.epoch, Reason: m.sw.reason})
}

// stepHookDone sends the Take a yielding node holds back until its
// on_passive hook has finished (F8), and starts the rollback clock.
func (m *Machine) stepHookDone(h HookDone) {
	if m.sw == nil || !m.sw.hookPending || h.State != Passive || h.Epoch != m.sw.epoch {
		return
	}
	m.sw.hookPending = false
	m.sw.left = m.cfg.ConfirmTicks
	m.sendTake()
}

func (m *Machine) askPeerToYield() {
	m.sw = &switchover{kind: swAsked, to: m.cfg.Self, left: m.cfg.ConfirmTicks + m.cfg.HookTicks}
	m.rd.Messages = append(m.rd.Messages, Message{Kind: MsgYield, To: m.peer.name, Epoch: m.peer.epoch})
}

func (m *Machine) stepYield(y Yield) error {
	if err := m.checkPeer(y.From); err != nil {
		return err
	}
	switch {
	case m.cfg.Role == member.Master:
		return fmt.Errorf("yield from %q: only the master asks, and this node is the master", y.From)
	case m.state != Active || y.Epoch != m.epoch:
		return fmt.Errorf("stale yield from %q (epoch %d; this node is %s in epoch %d)", y.From, y.Epoch, m.state, m.epoch)
	case m.sw != nil:
		return fmt.Errorf("yield from %q while a switchover is in progress", y.From)
	}
	m.emit(event.SwitchoverRequested, "the master asked this node to hand over", &event.SwitchoverRequest{To: y.From})
	m.yield(y.From, "switchover to "+y.From, "")
	return nil
}

func (m *Machine) stepTake(t Take) error {
	if err := m.checkPeer(t.From); err != nil {
		return err
	}
	if t.Epoch < m.seen && !(m.peer.heard && t.Epoch == m.peer.epoch) {
		return fmt.Errorf("stale take from %q (epoch %d, newest seen %d)", t.From, t.Epoch, m.seen)
	}
	if m.state == Active {
		if t.Epoch < m.epoch {
			return nil // a late copy of a handover this node has already carried out
		}
		return fmt.Errorf("take from %q while this node is already active", t.From)
	}
	m.observeEpoch(t.Epoch)
	m.sw = nil
	reason := "F8: switchover from " + t.From
	switch {
	case strings.HasPrefix(t.Reason, "F15: "):
		reason = t.Reason + "; handover from " + t.From
	case m.peer.heard && m.peer.unhealthy:
		reason = "F15: " + m.peerUnhealthyReason() + "; handover from " + t.From
	}
	ep := t.Epoch
	m.wit.over = &ep // the witness hands the peer's lease over (F14)
	m.activate(reason)
	m.wit.over = nil
	if m.state != Active {
		m.wit.take = &t // activates when the witness grants the lease
		return nil
	}
	m.emit(event.SwitchoverCompleted, fmt.Sprintf("%s is active in epoch %d", m.cfg.Self, m.epoch), &event.SwitchoverDone{To: m.cfg.Self, Epoch: m.epoch})
	return nil
}

func (m *Machine) stepMaintenance(s SetMaintenance) error {
	if s.On && s.For <= 0 {
		return &reply.Error{Code: reply.CodeBadRequest, Message: "maintenance needs a positive duration"}
	}
	if s.On == m.maint.on && !s.On {
		return nil
	}
	m.maint = maintenance{on: s.On, left: s.For, version: m.maint.version + 1}
	m.rd.Heartbeat = true
	reason := "switched off by an admin"
	if s.On {
		reason = "switched on by an admin"
	}
	m.emit(event.MaintenanceChanged, reason, &event.MaintenanceChange{On: s.On, LeftTicks: &s.For})
	return nil
}

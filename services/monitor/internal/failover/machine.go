// Package failover is the pair's failover logic (SPEC §3, F1–F13) as a pure
// state machine, written the way etcd's raft is: no goroutines, no clock, no
// NATS. Time arrives as Tick, everything else through Step; what the node
// must do comes back from Ready as one batch, which the driver carries out in
// this order:
//
//  1. persist Ready.Epoch and Ready.Seen when Ready.PersistEpoch is set
//     (fsync) — an epoch is never used, nor a peer's epoch acted on, before
//     it is on disk;
//  2. send the heartbeat and the control messages to the peer;
//  3. publish the events;
//  4. start the hooks;
//
// and then calls Advance. Durations are counted in ticks; the driver converts
// the configured durations once (Config).
//
// # Epochs
//
// Every activation raises the epoch above every epoch the node has seen. The
// master activates only into even epochs and the standby only into odd ones,
// so two nodes that activate while cut off from each other can never share an
// epoch: "never two actives in one epoch" holds by construction.
//
// The node persists its own epoch and the highest epoch it has seen from its
// peer (heartbeats and Take carry it), and starts from both (F1): a node that
// heard its peer active in epoch 6 activates above 6 even after both were
// stopped and it starts alone (a whole-pair restart in the wrong order), so
// the pair's epoch never goes back while the nodes have heard each other.
// Only an epoch the node never heard (the peer moved on while this node was
// down, then stopped) can still be passed; once they meet again, the next
// activation goes above both (F7 when both are active).
//
// # Reserved epochs
//
// The write of a new epoch takes a disk flush (tens of milliseconds on a
// busy disk), and a failover must not wait for one. So every write also
// reserves the epoch of the node's next activation (Ready.Reserve: the next
// of its parity above everything seen), and an activation into an epoch
// already reserved on disk is announced first and recorded after
// (Ready.PersistAfterSend). What a crash in between could lose is covered
// by the reservation: a node starts above the epoch reserved by its
// previous run (Config.Reserved), as it may have announced it. So epochs
// only ever go up, as before; a passive node restarted after a crash skips
// the epoch it had reserved (the driver releases it at a clean stop).
//
// # Switchover (F8)
//
// Only the master accepts the command. The active node yields first: it turns
// passive and sends Take to the other, which activates in a new epoch. The
// yielding node waits ConfirmTicks to hear the other active in a higher
// epoch; if it does not, it takes back over (rollback). When the standby is
// the active node, the master first sends it Yield.
package failover

import (
	"errors"
	"fmt"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/member"
)

// State is a node's run-time state (pkg/member).
type State = member.State

// States.
const (
	Starting = member.Starting
	Passive  = member.Passive
	Active   = member.Active
)

// Config is the machine's configuration, in ticks.
type Config struct {
	Self string      // this node's name
	Peer string      // the peer's name, "" to learn it from the first heartbeat
	Role member.Role // master or standby
	// Epoch is the last epoch read from disk (F1).
	Epoch uint64
	// Seen is the highest epoch seen from the peer, read from disk with
	// Epoch (F1); 0 when none was saved. An activation goes above both.
	Seen uint64
	// Reserved is the epoch reserved on disk for this node's next
	// activation (Ready.Reserve, read with Epoch); 0 when none was saved.
	// The node may have announced it and stopped before it recorded it:
	// its next activation goes above it too (see "Reserved epochs").
	Reserved uint64

	HeartbeatTicks int // between two heartbeats (F5)
	TimeoutTicks   int // silence after which the peer is lost (F6)
	DiscoveryTicks int // the start-up window (F1)
	SettleTicks    int // stable link before a collision is resolved (F7), and before automatic failback (F9)
	// LinkDownTicks is how long a closed link, its peer not proven dead,
	// may carry no heartbeat before the peer is lost (F6); 0 means
	// HeartbeatTicks. The driver makes it long enough for the link to be
	// redialled: a link closed by the peer's server while this node was
	// frozen is back only then.
	LinkDownTicks int
	ConfirmTicks  int // how long a yielding node waits for the other to activate (F8)

	FailbackAutomatic bool // F9
	// WaitForSync: the node is out of sync until the replicator says
	// otherwise (SyncState); else it counts as in sync (no database).
	WaitForSync bool
	// HookTicks is the hooks' time limit: a master that asked the active
	// standby to yield waits this much longer for its Take, which comes
	// only once the standby's on_passive hook has finished (F8).
	HookTicks int
	// HookAckTimeoutTicks bounds how long a yielding node waits for its
	// on_passive hook to finish before it sends Take (F8); 0: no bound
	// (the driver reports every hook, killed at hooks.timeout).
	Checks                []CheckConfig // F15
	TakeoverWhenUnhealthy bool          // F15: an unhealthy node may take over from a lost peer

	// The witness (F14, witness.go): Witness is set when one is
	// configured; LeaseTicks is the lease's term at the witness.
	Witness         bool
	WitnessRequired bool
	LeaseTicks      int

	// StallReportTicks limits the tandem.node.stalled events (F12) to one
	// per this many ticks, the late ones included; 0 reports every stall.
	// Every stall re-checks the peer; only its event is limited.
	StallReportTicks int
}

// Validate checks the cross-field rules.
func (c Config) Validate() error {
	switch {
	case c.Self == "":
		return errors.New("failover: no node name")
	case c.Role != member.Master && c.Role != member.Standby:
		return fmt.Errorf("failover: role %q", c.Role)
	case c.HeartbeatTicks < 1:
		return errors.New("failover: heartbeat interval below one tick")
	case c.TimeoutTicks < 2*c.HeartbeatTicks:
		return errors.New("failover: timeout must be at least two heartbeat intervals")
	case c.LinkDownTicks < 0:
		return errors.New("failover: negative link-down wait")
	case c.DiscoveryTicks < 1, c.SettleTicks < 1, c.ConfirmTicks < 1:
		return errors.New("failover: discovery, settle and confirm must be at least one tick")
	case c.HookTicks < 0:
		return errors.New("failover: negative hook time limit")
	case c.StallReportTicks < 0:
		return errors.New("failover: negative stall report interval")
	case c.Witness && c.LeaseTicks < 2*c.HeartbeatTicks:
		return errors.New("failover: the witness lease must last at least two heartbeat intervals")
	}
	return validateChecks(c.Checks)
}

func (c Config) linkDownTicks() int {
	if c.LinkDownTicks > 0 {
		return c.LinkDownTicks
	}
	return c.HeartbeatTicks
}

// Machine is the failover state machine of one node. It is not safe for
// concurrent use: one goroutine (the driver's loop) owns it.
type Machine struct {
	cfg   Config
	state State
	epoch uint64 // the epoch this node is in
	seen  uint64 // the highest epoch seen anywhere
	spent uint64 // Config.Reserved: an epoch a previous run may have announced unrecorded
	now   int    // ticks since start

	peer peerView

	discoveryLeft int
	linkUp        bool // the link to the peer is up, as last reported
	linkDownLeft  int  // >0: the link closed this many ticks ago and no heartbeat came since
	collision     int  // ticks both nodes have been seen active over a stable link
	stableFor     int  // ticks the peer has been heard without a loss

	maint      maintenance
	sw         *switchover
	inSync     bool   // the replicator reports this node in sync (F9 automatic failback)
	lostReason string // why the peer was lost
	suppressed string // why a failover was last suppressed since the loss ("" none)

	checks   []checkState // F15, in configuration order
	critical bool         // both nodes unhealthy, as last reported

	wit      witnessView // F14
	peerGone bool        // the peer's process is proven dead since it was last heard

	stalls stallReports // F12's events, limited

	rd Ready
}

// stallReports limits the tandem.node.stalled events (F12): on a busy host
// at the fast profile timers run late many times a second, and an event for
// each would flood the audit stream. The first stall is reported, then at
// most one per Config.StallReportTicks; a report counts the stalls that were
// not reported since the previous one. The time since the last report
// counts the late ticks too: the machine's own clock does not catch them up
// (onTick in the driver), and a host stalling all the time would otherwise
// stretch the window.
type stallReports struct {
	sent       bool // a stall was reported
	at         int  // m.now at the last report
	late       int  // late ticks since the last report
	unreported int  // stalls since the last report, not reported
}

// report counts a stall late by ticks at now and says whether to report it
// as an event, and how many stalls before it were not.
func (r *stallReports) report(now, ticks, every int) (bool, int) {
	r.late += ticks
	if r.sent && now-r.at+r.late < every {
		r.unreported++
		return false, 0
	}
	n := r.unreported
	*r = stallReports{sent: true, at: now}
	return true, n
}

type peerView struct {
	name      string
	heard     bool // heard since the last loss
	everHeard bool
	silence   int // ticks since the last heartbeat
	role      member.Role
	state     State
	epoch     uint64
	unhealthy bool     // the peer's heartbeat says it is unhealthy (F15)
	failing   []string // and which of its checks fail
	// witnessDown: the peer's heartbeat says it cannot reach the witness (F14)
	witnessDown bool
}

type maintenance struct {
	on      bool
	left    int    // ticks until it expires
	version uint64 // raised on every change; the higher version wins between nodes
}

// switchover is a switchover this node takes part in.
type switchover struct {
	kind  swKind
	to    string
	left  int    // ticks until rollback
	epoch uint64 // this node's epoch when it yielded
	// hookPending: the yielding node waits for its on_passive hook to
	// finish (HookDone) before it sends Take; the rollback clock starts
	// then (F8: the protected service never runs on both nodes).
	hookPending bool
	reason      string // sent with Take: why health made this node yield (F15)
}

type swKind int

const (
	swYielding swKind = iota + 1 // this node turned passive and sent Take
	swAsked                      // this node (the master) asked the active standby to yield
)

// New returns a machine in state Starting.
func New(c Config) (*Machine, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	m := &Machine{
		cfg:           c,
		state:         Starting,
		epoch:         c.Epoch,
		seen:          max(c.Epoch, c.Seen),
		spent:         c.Reserved,
		discoveryLeft: c.DiscoveryTicks,
		inSync:        !c.WaitForSync,
		peer:          peerView{name: c.Peer, state: Starting},
		checks:        newChecks(c.Checks),
	}
	m.emit(event.NodeStarted, "node started; listening for the peer", &event.Why{})
	m.rd.Heartbeat = true
	m.persist() // the reservation of this run's first activation
	return m, nil
}

// State is the node's run-time state.
func (m *Machine) State() State { return m.state }

// Epoch is the node's epoch.
func (m *Machine) Epoch() uint64 { return m.epoch }

// Ready returns what the driver must do now (see the package doc for the
// order). It is empty when there is nothing to do.
func (m *Machine) Ready() Ready { return m.rd }

// HasReady reports whether Ready has anything to carry out.
func (m *Machine) HasReady() bool { return !m.rd.empty() }

// Advance tells the machine that the last Ready was carried out.
func (m *Machine) Advance() { m.rd = Ready{} }

// Tick moves time forward by one tick.
func (m *Machine) Tick() {
	m.now++
	m.tickPeer()
	m.tickMaintenance()
	m.tickSwitchover()
	m.tickWitness()
	if m.state == Active && m.peer.heard && m.peer.state == Active {
		m.collision++
	} else {
		m.collision = 0
	}
	if m.now%m.cfg.HeartbeatTicks == 0 {
		m.rd.Heartbeat = true
	}
	m.decide()
}

// Quiet is how many of the next ticks are certain to do nothing but count,
// if no input comes first: no heartbeat due, no timeout, no decision. A
// driver may sleep through them and apply them (Tick, that many times) when
// it wakes, instead of waking for each; 0 means the next tick may act. It is
// exact only in the steady states — active with a passive or absent peer,
// passive beside an active peer — and 0 everywhere else, so that the
// starting, switchover, collision and failback rules keep ticking one by one.
func (m *Machine) Quiet() int {
	if m.HasReady() || m.sw != nil || m.state == Starting || m.linkDownLeft > 0 {
		return 0
	}
	switch m.state {
	case Active:
		if m.peer.heard && m.peer.state == Active {
			return 0 // counting towards the collision's resolution (F7)
		}
	case Passive:
		if !m.peer.heard {
			return 0 // the next decision activates or reports the suppression
		}
		if m.cfg.Role == member.Master && (m.peer.state != Active || m.cfg.FailbackAutomatic) {
			return 0 // F4 activation, or counting towards the failback (F9)
		}
	}
	// The heartbeat goes out on the tick that makes now a multiple of
	// HeartbeatTicks.
	q := m.cfg.HeartbeatTicks - 1 - m.now%m.cfg.HeartbeatTicks
	if m.peer.heard {
		// The peer is lost on the tick its silence exceeds the timeout.
		q = min(q, m.cfg.TimeoutTicks-m.peer.silence)
	}
	if m.maint.on {
		q = min(q, m.maint.left-1) // maintenance expires on the tick left reaches 0
	}
	return max(q, 0)
}

func (m *Machine) tickPeer() {
	if m.state == Starting && m.discoveryLeft > 0 {
		m.discoveryLeft--
	}
	if !m.peer.heard {
		return
	}
	m.peer.silence++
	m.stableFor++
	if m.linkDownLeft > 0 {
		m.linkDownLeft--
		if m.linkDownLeft == 0 {
			m.losePeer(fmt.Sprintf("link to the peer closed and no heartbeat for %d ticks", m.cfg.linkDownTicks()))
			return
		}
	}
	// Strictly more than the timeout: a tick that lands just after a
	// heartbeat must not make the silence look one tick longer than it was.
	if m.peer.silence > m.cfg.TimeoutTicks {
		m.losePeer(fmt.Sprintf("no heartbeat within the timeout (%d ticks)", m.cfg.TimeoutTicks))
	}
}

func (m *Machine) tickMaintenance() {
	if !m.maint.on {
		return
	}
	m.maint.left--
	if m.maint.left <= 0 {
		m.maint = maintenance{version: m.maint.version + 1}
		m.rd.Heartbeat = true
		m.emit(event.MaintenanceChanged, "maintenance expired", &event.MaintenanceChange{On: false})
	}
}

func (m *Machine) tickSwitchover() {
	if m.sw == nil || m.sw.hookPending {
		return
	}
	m.sw.left--
	if m.sw.left > 0 {
		return
	}
	sw := m.sw
	m.sw = nil
	switch sw.kind {
	case swYielding:
		m.rollback(sw, fmt.Sprintf("%s did not confirm in time; taking back over", sw.to))
	case swAsked:
		m.stableFor = 0 // automatic failback waits another settle delay before it asks again
		m.emit(event.SwitchoverRolledBack, fmt.Sprintf("%s did not yield in time; nothing changed", m.peer.name), &event.SwitchoverRollback{To: sw.to})
	}
}

// rollback ends a yield that was not confirmed: the node takes back over.
func (m *Machine) rollback(sw *switchover, reason string) {
	m.sw = nil
	m.emit(event.SwitchoverRolledBack, reason, &event.SwitchoverRollback{To: sw.to})
	m.activate("F8: switchover rolled back")
}

// losePeer marks the peer lost. Whether the node activates is up to decide.
func (m *Machine) losePeer(reason string) {
	if !m.peer.heard {
		return
	}
	m.peer.heard = false
	m.peer.state = ""
	m.linkDownLeft = 0
	m.collision = 0
	m.stableFor = 0
	m.emit(event.PeerLost, reason, &event.PeerMissing{Peer: m.peer.name})
	m.lostReason = reason
	m.suppressed = ""
}

// decide applies the rules that depend on what the node knows now.
func (m *Machine) decide() {
	m.observeCritical()
	switch m.state {
	case Starting:
		m.decideStarting()
	case Passive:
		m.decidePassive()
	case Active:
		m.decideActive()
	}
}

func (m *Machine) decideStarting() {
	if m.peer.heard && m.peer.state == Active {
		m.deactivate(Passive, "F3: the peer is active")
		return
	}
	if m.discoveryLeft > 0 {
		return
	}
	// A link that is up but carries no heartbeat yet is a peer that is
	// starting slowly (or starved), not an absent one: wait for it up to
	// the heartbeat timeout before activating alone.
	if !m.peer.everHeard && m.linkUp && m.now <= m.cfg.TimeoutTicks {
		return
	}
	if why := m.unhealthyNoTakeover(); why != "" && !m.peer.heard {
		m.deactivate(Passive, why) // decidePassive activates once it is healthy
		return
	}
	switch {
	case !m.peer.heard && m.peer.everHeard:
		m.activate("F2: the peer was lost during discovery: " + m.lostReason)
	case !m.peer.heard && m.linkUp:
		m.activate("F2: the link to the peer is up, but no heartbeat came within the timeout")
	case !m.peer.heard:
		m.activate("F2: no peer heard during discovery")
	case m.cfg.Role == member.Master && m.cedeToPeer():
		m.handOver()
	case m.cfg.Role == member.Master:
		m.activate(fmt.Sprintf("F4: the peer is %s; the master activates", m.peer.state))
	default:
		m.deactivate(Passive, fmt.Sprintf("F4: the peer is %s; the standby stays passive", m.peer.state))
	}
}

func (m *Machine) decidePassive() {
	if m.sw != nil && m.sw.kind == swYielding {
		if !m.peer.heard {
			m.rollback(m.sw, fmt.Sprintf("%s was lost before it confirmed; taking back over", m.sw.to))
		}
		return
	}
	switch {
	case !m.peer.heard:
		if why := m.noTakeover(); why != "" {
			if m.suppressed != why {
				m.suppressed = why
				m.emit(event.FailoverSuppressed, why, &event.Suppression{LostPeer: &event.LostPeer{Peer: m.peer.name, Lost: m.lostReason}})
			}
			return
		}
		if !m.peer.everHeard {
			m.activate("F2: no peer heard; this node is healthy again (F15)")
			return
		}
		m.failOver("F6: outage: " + m.lostReason)
	case m.peer.state != Active && m.cfg.Role == member.Master && m.sw != nil && m.sw.kind == swAsked:
		// The standby yielded: its Take comes once its on_passive hook
		// has finished (F8); activating now could run the service twice.
	case m.peer.state != Active && m.cfg.Role == member.Master && m.cedeToPeer():
		if m.sw == nil {
			m.handOver()
		}
	case m.peer.state != Active && m.cfg.Role == member.Master:
		m.activate(fmt.Sprintf("F4: the peer is %s; the master activates", m.peer.state))
	case m.peer.state == Passive && m.takeOverFromCutMaster():
		m.activate("F14: the master cannot reach the witness; the standby takes over")
	case m.peer.state == Active && m.cfg.FailbackAutomatic && m.cfg.Role == member.Master:
		m.maybeFailback()
	}
}

// noTakeover is why this passive node must not activate without its peer,
// or "" when it may.
func (m *Machine) noTakeover() string {
	if m.maint.on {
		return "F10: maintenance mode is on: no automatic failover"
	}
	return m.unhealthyNoTakeover()
}

func (m *Machine) maybeFailback() {
	if m.sw != nil || m.maint.on || !m.inSync || !m.healthy() || m.stableFor < m.cfg.SettleTicks {
		return
	}
	m.emit(event.SwitchoverRequested, "F9: automatic failback to the master", &event.SwitchoverRequest{To: m.cfg.Self, Automatic: true})
	m.askPeerToYield()
}

func (m *Machine) decideActive() {
	if m.keepLease() {
		return
	}
	if m.sw == nil && m.peer.state == Passive && m.cedeToPeer() {
		m.handOver()
		return
	}
	if m.collision < m.cfg.SettleTicks {
		return
	}
	if m.cfg.Role == member.Master {
		old := m.epoch
		m.collision = 0
		m.raiseEpoch()
		m.emit(event.CollisionResolved, fmt.Sprintf("F7: both active (own epoch %d, peer epoch %d); the master stays active", old, m.peer.epoch),
			&event.Collision{Peer: m.peer.name, PeerEpoch: m.peer.epoch, PreviousEpoch: old})
		m.rd.Hooks = append(m.rd.Hooks, Hook{State: Active, Epoch: m.epoch})
		return
	}
	if m.peer.epoch > m.epoch {
		m.deactivate(Passive, fmt.Sprintf("F7: both active; the master is active in epoch %d", m.peer.epoch))
	}
}

// activate makes the node active in a new epoch, once the witness lets it
// (F14): until then it asks the witness and stays as it is.
func (m *Machine) activate(reason string) { m.activateFor(reason, false) }

// failOver activates the node after the loss of the active peer (F6): the
// activation is an outage event.
func (m *Machine) failOver(reason string) { m.activateFor(reason, true) }

func (m *Machine) activateFor(reason string, outage bool) {
	if !m.mayActivate() {
		return
	}
	old := m.state
	m.state = Active
	m.collision = 0
	m.raiseEpoch()
	m.rd.Heartbeat = true
	m.emit(event.NodeActivated, reason, &event.Activation{From: string(old), Outage: outage})
	m.rd.Hooks = append(m.rd.Hooks, Hook{State: Active, Epoch: m.epoch})
}

func (m *Machine) deactivate(to State, reason string) {
	old := m.state
	m.state = to
	m.collision = 0
	m.wit.held = false // a passive node's lease may be handed over (F14)
	m.rd.Heartbeat = true
	m.persist() // the reservation of its next activation
	m.emit(event.NodeDeactivated, reason, &event.Deactivation{From: string(old)})
	m.rd.Hooks = append(m.rd.Hooks, Hook{State: Passive, Epoch: m.epoch})
}

// raiseEpoch moves the node to the next epoch of its parity above all seen.
func (m *Machine) raiseEpoch() {
	e := m.nextEpoch()
	m.epoch, m.seen = e, e
	m.persist()
}

// observeEpoch notes an epoch the peer is in; a higher one than any seen is
// persisted before anything else is done (F1).
func (m *Machine) observeEpoch(e uint64) {
	if e > m.seen {
		m.seen = e
		m.persist()
	}
}

// persist asks the driver to write the node's epoch, the highest epoch
// seen and the reservation of its next activation to disk. An active node
// reserves nothing beyond its own epoch (its next activation comes after
// it turned passive, which reserves again): a restart after its epoch was
// recorded then skips nothing.
func (m *Machine) persist() {
	reserve := m.nextEpoch()
	if m.state == Active {
		reserve = m.epoch
	}
	m.rd.PersistEpoch, m.rd.Epoch, m.rd.Seen, m.rd.Reserve = true, m.epoch, m.seen, reserve
}

func (m *Machine) emit(typ, reason string, data event.Reasoned) {
	data.SetReason(reason)
	m.rd.Events = append(m.rd.Events, Event{Type: typ, Epoch: m.epoch, Reason: reason, Data: data})
}

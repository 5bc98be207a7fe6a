package failover

import (
	"fmt"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/member"
	"github.com/tandem-ha/tandem/services/monitor/witness/lease"
)

// The witness (F14). With Config.Witness set, a node activates only holding
// the lease of the pair's witness, and an active node renews it every
// heartbeat interval. The machine asks through Ready.Lease; the driver
// carries the request to the witness and steps the answer in as a
// LeaseReply (Unreachable when the witness did not answer in time).
//
// The node counts its lease from the tick it asked, one tick short of the
// witness's term, so that it holds the lease only while the witness does.
//
// The rules:
//
//   - every activation waits for the lease. A peer that handed over (Take)
//     or whose process is proven dead (connection refused) is taken over at
//     once (lease.Request.Over); a peer that fell silent only once its
//     lease has lapsed at the witness;
//   - an active node whose renewal is refused steps down at once: the
//     witness gave the lease to the peer;
//   - an active node whose lease lapses steps down (before the witness lets
//     the peer take it) when it hears neither the peer nor the witness, when
//     the peer says it reaches the witness, when the peer is active, and
//     always with witness.required;
//   - witness unreachable, witness.required false: the node falls back to
//     the seed behaviour (activates without the lease, stays active beside a
//     peer that cannot reach the witness either) and says so — except a
//     node that stepped down for losing both peer and witness, which waits
//     until it hears the witness again or the peer is proven dead, so that
//     the two sides of a cut do not both come back;
//   - witness unreachable, witness.required true: no node activates.
//
// So, with witness.required, two nodes are never active at once; without
// it, never while both reach the witness.

// LeaseRequest is a request for the witness (Ready.Lease). Seq matches the
// reply to it.
type LeaseRequest struct {
	Seq uint64
	lease.Request
}

// LeaseReply is the witness's answer to the request Seq, or Unreachable
// when it did not answer (the driver's deadline passed, or no connection).
type LeaseReply struct {
	Seq         uint64
	Unreachable bool
	lease.Reply
}

func (LeaseReply) isInput() {}

type witnessView struct {
	pending bool // a request is out
	renewal bool // and it renews the lease of an active node
	probe   bool // or only asks whether the witness answers
	seq     uint64
	sentAt  int // the tick of the last request
	nextAsk int // no new request before this tick (after a refusal or a failure)
	until   int // the lease is held while now < until
	held    bool
	down    bool // the last request failed: the witness is unreachable
	// downAt is the tick the witness was first found unreachable, in the
	// current run of failures.
	downAt int
	// stepped: stepped down for losing both peer and witness; no fallback
	// activation until the witness answers again or the peer is proven dead.
	stepped  bool
	holder   string // the holder named in the last refusal
	holderEp uint64
	over     *uint64 // while activating on a Take: the epoch of the peer's handover
	take     *Take   // a Take waiting for the lease
}

// holdsLease reports whether this node holds the witness's lease now.
func (m *Machine) holdsLease() bool { return m.wit.held && m.now < m.wit.until }

// mayActivate reports whether the witness lets this node activate now, and
// asks it when it must.
func (m *Machine) mayActivate() bool {
	if !m.cfg.Witness || m.holdsLease() {
		return true
	}
	if m.wit.down && !m.cfg.WitnessRequired && m.mayFallBack() {
		return true // seed behaviour; the unreachable witness was reported
	}
	m.askWitness(m.nextEpoch(), false)
	return false
}

// mayFallBack reports whether a node that cannot reach the witness may act
// as the seeds describe: when the peer is proven dead, when the peer is
// heard and cannot reach the witness either, and when the peer is lost —
// unless this node stepped down for losing both (the other side of the cut
// may hold the lease), and not before the witness has been unreachable for
// a lease term: the peer may hold a lease the witness granted just before
// it went, and a witness that restarts within a term refuses this node
// while the peer renews.
func (m *Machine) mayFallBack() bool {
	switch {
	case m.peerGone:
		return true
	case m.peer.heard:
		return m.peer.witnessDown
	default:
		return !m.wit.stepped && m.now-m.wit.downAt >= m.cfg.LeaseTicks
	}
}

// askWitness sends a lease request for epoch, unless one is out or the last
// one failed or was refused less than a heartbeat interval ago.
func (m *Machine) askWitness(epoch uint64, probe bool) {
	if m.wit.pending || m.now < m.wit.nextAsk {
		return
	}
	m.wit.seq++
	m.wit.pending, m.wit.sentAt, m.wit.renewal, m.wit.probe = true, m.now, m.state == Active, probe
	r := lease.Request{Node: m.cfg.Self, Epoch: epoch, Probe: probe}
	switch {
	case probe:
	case m.state == Active:
		r.Renew = true
	case m.wit.over != nil:
		r.Over, r.Peer, r.PeerEpoch = true, m.peer.name, *m.wit.over
	case m.peerGone:
		r.Over, r.Peer, r.PeerEpoch = true, m.peer.name, m.peer.epoch
	}
	m.rd.Lease = &LeaseRequest{Seq: m.wit.seq, Request: r}
}

// nextEpoch is the epoch raiseEpoch would move to.
func (m *Machine) nextEpoch() uint64 {
	e := max(m.seen, m.spent) + 1
	if (e%2 == 0) != (m.cfg.Role == member.Master) {
		e++
	}
	return e
}

// tickWitness renews the lease of an active node every heartbeat interval
// and gives up on a request the driver never answered.
func (m *Machine) tickWitness() {
	if !m.cfg.Witness {
		return
	}
	if m.wit.pending && m.now-m.wit.sentAt > m.cfg.LeaseTicks {
		m.stepLease(LeaseReply{Seq: m.wit.seq, Unreachable: true})
	}
	if m.now%m.cfg.HeartbeatTicks != 0 {
		return
	}
	if m.state == Active {
		m.askWitness(m.epoch, false)
	} else {
		m.askWitness(0, true) // so that its heartbeat says whether it reaches the witness
	}
}

func (m *Machine) stepLease(r LeaseReply) {
	if !m.cfg.Witness || !m.wit.pending || r.Seq != m.wit.seq {
		return // late, or never asked: the lease counts from the request that is out
	}
	m.wit.pending = false
	if r.Unreachable {
		m.wit.nextAsk = m.now + m.cfg.HeartbeatTicks
		if !m.wit.down {
			m.wit.down, m.wit.downAt = true, m.now
			m.rd.Heartbeat = true
			reason := "F14: the witness did not answer; falling back to the seed behaviour (both nodes may be active during a cut)"
			if m.cfg.WitnessRequired {
				reason = "F14: the witness did not answer; witness.required: no node activates without it"
			}
			m.emit(event.WitnessUnreachable, reason, &event.WitnessDown{Required: m.cfg.WitnessRequired})
		}
		return
	}
	if m.wit.down {
		m.wit.down = false
		m.rd.Heartbeat = true
		m.emit(event.WitnessReachable, "F14: the witness answers again", &event.Why{})
	}
	m.wit.stepped = false
	if m.wit.probe {
		return
	}
	if r.Granted {
		if m.wit.renewal && m.state != Active {
			return // renewed for a node that has stepped down since: not its to use
		}
		m.wit.held, m.wit.until = true, m.wit.sentAt+m.cfg.LeaseTicks-1
		if t := m.wit.take; t != nil {
			m.wit.take = nil
			_ = m.stepTake(*t) // refused only when stale by now
		}
		return
	}
	m.wit.held = false
	m.wit.take = nil
	m.wit.nextAsk = m.now + m.cfg.HeartbeatTicks
	if m.state == Active {
		m.deactivate(Passive, fmt.Sprintf("F14: the witness holds the lease for %s in epoch %d", r.Holder, r.Epoch))
		return
	}
	if r.Holder != m.wit.holder || r.Epoch != m.wit.holderEp {
		m.wit.holder, m.wit.holderEp = r.Holder, r.Epoch
		reason := fmt.Sprintf("F14: the witness holds the lease for %s in epoch %d; waiting for it to lapse", r.Holder, r.Epoch)
		if r.Holder == "" {
			reason = "F14: the witness does not know who holds the lease (it restarted without its leases); waiting one lease term for the active node to renew it"
		}
		m.emit(event.FailoverSuppressed, reason,
			&event.Suppression{WitnessLease: &event.WitnessLease{Holder: r.Holder, HolderEpoch: r.Epoch, LeftTicks: r.Left}})
	}
}

// keepLease steps an active node down when it must not stay active
// without the lease (see the package doc of the witness rules). It reports
// whether it did.
func (m *Machine) keepLease() bool {
	if !m.cfg.Witness || m.holdsLease() {
		return false
	}
	var why string
	switch {
	case m.cfg.WitnessRequired && (m.wit.held || !m.wit.down):
		why = "F14: the lease at the witness lapsed, and witness.required"
	case !m.wit.held:
		return false // active in the seed fallback, never held it
	case m.peer.heard && m.peer.state == Active:
		why = "F14: the lease lapsed and the peer is active"
	case !m.wit.down:
		why = "F14: the witness did not renew the lease in time"
	case m.peer.heard && !m.peer.witnessDown && m.now >= m.wit.until+m.cfg.HeartbeatTicks:
		// One interval of grace: the peer's heartbeat has said by then
		// whether the witness answers it.
		why = "F14: the lease lapsed; the peer reaches the witness and this node does not"
	case m.peer.heard, m.peerGone:
		return false // seed behaviour: the peer cannot reach the witness either, or is dead
	default:
		why = "F14: lost both the peer and the witness; stepping down before the lease runs out"
	}
	m.wit.stepped = true
	m.wit.held = false
	m.deactivate(Passive, why)
	return true
}

// WitnessStatus is the node's view of the witness.
type WitnessStatus struct {
	Configured bool
	Required   bool
	Reachable  bool // the last request was answered
	Holds      bool // this node holds the lease
	LeaseLeft  int  // ticks, while it holds it
}

func (m *Machine) witnessStatus() WitnessStatus {
	s := WitnessStatus{Configured: m.cfg.Witness, Required: m.cfg.WitnessRequired, Reachable: !m.wit.down, Holds: m.holdsLease()}
	if s.Holds {
		s.LeaseLeft = m.wit.until - m.now
	}
	return s
}

// takeOverFromCutMaster reports whether this passive standby should take
// the active role from a passive master that cannot reach the witness
// while this node can (the master stepped down for it, or cannot activate).
func (m *Machine) takeOverFromCutMaster() bool {
	return m.cfg.Witness && m.cfg.Role == member.Standby && m.sw == nil &&
		m.peer.heard && m.peer.witnessDown && !m.wit.down
}

package failover

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/member"
	"github.com/tandem-ha/tandem/services/monitor/witness/lease"
)

// The explorer drives two real machines (this package's Machine, no model of
// it) through every interleaving of ticks, message deliveries, drops,
// duplicates and reorderings, link cuts (both ways or one way) and heals,
// kills (the peer seeing the link close, or silence) and restarts from the
// persisted epoch, and admin switchovers, breadth first up to a depth, with
// a visited set of canonical state hashes. After every step it checks the
// safety invariants; from every state it reaches it checks bounded liveness:
// once the faults stop (link healed, both processes running, messages
// delivered at once), exactly one node is active within a bounded number of
// ticks, and stays so.
//
// The depth is chosen so that `make test` (with -race, on two cores) runs it
// in well under two minutes; TANDEM_SOAK=1 (`make soak`) explores deeper.

// xmsg is a message in flight on the link.
type xmsg struct{ in Input }

// xnode is one node of the explored world.
type xnode struct {
	m       *Machine // nil while the process is down
	disk    uint64   // the persisted epoch
	seen    uint64   // the persisted highest epoch seen
	reserve uint64   // the persisted reservation of the next activation
	// late is a write the driver carries out after sending
	// (Ready.PersistAfterSend): it reaches the disk at the node's next
	// step, unless the node is killed first.
	late  *Ready
	hooks []Hook // running, oldest first; each finishes by an action
	// heard is the highest epoch a heartbeat delivered to this node's
	// processes (the one running and those before it) carried. Every new
	// epoch the node moves to must be above it: the pair's epoch never
	// goes back, across restarts (F1).
	heard uint64
}

// world is one state of the explored system. It is copied by clone.
type world struct {
	n      [2]xnode
	q      [2][]xmsg // q[i]: in flight from node i to the other
	cut    [2]bool   // cut[i]: the direction i → other carries nothing
	cfg    Config
	faults int // faults left on this path, see xcfg.faults

	// The witness (F14), when cfg.Witness: its lease (Expires on the
	// global clock wnow), the requests on their way to it and the replies
	// on their way back, and which nodes cannot reach it.
	wl     lease.Lease
	wnow   int64
	wreq   [2]*xreq
	wrep   [2]*LeaseReply
	wcut   [2]bool
	wfault bool // the witness was cut off from a node on this path

	// broken is an invariant broken while a node's Ready was carried out
	// (check reports it).
	broken string
}

// xreq is a lease request on its way to the witness; orphan when the
// process that sent it has died (the witness still serves it).
type xreq struct {
	r      LeaseRequest
	orphan bool
}

// xcfg is one exploration's setup.
type xcfg struct {
	name   string
	cfg    Config
	depth  int // actions per path
	faults int // faults per path (drops, duplicates, cuts, kills, switchovers)
	queue  int // messages in flight per direction
	settle int // ticks the liveness check allows
}

var names = [2]string{"a", "b"}
var roles = [2]member.Role{member.Master, member.Standby}

func cloneMachine(m *Machine) *Machine {
	if m == nil {
		return nil
	}
	c := *m
	c.checks = append([]checkState(nil), m.checks...)
	if m.wit.take != nil {
		t := *m.wit.take
		c.wit.take = &t
	}
	if m.sw != nil {
		sw := *m.sw
		c.sw = &sw
	}
	c.rd = Ready{}
	return &c
}

func (w *world) clone() *world {
	c := *w
	for i := range w.n {
		c.n[i].m = cloneMachine(w.n[i].m)
		c.n[i].hooks = append([]Hook(nil), w.n[i].hooks...)
		if w.wreq[i] != nil {
			r := *w.wreq[i]
			c.wreq[i] = &r
		}
		if w.wrep[i] != nil {
			r := *w.wrep[i]
			c.wrep[i] = &r
		}
		c.q[i] = append([]xmsg(nil), w.q[i]...)
		if l := w.n[i].late; l != nil {
			r := *l
			c.n[i].late = &r
		}
	}
	return &c
}

// start starts node i's process from its persisted epoch.
func (w *world) start(i int) {
	c := w.cfg
	c.Self, c.Role, c.Epoch, c.Seen, c.Reserved = names[i], roles[i], w.n[i].disk, w.n[i].seen, w.n[i].reserve
	if i == 0 {
		c.Peer = names[1]
	} else {
		c.Peer = names[0]
	}
	m, err := New(c)
	if err != nil {
		panic(err)
	}
	w.n[i].m, w.n[i].hooks = m, nil
	w.flush(i)
}

// flush carries out node i's Ready: persist, then send (or send, then
// persist at the node's next step: Ready.PersistAfterSend).
func (w *world) flush(i int) {
	m := w.n[i].m
	for m != nil && m.HasReady() {
		w.writeLate(i)
		rd := m.Ready()
		m.Advance()
		if rd.PersistEpoch {
			if rd.Epoch != w.n[i].disk && rd.Epoch <= w.n[i].heard && w.broken == "" {
				w.broken = fmt.Sprintf("%s moved to epoch %d, but it has heard epoch %d from its peer", names[i], rd.Epoch, w.n[i].heard)
			}
			if rd.PersistAfterSend(w.n[i].reserve) {
				r := rd
				w.n[i].late = &r
			} else {
				w.n[i].disk, w.n[i].seen, w.n[i].reserve = rd.Epoch, rd.Seen, rd.Reserve
			}
		}
		for _, msg := range rd.Messages {
			switch msg.Kind {
			case MsgTake:
				w.send(i, Take{From: names[i], Epoch: msg.Epoch, Reason: msg.Reason})
			case MsgYield:
				w.send(i, Yield{From: names[i], Epoch: msg.Epoch})
			}
		}
		if rd.Heartbeat {
			s := m.Status()
			w.send(i, Heartbeat{From: names[i], Role: roles[i], State: s.State, Epoch: s.Epoch,
				Maint: s.Maintenance, MaintLeft: s.MaintLeft, MaintVersion: s.MaintVersion,
				Unhealthy: !s.Healthy, Failing: failingOf(s), WitnessDown: s.Witness.Configured && !s.Witness.Reachable})
		}
		w.n[i].hooks = append(w.n[i].hooks, rd.Hooks...)
		if rd.Lease != nil {
			w.wreq[i] = &xreq{r: *rd.Lease}
		}
	}
}

var queueCap = 2

// send puts a message on the link from i, unless that direction is cut or
// the peer's process is down. A full link drops the newest message (the
// explorer also drops any message on its own).
func (w *world) send(i int, in Input) {
	if w.cut[i] || w.n[1-i].m == nil || len(w.q[i]) >= queueCap {
		return
	}
	w.q[i] = append(w.q[i], xmsg{in})
}

func (w *world) step(i int, in Input) {
	if w.n[i].m == nil {
		return
	}
	_ = w.n[i].m.Step(in) // refusals are answers, not faults of the explorer
	w.flush(i)
}

// tick advances time by one tick for every running node (and the
// witness).
func (w *world) tick() {
	w.wnow++
	for i := range w.n {
		if w.n[i].m != nil {
			w.n[i].m.Tick()
			w.flush(i)
		}
	}
}

// deliver hands message k in flight from i to the other node; keep leaves
// a copy on the link (a duplicate).
func (w *world) deliver(i, k int, keep bool) {
	msg := w.q[i][k]
	if !keep {
		w.q[i] = append(w.q[i][:k:k], w.q[i][k+1:]...)
	}
	if hb, ok := msg.in.(Heartbeat); ok && w.n[1-i].m != nil {
		w.n[1-i].heard = max(w.n[1-i].heard, hb.Epoch)
	}
	w.step(1-i, msg.in)
}

// action is one step the explorer may take from a state.
type action struct {
	name  string
	fault bool
	do    func(w *world)
}

// actions lists what may happen in w.
func (w *world) actions() []action {
	var as []action
	if !w.witnessOverdue() {
		as = append(as, action{name: "tick", do: (*world).tick})
	}
	for i := range w.n {
		for k := range w.q[i] {
			i, k := i, k
			as = append(as,
				action{name: fmt.Sprintf("deliver %s#%d", names[i], k), do: func(w *world) { w.deliver(i, k, false) }},
				action{name: fmt.Sprintf("drop %s#%d", names[i], k), fault: true, do: func(w *world) { w.q[i] = append(w.q[i][:k:k], w.q[i][k+1:]...) }},
				action{name: fmt.Sprintf("duplicate %s#%d", names[i], k), fault: true, do: func(w *world) { w.deliver(i, k, true) }},
			)
		}
	}
	if !w.cut[0] || !w.cut[1] {
		as = append(as,
			action{name: "cut", fault: true, do: func(w *world) { w.setCut(true, true, false) }},
			action{name: "cut+linkdown", fault: true, do: func(w *world) { w.setCut(true, true, true) }},
		)
	}
	if !w.cut[0] && !w.cut[1] {
		as = append(as,
			action{name: "cut a→b", fault: true, do: func(w *world) { w.setCut(true, false, false) }},
			action{name: "cut b→a", fault: true, do: func(w *world) { w.setCut(false, true, false) }},
		)
	}
	if w.cut[0] || w.cut[1] {
		as = append(as, action{name: "heal", do: (*world).heal})
	}
	for i := range w.n {
		i := i
		if w.n[i].m == nil {
			as = append(as, action{name: "start " + names[i], do: func(w *world) { w.start(i) }})
			continue
		}
		as = append(as,
			action{name: "kill " + names[i], fault: true, do: func(w *world) { w.kill(i, false) }},
			action{name: "kill " + names[i] + " link=closed", fault: true, do: func(w *world) { w.kill(i, true) }},
		)
	}
	if w.n[0].m != nil {
		as = append(as, action{name: "switchover a", fault: true, do: func(w *world) { w.step(0, Switchover{}) }})
	}
	for i := range w.n {
		i := i
		if len(w.n[i].hooks) > 0 {
			as = append(as, action{name: "hookdone " + names[i], do: func(w *world) { w.hookDone(i) }})
		}
		if w.n[i].m == nil {
			continue
		}
		for _, c := range w.cfg.Checks {
			name := c.Name
			as = append(as,
				action{name: "check " + names[i] + " " + name + " fail", fault: true, do: func(w *world) { w.step(i, CheckResult{Name: name, Output: "down"}) }},
				action{name: "check " + names[i] + " " + name + " ok", do: func(w *world) { w.step(i, CheckResult{Name: name, OK: true}) }},
			)
		}
	}
	if w.cfg.Witness {
		as = w.witnessActions(as)
	}
	return as
}

// witnessActions adds what may happen between the nodes and the witness.
func (w *world) witnessActions(as []action) []action {
	for i := range w.n {
		i := i
		if w.wreq[i] != nil && !w.wcut[i] {
			as = append(as, action{name: "witness serves " + names[i], do: func(w *world) { w.serve(i) }})
		}
		if w.wreq[i] != nil && w.wcut[i] {
			as = append(as, action{name: "witness times out for " + names[i], do: func(w *world) { w.witnessTimeout(i) }})
		}
		if w.wrep[i] != nil {
			as = append(as, action{name: "witness answers " + names[i], do: func(w *world) { w.answer(i) }})
		}
		if !w.wcut[i] {
			as = append(as, action{name: "witness cut from " + names[i], fault: true, do: func(w *world) { w.wcut[i], w.wfault = true, true }})
		}
	}
	if !w.wcut[0] && !w.wcut[1] {
		as = append(as, action{name: "witness down", fault: true, do: func(w *world) { w.wcut, w.wfault = [2]bool{true, true}, true }})
	}
	if w.wcut[0] || w.wcut[1] {
		as = append(as, action{name: "witness back", do: func(w *world) { w.wcut = [2]bool{} }})
	}
	if w.wnow >= w.wl.Unsure {
		// A restart on a fresh data directory: the witness stays reachable
		// (wfault unchanged), so never two actives still holds.
		as = append(as, action{name: "witness restarts without its leases", fault: true, do: func(w *world) { w.wl = w.lostLease() }})
	}
	return as
}

// lostLease is what a witness that restarted now without its data knows of
// the pair's lease (witness.Server does the same for a pair it has no
// stored lease of).
func (w *world) lostLease() lease.Lease {
	end := w.wnow + int64(w.cfg.LeaseTicks)
	return lease.Lease{Unsure: end, Expires: end}
}

// witnessOverdue reports whether a node's request to a witness it can
// reach would go unanswered past the node's deadline if time moved on: a
// reachable witness answers in time (a slow one is an unreachable one,
// which the witness cuts model).
func (w *world) witnessOverdue() bool {
	for i, n := range w.n {
		m := n.m
		if m == nil || !m.wit.pending || w.wcut[i] || m.now-m.wit.sentAt < m.cfg.LeaseTicks {
			continue
		}
		if (w.wreq[i] != nil && w.current(i, w.wreq[i].r.Seq)) || (w.wrep[i] != nil && w.current(i, w.wrep[i].Seq)) {
			return true
		}
	}
	return false
}

// serve has the witness decide node i's request; the reply goes back
// unless the process that asked has died.
func (w *world) serve(i int) {
	q := w.wreq[i]
	w.wreq[i] = nil
	var rep lease.Reply
	w.wl, rep = lease.Decide(w.wl, q.r.Request, w.wnow, int64(w.cfg.LeaseTicks))
	if !q.orphan {
		w.wrep[i] = &LeaseReply{Seq: q.r.Seq, Reply: rep}
	}
}

func (w *world) answer(i int) {
	r := *w.wrep[i]
	w.wrep[i] = nil
	w.step(i, r)
}

// witnessTimeout is the driver giving up on a request the witness cannot
// get: the node hears Unreachable.
func (w *world) witnessTimeout(i int) {
	q := w.wreq[i]
	w.wreq[i] = nil
	if !q.orphan {
		w.step(i, LeaseReply{Seq: q.r.Seq, Unreachable: true})
	}
}

func (w *world) setCut(ab, ba, linkDown bool) {
	w.cut[0] = w.cut[0] || ab
	w.cut[1] = w.cut[1] || ba
	for i := range w.q {
		if w.cut[i] {
			w.q[i] = nil
		}
	}
	if linkDown {
		w.step(0, LinkDown{})
		w.step(1, LinkDown{})
	}
}

func (w *world) heal() {
	w.cut = [2]bool{}
	w.step(0, LinkUp{})
	w.step(1, LinkUp{})
}

// hookDone finishes node i's oldest running hook.
func (w *world) hookDone(i int) {
	hk := w.n[i].hooks[0]
	w.n[i].hooks = w.n[i].hooks[1:]
	w.step(i, HookDone(hk))
}

// writeLate puts node i's late write on its disk.
func (w *world) writeLate(i int) {
	if l := w.n[i].late; l != nil {
		w.n[i].disk, w.n[i].seen, w.n[i].reserve, w.n[i].late = l.Epoch, l.Seen, l.Reserve, nil
	}
}

// kill stops node i's process, with any write it had not carried out yet;
// with closed the peer sees the link close and its probe refused.
func (w *world) kill(i int, closed bool) {
	w.n[i].m, w.n[i].hooks, w.n[i].late = nil, nil, nil
	w.q[1-i] = nil
	w.wrep[i] = nil
	if w.wreq[i] != nil {
		w.wreq[i].orphan = true
	} // nothing reaches a dead process
	if closed && !w.cut[0] && !w.cut[1] {
		w.step(1-i, LinkDown{Gone: true})
	}
}

// check is the safety invariants of one state.
func (w *world) check() error {
	if w.broken != "" {
		return errors.New(w.broken)
	}
	var active []int
	for i, n := range w.n {
		if n.m != nil && n.m.seen > max(n.disk, n.seen, n.reserve) {
			return fmt.Errorf("%s has seen epoch %d, but only %d persisted", names[i], n.m.seen, max(n.disk, n.seen, n.reserve))
		}
		if n.m == nil || n.m.State() != Active {
			continue
		}
		active = append(active, i)
		e := n.m.Epoch()
		if max(n.disk, n.reserve) < e {
			return fmt.Errorf("%s active in epoch %d, but neither recorded nor reserved (disk %d, reserved %d)", names[i], e, n.disk, n.reserve)
		}
		// Each node activates only into epochs of its own parity, and
		// never below one it has been in (persisted): so no epoch is
		// ever shared.
		if want := uint64(i); e%2 != want%2 || e == 0 {
			return fmt.Errorf("%s active in epoch %d, not of its parity", names[i], e)
		}
	}
	if len(active) == 2 && w.n[0].m.Epoch() == w.n[1].m.Epoch() {
		return fmt.Errorf("both active in epoch %d", w.n[0].m.Epoch())
	}
	if w.cfg.Witness {
		return w.checkWitness(len(active))
	}
	return nil
}

// checkWitness is the witness's invariants: a node that believes it holds
// the lease does, at the witness; with witness.required never two active
// nodes; without, never two while no node lost the witness on this path.
func (w *world) checkWitness(active int) error {
	for i, n := range w.n {
		// While the witness is unsure of the holder (after a restart
		// without its leases), the lease this node holds from before the
		// restart is still running there, whatever the witness says.
		unsure := w.wnow < w.wl.Unsure
		if n.m != nil && n.m.holdsLease() && ((w.wl.Holder != names[i] && !unsure) || (w.wl.Expires <= w.wnow && !unsure)) {
			return fmt.Errorf("%s holds the lease for %d more ticks, but the witness has %+v at %d", names[i], n.m.wit.until-n.m.now, w.wl, w.wnow)
		}
	}
	switch {
	case active == 2 && w.cfg.WitnessRequired:
		return fmt.Errorf("two active nodes with witness.required")
	case active == 2 && !w.wfault:
		return fmt.Errorf("two active nodes, and both always reached the witness")
	}
	return nil
}

// quiesce stops the faults: heals the link, starts what is down (unless
// keepDown: a node that died stays dead), and runs up to settle ticks
// delivering every message at once. It returns an error when the pair does
// not end with exactly one active node, stable for a heartbeat timeout and
// a settle delay.
func (w *world) quiesce(settle int, keepDown bool) error {
	if w.cut[0] || w.cut[1] {
		w.heal()
	}
	w.wcut = [2]bool{}
	for i := range w.n {
		if w.n[i].m == nil && !keepDown {
			w.start(i)
		}
	}
	for i := range w.n {
		for _, c := range w.cfg.Checks {
			for range c.Rise {
				w.step(i, CheckResult{Name: c.Name, OK: true})
			}
		}
	}
	stable := 0
	for t := 0; t < settle; t++ {
		w.drain()
		if err := w.check(); err != nil {
			return fmt.Errorf("after %d quiet ticks: %w", t, err)
		}
		if w.actives() == 1 {
			stable++
			if stable > w.cfg.TimeoutTicks+w.cfg.SettleTicks {
				return nil
			}
		} else {
			stable = 0
		}
		w.tick()
	}
	return fmt.Errorf("no single stable active node within %d ticks of the faults stopping (%d active)", settle, w.actives())
}

// drain delivers every message in flight, in order, and finishes every
// running hook, until nothing is left.
func (w *world) drain() {
	for n := 0; n < 100; n++ {
		busy := false
		for i := range w.q {
			if len(w.q[i]) > 0 {
				w.deliver(i, 0, false)
				busy = true
			}
			if len(w.n[i].hooks) > 0 {
				w.hookDone(i)
				busy = true
			}
			if w.wreq[i] != nil {
				if w.wcut[i] {
					w.witnessTimeout(i)
				} else {
					w.serve(i)
				}
				busy = true
			}
			if w.wrep[i] != nil {
				w.answer(i)
				busy = true
			}
		}
		if !busy {
			return
		}
	}
}

func (w *world) actives() int {
	n := 0
	for _, x := range w.n {
		if x.m != nil && x.m.State() == Active {
			n++
		}
	}
	return n
}

// key is the canonical hash of a state: equal for states the machines
// cannot tell apart. Absolute time and epochs are left out: only time
// modulo the heartbeat interval (and whether the start-up windows are
// over), and epochs relative to the lowest one in the state, matter.
func (w *world) key(seed maphash.Seed, buf []byte) (uint64, []byte) {
	k := kb{b: buf[:0], base: w.minEpoch() &^ 1} // keep the parity
	k.u(uint64(w.faults))
	if w.cfg.Witness {
		k.s(w.wl.Holder)
		k.i(int(max(0, w.wl.Unsure-w.wnow)))
		k.e(w.wl.Epoch)
		k.i(int(max(0, w.wl.Expires-w.wnow)))
		k.bl(w.wfault)
		for i := range w.n {
			k.bl(w.wcut[i])
			k.bl(w.wreq[i] != nil)
			if q := w.wreq[i]; q != nil {
				k.bl(q.orphan)
				k.bl(w.current(i, q.r.Seq))
				k.s(q.r.Node)
				k.e(q.r.Epoch)
				k.bl(q.r.Over)
				k.bl(q.r.Renew)
				k.e(q.r.PeerEpoch)
			}
			k.bl(w.wrep[i] != nil)
			if r := w.wrep[i]; r != nil {
				k.bl(w.current(i, r.Seq))
				k.bl(r.Granted)
				k.s(r.Holder)
				k.e(r.Epoch)
				k.i(int(r.Left))
			}
		}
	}
	for i, n := range w.n {
		k.bl(w.cut[i])
		k.e(n.disk)
		k.e(n.seen)
		k.e(n.reserve)
		k.bl(n.late != nil)
		if n.late != nil {
			k.e(n.late.Epoch)
			k.e(n.late.Seen)
			k.e(n.late.Reserve)
		}
		k.e(n.heard)
		k.u(uint64(len(n.hooks)))
		for _, h := range n.hooks {
			k.s(string(h.State))
			k.e(h.Epoch)
		}
		if n.m == nil {
			k.b = append(k.b, 0xff)
		} else {
			k.machine(n.m)
		}
		k.u(uint64(len(w.q[i])))
		for _, msg := range w.q[i] {
			k.input(msg.in)
		}
	}
	return maphash.Bytes(seed, k.b), k.b
}

// current reports whether seq is the request node i waits for.
func (w *world) current(i int, seq uint64) bool {
	m := w.n[i].m
	return m != nil && m.wit.pending && m.wit.seq == seq
}

func (w *world) minEpoch() uint64 {
	lo := ^uint64(0)
	see := func(e uint64) { lo = min(lo, e) }
	if w.cfg.Witness {
		see(w.wl.Epoch)
		for i := range w.n {
			if q := w.wreq[i]; q != nil {
				see(q.r.Epoch)
				if q.r.Over {
					see(q.r.PeerEpoch)
				}
			}
			if r := w.wrep[i]; r != nil {
				see(r.Epoch)
			}
			if m := w.n[i].m; m != nil && m.wit.holder != "" {
				see(m.wit.holderEp)
			}
			if m := w.n[i].m; m != nil && m.wit.take != nil {
				see(m.wit.take.Epoch)
			}
		}
	}
	for i, n := range w.n {
		see(n.disk)
		see(n.seen)
		if m := n.m; m != nil {
			see(m.epoch)
			see(m.seen)
			if m.peer.heard || m.peer.everHeard {
				see(m.peer.epoch)
			}
			if m.sw != nil {
				see(m.sw.epoch)
			}
		}
		for _, h := range n.hooks {
			see(h.Epoch)
		}
		for _, msg := range w.q[i] {
			see(inputEpoch(msg.in))
		}
	}
	return lo
}

func inputEpoch(in Input) uint64 {
	switch in := in.(type) {
	case Heartbeat:
		return in.Epoch
	case Take:
		return in.Epoch
	case Yield:
		return in.Epoch
	}
	return 0
}

// kb builds a canonical key.
type kb struct {
	b    []byte
	base uint64
}

func (k *kb) u(v uint64) { k.b = binary.AppendUvarint(k.b, v) }
func (k *kb) i(v int)    { k.b = binary.AppendVarint(k.b, int64(v)) }
func (k *kb) e(e uint64) { k.u(e - min(e, k.base)) }
func (k *kb) s(s string) { k.b = append(append(k.b, s...), 0) }
func (k *kb) bl(v bool) {
	if v {
		k.b = append(k.b, 1)
	} else {
		k.b = append(k.b, 0)
	}
}

func (k *kb) input(in Input) {
	switch in := in.(type) {
	case Heartbeat:
		k.b = append(k.b, 'H')
		k.s(string(in.State))
		k.e(in.Epoch)
		k.bl(in.Maint)
		k.i(in.MaintLeft)
		k.u(in.MaintVersion)
		k.bl(in.Unhealthy)
		for _, f := range in.Failing {
			k.s(f)
		}
	case Take:
		k.b = append(k.b, 'T')
		k.e(in.Epoch)
	case Yield:
		k.b = append(k.b, 'Y')
		k.e(in.Epoch)
	default:
		k.s(fmt.Sprintf("%T", in))
	}
}

// machine appends the machine's canonical state (see world.key).
func (k *kb) machine(m *Machine) {
	c := m.cfg
	k.s(string(m.state))
	k.e(m.epoch)
	k.e(m.seen)
	k.e(m.spent)
	k.i(min(m.now, c.TimeoutTicks+1)) // decideStarting compares now with the timeout
	k.i(m.now % c.HeartbeatTicks)
	p := m.peer
	k.s(p.name)
	k.bl(p.heard)
	k.bl(p.everHeard)
	k.i(p.silence)
	k.s(string(p.role))
	k.s(string(p.state))
	k.e(p.epoch)
	k.i(m.discoveryLeft)
	k.bl(m.linkUp)
	k.i(m.linkDownLeft)
	k.i(m.collision)
	k.i(min(m.stableFor, c.SettleTicks))
	k.bl(m.maint.on)
	k.i(m.maint.left)
	k.u(m.maint.version)
	k.bl(m.inSync)
	k.s(m.suppressed)
	k.bl(p.unhealthy)
	for _, f := range p.failing {
		k.s(f)
	}
	k.bl(m.critical)
	for _, c := range m.checks {
		k.bl(c.healthy)
		k.i(min(c.fails, c.cfg.Fall))
		k.i(min(c.successes, c.cfg.Rise))
	}
	k.bl(m.peerGone)
	k.bl(p.witnessDown)
	if m.cfg.Witness {
		v := m.wit
		k.bl(v.pending)
		k.bl(v.renewal)
		if v.pending {
			k.i(min(m.now-v.sentAt, m.cfg.LeaseTicks+1))
		}
		k.i(max(0, v.nextAsk-m.now))
		k.i(max(0, v.until-m.now))
		k.bl(v.held)
		k.bl(v.down)
		k.bl(v.stepped)
		k.s(v.holder)
		k.e(v.holderEp)
		k.bl(v.take != nil)
		if v.take != nil {
			k.e(v.take.Epoch)
		}
	}
	if m.sw != nil {
		k.i(int(m.sw.kind))
		k.s(m.sw.to)
		k.i(m.sw.left)
		k.e(m.sw.epoch)
		k.bl(m.sw.hookPending)
	}
	k.b = append(k.b, '|')
}

// replay runs path again from w0, then the liveness check, and returns a
// trace of both.
func replay(w0 *world, path *pathStep, settle int) string {
	var names []string
	for p := path; p != nil; p = p.prev {
		names = append([]string{p.name}, names...)
	}
	w := w0.clone()
	w.faults = 1 << 20
	var b strings.Builder
	for _, name := range names {
		for _, a := range w.actions() {
			if a.name == name {
				a.do(w)
				break
			}
		}
		fmt.Fprintf(&b, "%-28s %s\n", name, w.describe())
	}
	err := w.quiesce(settle, false)
	fmt.Fprintf(&b, "%-28s %s (%v)\n", "quiesce", w.describe(), err)
	return b.String()
}

func (w *world) describe() string {
	var b strings.Builder
	for i, n := range w.n {
		if n.m == nil {
			fmt.Fprintf(&b, "%s:down ", names[i])
			continue
		}
		s := n.m.Status()
		fmt.Fprintf(&b, "%s:%s/e%d heard=%v wit=%+v pend=%v ", names[i], s.State, s.Epoch, s.PeerHeard, s.Witness, n.m.wit.pending)
	}
	if w.cfg.Witness {
		fmt.Fprintf(&b, "W=%+v@%d cut=%v", w.wl, w.wnow, w.wcut)
	}
	return b.String()
}

// pathStep is one action of the path to a state, linked to the one before.
type pathStep struct {
	name string
	prev *pathStep
}

func (p *pathStep) String() string {
	if p == nil {
		return "(start)"
	}
	return p.prev.String() + " → " + p.name
}

// explore runs one exploration from w0 and returns the number of distinct
// states.
func explore(t *testing.T, x xcfg, w0 *world) int {
	t.Helper()
	seed := maphash.MakeSeed()
	w0.faults = x.faults
	queueCap = x.queue
	k0, buf := w0.key(seed, nil)
	seen := map[uint64]struct{}{k0: {}}
	type node struct {
		w    *world
		path *pathStep
	}
	frontier := []node{{w: w0}}
	for d := 0; d < x.depth && len(frontier) > 0; d++ {
		var next []node
		for _, s := range frontier {
			for _, a := range s.w.actions() {
				if a.fault && s.w.faults == 0 {
					continue
				}
				w := s.w.clone()
				if a.fault {
					w.faults--
				}
				a.do(w)
				path := &pathStep{a.name, s.path}
				if err := w.check(); err != nil {
					t.Fatalf("%s: invariant broken: %v\npath: %s", x.name, err, path)
				}
				var k uint64
				k, buf = w.key(seed, buf)
				if _, ok := seen[k]; ok {
					continue
				}
				seen[k] = struct{}{}
				if err := w.clone().quiesce(x.settle, false); err != nil {
					t.Fatalf("%s: liveness: %v\npath: %s\n%s", x.name, err, path, replay(w0, path, x.settle))
				}
				if (w.n[0].m == nil) != (w.n[1].m == nil) {
					if err := w.clone().quiesce(x.settle, true); err != nil {
						t.Fatalf("%s: liveness with the dead node left dead: %v\npath: %s", x.name, err, path)
					}
				}
				next = append(next, node{w: w, path: path})
			}
		}
		frontier = next
		if testing.Verbose() {
			t.Logf("%s: depth %d: %d states, frontier %d", x.name, d+1, len(seen), len(frontier))
		}
	}
	return len(seen)
}

func soak() bool { return os.Getenv("TANDEM_SOAK") != "" }

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// steady returns the pair after a quiet start: both running, the link up,
// a active and b passive; with switched, b active after a switchover.
func steady(c Config, switched bool) *world {
	w := &world{cfg: c}
	w.start(0)
	w.start(1)
	if err := w.quiesce(100, false); err != nil {
		panic(err)
	}
	if switched {
		w.step(0, Switchover{})
		for range 2 * c.TimeoutTicks {
			w.drain()
			w.tick()
		}
		w.drain()
	}
	return w
}

// TestExplore explores the pair from three starting points — both
// processes down, a active beside a passive b, and b active after a
// switchover — in three configurations (manual failback, automatic
// failback, one health check with fall and rise 1), with the smallest
// timings the machine accepts, so that timeouts, settle delays and
// switchover confirmations all happen within the depth.
func TestExplore(t *testing.T) {
	depth, faults := 6, 3
	if soak() {
		depth, faults = 10, 5
	}
	depth = envInt("TANDEM_EXPLORE_DEPTH", depth)
	faults = envInt("TANDEM_EXPLORE_FAULTS", faults)
	base := Config{HeartbeatTicks: 1, TimeoutTicks: 2, DiscoveryTicks: 2, SettleTicks: 2, ConfirmTicks: 2}
	configs := []struct {
		name string
		edit func(*Config)
	}{
		{"manual", func(*Config) {}},
		{"failback", func(c *Config) { c.FailbackAutomatic = true }},
		{"checks", func(c *Config) { c.Checks = []CheckConfig{{Name: "svc", Fall: 1, Rise: 1}} }},
		{"witness", func(c *Config) { c.Witness, c.LeaseTicks = true, 3 }},
		{"witness-required", func(c *Config) { c.Witness, c.WitnessRequired, c.LeaseTicks = true, true, 3 }},
	}
	total := 0
	for _, cc := range configs {
		c := base
		cc.edit(&c)
		if only := os.Getenv("TANDEM_EXPLORE_ONLY"); only != "" && only != cc.name {
			continue
		}
		starts := map[string]*world{"cold": {cfg: c}, "a-active": steady(c, false)}
		if !c.FailbackAutomatic { // with automatic failback a active is where b-active leads
			starts["b-active"] = steady(c, true)
		}
		for _, sn := range []string{"cold", "a-active", "b-active"} {
			w := starts[sn]
			if w == nil {
				continue
			}
			if sn == "b-active" && w.n[1].m.State() != Active {
				t.Fatalf("setup: the switchover did not make b active: %+v", w.n[1].m.Status())
			}
			d := depth
			if c.Witness && os.Getenv("TANDEM_EXPLORE_DEPTH") == "" {
				d-- // the witness's requests and replies multiply the interleavings
			}
			x := xcfg{name: cc.name + "/" + sn, cfg: c, depth: d, faults: faults, queue: 2, settle: 60}
			n := explore(t, x, w)
			total += n
			fmt.Printf("explorer %s: %d states explored (depth %d, up to %d faults per path)\n", x.name, n, d, faults)
		}
	}
	t.Logf("%d states explored in all", total)
}

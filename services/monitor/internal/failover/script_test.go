package failover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/member"
	"github.com/tandem-ha/tandem/pkg/pairtest"
	"github.com/tandem-ha/tandem/pkg/scripttest"
	"github.com/tandem-ha/tandem/services/monitor/witness/lease"
)

// The scripts in testdata drive two machines, a (master) and b (standby),
// joined by a simulated link. Commands:
//
//	pair [hb=N timeout=N linkdown=N discovery=N settle=N confirm=N failback=automatic epoch-a=N epoch-b=N
//	     hooktimeout=N stallreport=N checks=(x,y) fall=N rise=N takeover=true hooks=manual]
//	start a|b           the node's process starts (a new machine from its persisted epochs: its own, and the highest seen)
//	kill a|b [link=closed|silent]   the process dies; with link=closed the peer sees the link close and the refused probe
//	tick [N]            N ticks pass for every running node
//	pause a|b N         the node is frozen for N ticks (no ticks, no input), then resumes and notices the stall
//	linkup a|b          the node sees its link to the peer come up
//	linkdown a|b        the node sees its link to the peer close, and the probe does not prove the peer dead
//	cut / heal          the link between the nodes stops / resumes carrying messages (silently)
//	switchover a|b [to=x]
//	maintenance a|b on for=N | off
//	insync a|b true|false
//	check a|b NAME ok|fail [out=TEXT]   one result of a health check (F15)
//	hookdone a|b        the node's oldest running hook finishes (with hooks=manual;
//	                    otherwise every hook finishes as soon as it starts)
//	witness cut a|b|all | heal     the witness stops (or resumes) answering a node (F14;
//	                    pair witness=on|required [lease=N]); requests are served at once
//	witness restart     the witness restarts without its leases (a fresh data directory)
//	inject a|b heartbeat|yield|take k=v…  raw input, as from the wire
//	status
//
// Output lists what each node's Ready asked for, except periodic heartbeats.
// After every command the invariant "never two actives in one epoch" is checked.
func TestScripts(t *testing.T) {
	scripttest.Runner{First: "pair", New: func(t testing.TB) scripttest.Commands { return &harness{t: t} }}.Walk(t, "testdata")
}

type simNode struct {
	hooks   []Hook // running (hooks=manual)
	name    string
	role    member.Role
	m       *Machine // nil while the process is down
	disk    uint64   // persisted epoch
	seen    uint64   // persisted highest epoch seen
	reserve uint64   // persisted reservation of the next activation
	paused  int      // ticks left frozen
	pausedN int
	inbox   []Input // delivered while paused
}

type harness struct {
	t       testing.TB
	cfg     Config
	nodes   map[string]*simNode
	cut     bool
	now     int
	out     strings.Builder
	actives *pairtest.Actives // which node was active in each epoch
	// quietTicks counts the ticks checkQuiet verified (so that a test can
	// tell the check was not vacuous).
	quietTicks int
	// manualHooks: hooks run until hookdone (else they finish at once).
	manualHooks bool
	// The witness (F14): its lease, on the harness's clock, and the nodes
	// it does not answer.
	wl   lease.Lease
	wcut map[string]bool
}

// Do runs one command of a script.
func (h *harness) Do(t testing.TB, d *datadriven.TestData) string {
	h.out.Reset()
	switch d.Cmd {
	case "pair":
		h.pair(d)
	case "start":
		h.start(h.node(d, 0))
	case "kill":
		h.kill(d)
	case "tick":
		n := 1
		if len(d.CmdArgs) > 0 {
			n = h.atoi(d, d.CmdArgs[0].Key)
		}
		for i := 0; i < n; i++ {
			h.tick()
		}
	case "pause":
		n := h.node(d, 0)
		n.paused = h.atoi(d, d.CmdArgs[1].Key)
		n.pausedN = n.paused
	case "linkdown":
		h.step(h.node(d, 0), LinkDown{})
	case "linkup":
		h.step(h.node(d, 0), LinkUp{})
	case "cut":
		h.cut = true
	case "heal":
		h.cut = false
	case "switchover":
		n := h.node(d, 0)
		var to string
		d.MaybeScanArgs(t, "to", &to)
		h.step(n, Switchover{To: to})
	case "maintenance":
		h.maintenance(d)
	case "insync":
		h.step(h.node(d, 0), SyncState{InSync: d.CmdArgs[1].Key == "true"})
	case "check":
		var out string
		d.MaybeScanArgs(t, "out", &out)
		h.step(h.node(d, 0), CheckResult{Name: d.CmdArgs[1].Key, OK: d.CmdArgs[2].Key == "ok", Output: out})
	case "hookdone":
		h.hookDone(h.node(d, 0))
	case "witness":
		h.witnessCmd(d)
	case "inject":
		h.inject(d)
	case "status":
		h.status()
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return h.out.String()
}

// Check is the invariant checked after every command of a script.
func (h *harness) Check() error { return h.checkInvariants() }

func (h *harness) atoi(d *datadriven.TestData, s string) int { return scripttest.Int(h.t, d, s) }

func (h *harness) pair(d *datadriven.TestData) {
	h.cfg = Config{HeartbeatTicks: 1, TimeoutTicks: 3, DiscoveryTicks: 3, SettleTicks: 3, ConfirmTicks: 3}
	ints := map[string]*int{"hb": &h.cfg.HeartbeatTicks, "timeout": &h.cfg.TimeoutTicks, "linkdown": &h.cfg.LinkDownTicks,
		"discovery": &h.cfg.DiscoveryTicks, "settle": &h.cfg.SettleTicks, "confirm": &h.cfg.ConfirmTicks,
		"hooktimeout": &h.cfg.HookTicks, "stallreport": &h.cfg.StallReportTicks}
	h.nodes = map[string]*simNode{
		"a": {name: "a", role: member.Master},
		"b": {name: "b", role: member.Standby},
	}
	h.actives = &pairtest.Actives{}
	for _, a := range d.CmdArgs {
		switch {
		case ints[a.Key] != nil:
			*ints[a.Key] = h.atoi(d, a.Vals[0])
		case a.Key == "failback":
			h.cfg.FailbackAutomatic = a.Vals[0] == "automatic"
		case a.Key == "checks":
			for _, name := range a.Vals {
				h.cfg.Checks = append(h.cfg.Checks, CheckConfig{Name: name, Fall: 3, Rise: 2})
			}
		case a.Key == "fall" || a.Key == "rise":
			for i := range h.cfg.Checks {
				if a.Key == "fall" {
					h.cfg.Checks[i].Fall = h.atoi(d, a.Vals[0])
				} else {
					h.cfg.Checks[i].Rise = h.atoi(d, a.Vals[0])
				}
			}
		case a.Key == "takeover":
			h.cfg.TakeoverWhenUnhealthy = a.Vals[0] == "true"
		case a.Key == "witness":
			h.cfg.Witness, h.cfg.WitnessRequired = true, a.Vals[0] == "required"
			h.cfg.LeaseTicks = h.cfg.TimeoutTicks
			h.wcut = map[string]bool{}
		case a.Key == "lease":
			h.cfg.LeaseTicks = h.atoi(d, a.Vals[0])
		case a.Key == "hooks":
			h.manualHooks = a.Vals[0] == "manual"
		case a.Key == "epoch-a" || a.Key == "epoch-b":
			h.nodes[a.Key[6:]].disk = uint64(h.atoi(d, a.Vals[0]))
		default:
			d.Fatalf(h.t, "pair: unknown argument %q", a.Key)
		}
	}
}

func (h *harness) node(d *datadriven.TestData, i int) *simNode {
	return scripttest.Pick(h.t, d, i, h.nodes)
}

func (h *harness) peerOf(n *simNode) *simNode { return h.nodes[scripttest.Other(n.name)] }

func (h *harness) start(n *simNode) {
	c := h.cfg
	c.Self, c.Role, c.Epoch, c.Seen, c.Reserved = n.name, n.role, n.disk, n.seen, n.reserve
	m, err := New(c)
	if err != nil {
		h.t.Fatal(err)
	}
	n.m, n.paused, n.inbox, n.hooks = m, 0, nil, nil
	h.printf("%s: started in epoch %d%s", n.name, n.disk, n.seenNote())
	h.flush(n)
}

func (h *harness) kill(d *datadriven.TestData) {
	n := h.node(d, 0)
	n.m, n.hooks = nil, nil
	h.printf("%s: killed", n.name)
	var link string
	d.MaybeScanArgs(h.t, "link", &link)
	if p := h.peerOf(n); link == "closed" && p.m != nil && !h.cut {
		h.printf("%s: link to %s closed; probe refused", p.name, n.name)
		h.step(p, LinkDown{Gone: true})
	}
}

func (h *harness) maintenance(d *datadriven.TestData) {
	n := h.node(d, 0)
	on := d.CmdArgs[1].Key == "on"
	var f int
	if on {
		d.ScanArgs(h.t, "for", &f)
	}
	h.step(n, SetMaintenance{On: on, For: f})
}

func (h *harness) inject(d *datadriven.TestData) {
	n := h.node(d, 0)
	kv := map[string]string{}
	for _, a := range d.CmdArgs[2:] {
		kv[a.Key] = strings.Join(a.Vals, ",")
	}
	ep, _ := strconv.ParseUint(kv["epoch"], 10, 64)
	var in Input
	switch d.CmdArgs[1].Key {
	case "heartbeat":
		left, _ := strconv.Atoi(kv["maint-left"])
		in = Heartbeat{From: kv["from"], Role: member.Role(kv["role"]), State: State(kv["state"]), Epoch: ep, MaintLeft: left}
	case "yield":
		in = Yield{From: kv["from"], Epoch: ep}
	case "take":
		in = Take{From: kv["from"], Epoch: ep}
	default:
		d.Fatalf(h.t, "inject: unknown input %q", d.CmdArgs[1].Key)
	}
	h.step(n, in)
}

// step applies an input to a running node and prints a refusal.
func (h *harness) step(n *simNode, in Input) {
	if n.m == nil {
		h.printf("%s: not running", n.name)
		return
	}
	if n.paused > 0 {
		n.inbox = append(n.inbox, in)
		return
	}
	if err := n.m.Step(in); err != nil {
		h.printf("%s: refused %T: %v", n.name, in, err)
	}
	h.flush(n)
}

func (h *harness) tick() {
	h.now++
	for _, name := range []string{"a", "b"} {
		n := h.nodes[name]
		if n.m == nil {
			continue
		}
		if n.paused > 0 {
			n.paused--
			if n.paused == 0 {
				h.resume(n)
			}
			continue
		}
		h.checkQuiet(n)
		n.m.Tick()
		h.flush(n)
	}
}

// checkQuiet checks Quiet's promise on a copy of n's machine: the ticks it
// calls quiet produce nothing to carry out and change no state or epoch.
func (h *harness) checkQuiet(n *simNode) {
	q := n.m.Quiet()
	if q == 0 {
		return
	}
	c := *n.m // Quiet > 0 only without a switchover: no pointer is shared
	for i := 1; i <= q; i++ {
		c.Tick()
		if c.HasReady() || c.State() != n.m.State() || c.Epoch() != n.m.Epoch() {
			h.t.Fatalf("%s: Quiet() = %d, but tick %d acts: state %s→%s, ready %+v\n%s",
				n.name, q, i, n.m.State(), c.State(), c.Ready(), h.out.String())
		}
	}
	h.quietTicks += q
}

func (h *harness) resume(n *simNode) {
	h.printf("%s: resumed after %d ticks", n.name, n.pausedN)
	if err := n.m.Step(Stall{Ticks: n.pausedN}); err != nil {
		h.t.Fatal(err)
	}
	inbox := n.inbox
	n.inbox = nil
	h.flush(n)
	for _, in := range inbox {
		h.step(n, in)
	}
}

// flush carries out a node's Ready: persist, messages, heartbeat, events, hooks.
func (h *harness) flush(n *simNode) {
	for n.m != nil && n.m.HasReady() {
		rd := n.m.Ready()
		n.m.Advance()
		if rd.PersistEpoch {
			n.disk, n.seen, n.reserve = rd.Epoch, rd.Seen, rd.Reserve
		}
		for _, msg := range rd.Messages {
			why := ""
			if msg.Reason != "" {
				why = " (" + msg.Reason + ")"
			}
			h.printf("%s → %s: %s epoch=%d%s", n.name, msg.To, msg.Kind, msg.Epoch, why)
		}
		for _, e := range rd.Events {
			h.printf("%s: %s epoch=%d: %s%s", n.name, e.Type, e.Epoch, e.Reason, fmtData(e.Data))
		}
		for _, hk := range rd.Hooks {
			h.printf("%s: hook on_%s epoch=%d", n.name, hk.State, hk.Epoch)
		}
		h.deliver(n, rd)
		if rd.Lease != nil {
			h.askWitness(n, *rd.Lease)
		}
		for _, hk := range rd.Hooks {
			if h.manualHooks {
				n.hooks = append(n.hooks, hk)
			} else if n.m != nil {
				_ = n.m.Step(HookDone(hk))
			}
		}
	}
}

// hookDone finishes the node's oldest running hook.
func (h *harness) hookDone(n *simNode) {
	if len(n.hooks) == 0 {
		h.printf("%s: no hook running", n.name)
		return
	}
	hk := n.hooks[0]
	n.hooks = n.hooks[1:]
	h.printf("%s: hook on_%s epoch=%d finished", n.name, hk.State, hk.Epoch)
	h.step(n, HookDone(hk))
}

// fmtData prints an event's data as sorted key=value pairs, without the
// reason (printed before it).
func fmtData(data event.Reasoned) string {
	b, err := json.Marshal(data)
	if err != nil {
		return " {" + err.Error() + "}"
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var d map[string]any
	if err := dec.Decode(&d); err != nil {
		return " {" + err.Error() + "}"
	}
	delete(d, "reason")
	if len(d) == 0 {
		return ""
	}
	keys := make([]string, 0, len(d))
	for k := range d {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString(" {")
	for i, k := range keys {
		if i > 0 {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%s=%v", k, d[k])
	}
	sb.WriteString("}")
	return sb.String()
}

// deliver sends the node's messages and heartbeat over the link.
func (h *harness) deliver(from *simNode, rd Ready) {
	p := h.peerOf(from)
	if h.cut || p.m == nil {
		return
	}
	for _, msg := range rd.Messages {
		switch msg.Kind {
		case MsgTake:
			h.step(p, Take{From: from.name, Epoch: msg.Epoch, Reason: msg.Reason})
		case MsgYield:
			h.step(p, Yield{From: from.name, Epoch: msg.Epoch})
		}
	}
	if rd.Heartbeat {
		s := from.m.Status()
		h.step(p, Heartbeat{From: from.name, Role: from.role, State: s.State, Epoch: s.Epoch,
			Maint: s.Maintenance, MaintLeft: s.MaintLeft, MaintVersion: s.MaintVersion,
			Unhealthy: !s.Healthy, Failing: failingOf(s), WitnessDown: s.Witness.Configured && !s.Witness.Reachable})
	}
}

func (h *harness) status() {
	for _, name := range []string{"a", "b"} {
		n := h.nodes[name]
		if n.m == nil {
			h.printf("%s: down (disk epoch %d%s)", name, n.disk, n.seenNote())
			continue
		}
		s := n.m.Status()
		extra := ""
		if s.Maintenance {
			extra += fmt.Sprintf(" maintenance(left %d)", s.MaintLeft)
		}
		if s.Switchover != "" {
			extra += " switchover:" + s.Switchover
		}
		if s.Witness.Configured {
			extra += fmt.Sprintf(" witness(reachable=%v holds=%v left=%d)", s.Witness.Reachable, s.Witness.Holds, s.Witness.LeaseLeft)
		}
		if len(s.Checks) > 0 {
			extra += fmt.Sprintf(" healthy=%v", s.Healthy)
			if f := failingOf(s); len(f) > 0 {
				extra += fmt.Sprintf(" failing=%v", f)
			}
			if s.Critical {
				extra += " CRITICAL"
			}
		}
		h.printf("%s: %s %s epoch=%d peer-heard=%v%s", name, s.Role, s.State, s.Epoch, s.PeerHeard, extra)
	}
}

func failingOf(s Status) []string {
	var out []string
	for _, c := range s.Checks {
		if !c.Healthy {
			out = append(out, c.Name)
		}
	}
	return out
}

// seenNote is ", seen N" when the node has persisted a higher epoch seen
// than its own.
func (n *simNode) seenNote() string {
	if n.seen > n.disk {
		return fmt.Sprintf(", seen %d", n.seen)
	}
	return ""
}

// checkInvariants reports two nodes ever active in one epoch, an epoch
// used before it was persisted, or an epoch seen and not persisted.
func (h *harness) checkInvariants() error {
	for _, n := range h.nodes {
		if n.m != nil && n.m.Status().Seen > max(n.disk, n.seen, n.reserve) {
			return fmt.Errorf("invariant broken: %s has seen epoch %d but only %d persisted", n.name, n.m.Status().Seen, max(n.disk, n.seen, n.reserve))
		}
		if n.m == nil || n.m.State() != Active {
			continue
		}
		e := n.m.Epoch()
		if err := h.actives.Active(n.name, e); err != nil {
			return fmt.Errorf("invariant broken: %w", err)
		}
		if max(n.disk, n.reserve) < e {
			return fmt.Errorf("invariant broken: %s active in epoch %d but neither recorded nor reserved (disk %d, reserved %d)", n.name, e, n.disk, n.reserve)
		}
	}
	return nil
}

func (h *harness) printf(format string, args ...any) {
	fmt.Fprintf(&h.out, "t=%d %s\n", h.now, fmt.Sprintf(format, args...))
}

func (h *harness) witnessCmd(d *datadriven.TestData) {
	if h.wcut == nil {
		d.Fatalf(h.t, "witness: pair witness=on first")
	}
	switch {
	case len(d.CmdArgs) == 2 && d.CmdArgs[0].Key == "cut" && d.CmdArgs[1].Key == "all":
		h.wcut["a"], h.wcut["b"] = true, true
	case len(d.CmdArgs) == 2 && d.CmdArgs[0].Key == "cut":
		h.wcut[h.node(d, 1).name] = true
	case len(d.CmdArgs) == 1 && d.CmdArgs[0].Key == "heal":
		h.wcut = map[string]bool{}
	case len(d.CmdArgs) == 1 && d.CmdArgs[0].Key == "restart":
		// A restart on a fresh data directory: the witness no longer knows
		// the holder, whose lease may run one more term (witness.Server).
		end := int64(h.now + h.cfg.LeaseTicks)
		h.wl = lease.Lease{Unsure: end, Expires: end}
	default:
		d.Fatalf(h.t, "witness cut a|b|all | heal | restart")
	}
}

// askWitness serves a lease request at once on the harness's clock, or
// answers Unreachable when the witness is cut from the node.
func (h *harness) askWitness(n *simNode, q LeaseRequest) {
	r := q.Request
	over := ""
	if r.Over {
		over = fmt.Sprintf(" over=%s@%d", r.Peer, r.PeerEpoch)
	}
	if h.wcut[n.name] {
		if !r.Probe { // probes are periodic; their outcome shows in the events
			h.printf("%s → witness: lease epoch=%d%s: unreachable", n.name, r.Epoch, over)
		}
		h.step(n, LeaseReply{Seq: q.Seq, Unreachable: true})
		return
	}
	var rep lease.Reply
	before := h.wl
	h.wl, rep = lease.Decide(h.wl, r, int64(h.now), int64(h.cfg.LeaseTicks))
	verdict := "granted"
	switch {
	case !rep.Granted && rep.Holder == "":
		verdict = fmt.Sprintf("refused: the holder is unknown for %d more ticks", rep.Left)
	case !rep.Granted:
		verdict = fmt.Sprintf("refused: %s holds it in epoch %d for %d more ticks", rep.Holder, rep.Epoch, rep.Left)
	}
	// Renewals that change nothing but the term are left out of the
	// transcript, like periodic heartbeats.
	if !r.Probe && !(rep.Granted && before.Holder == r.Node && before.Epoch == r.Epoch && before.Expires > int64(h.now)) {
		h.printf("%s → witness: lease epoch=%d%s: %s", n.name, r.Epoch, over, verdict)
	}
	h.step(n, LeaseReply{Seq: q.Seq, Reply: rep})
}

package lineage_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/tandem-ha/tandem/pkg/scripttest"
	"github.com/tandem-ha/tandem/services/replicator/internal/lineage"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/store/storefake"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// The scripts in testdata drive a simulated pair, a (master) and b
// (standby): each node's database is an in-memory store (storefake), each
// node's batch stream a list, each node's replicator the lineage machines
// carried out the way the service does (ship, then receive). Commands:
//
//	pair                    a new pair, both replicators down, databases empty
//	write a|b k=v…          the application writes rows (table t) on the node
//	delete a|b k…           the application deletes rows
//	start a|b / stop a|b    the node's replicator starts (reads its position) / stops
//	sync [rounds=N]         every running replicator ships, then receives, until a round
//	                        does nothing or N rounds (default 20)
//	lose a|b                the node's database file is replaced by an empty one
//	wipe a|b                the node's data directory is lost: database and stream
//	prune a|b               the node's stream drops all but its last batch (the peer applied them)
//	idle a|b                the node's consumer was idle: it is told where the peer's stream ends
//	backup a|b NAME         copy the database file aside
//	restore a|b NAME        put a copy back in place of the database file
//	fail b N                the next N reconciles of b fail (the master out of reach)
//	ask b WHY               ask b to reconcile (as the master or the shipper do)
//	resync b WHY            an operator asks b to reconcile (tandem repl resync)
//	pause a|b / resume a|b  replication paused / resumed on the node
//	tick DURATION           the clock moves on
//	inject a|b seq=N db=ID from=N to=N [final] [node=X] [genesis=REASON base=ID]
//	                        a raw message read from the peer's stream
//	rows                    both databases' rows
//	check                   invariants: both databases equal; every acknowledged write on
//	                        both nodes or in both conflict tables; reconciles counted
//
// Output: what each machine decided and what was carried out (group
// applies are summed up per receive).
func TestScripts(t *testing.T) {
	scripttest.Runner{First: "pair", New: func(t testing.TB) scripttest.Commands { return &harness{t: t} }}.Walk(t, "testdata")
}

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

type msg struct {
	seq uint64
	b   *wire.Batch
}

type simNode struct {
	name    string
	master  bool
	db      *storefake.Store
	stream  []msg
	lastSeq uint64
	up      bool
	recv    *lineage.Receiver
	cur     lineage.Shipped
	paused  bool
	fail    int // reconciles left to fail
	g       store.Apply
	recons  int
	backups map[string]*storefake.Store
	cursor  uint64 // the consumer's last delivery (0: a new consumer starts after the position)
	state   string // the last state shown
	waiting bool   // the last move was a wait (printed once)
}

type write struct{ node, key, val string }

type harness struct {
	t      testing.TB
	now    time.Time
	files  *storefake.Files
	nodes  map[string]*simNode
	acked  []write
	ids    int
	broken string // the output of failed checks
	out    strings.Builder
}

// Do runs one command of a script.
func (h *harness) Do(t testing.TB, d *datadriven.TestData) string {
	h.out.Reset()
	switch d.Cmd {
	case "pair":
		h.pair()
	case "write":
		n := h.node(d, 0)
		for _, a := range d.CmdArgs[1:] {
			n.db.Put("t", a.Key, a.Vals[0])
			h.acked = append(h.acked, write{n.name, a.Key, a.Vals[0]})
		}
	case "delete":
		n := h.node(d, 0)
		for _, a := range d.CmdArgs[1:] {
			n.db.Delete("t", a.Key)
			h.acked = append(h.acked, write{n.name, a.Key, ""})
		}
	case "start":
		h.start(h.node(d, 0))
	case "stop":
		n := h.node(d, 0)
		n.up, n.recv, n.g = false, nil, nil
		h.printf("%s: replicator stopped", n.name)
	case "sync":
		rounds := 20
		d.MaybeScanArgs(t, "rounds", &rounds)
		for range rounds {
			before := h.out.Len()
			for _, name := range []string{"a", "b"} {
				if n := h.nodes[name]; n.up {
					h.ship(n)
					h.receive(n)
				}
			}
			if h.out.Len() == before {
				break
			}
		}
	case "lose":
		n := h.node(d, 0)
		n.db = h.newDB(n)
		h.printf("%s: database replaced by an empty one (id %s)", n.name, h.info(n).DB)
	case "wipe":
		n := h.node(d, 0)
		n.db, n.stream, n.lastSeq = h.newDB(n), nil, 0
		h.printf("%s: data directory lost: an empty database (id %s) and a new, empty stream", n.name, h.info(n).DB)
	case "prune":
		n := h.node(d, 0)
		if len(n.stream) > 1 {
			n.stream = n.stream[len(n.stream)-1:]
		}
	case "idle":
		n := h.node(d, 0)
		h.step(n, lineage.PeerStream{Last: h.peerOf(n).lastSeq})
		n.cursor = 0
	case "backup":
		n := h.node(d, 0)
		n.backups[d.CmdArgs[1].Key] = n.db.Copy()
	case "restore":
		n := h.node(d, 0)
		n.db = n.backups[d.CmdArgs[1].Key].Copy()
		i := h.info(n)
		h.printf("%s: database restored from backup %s (id %s, log %d)", n.name, d.CmdArgs[1].Key, i.DB, i.LogHigh)
	case "fail":
		h.node(d, 0).fail = h.atoi(d, d.CmdArgs[1].Key)
	case "ask", "resync":
		n := h.node(d, 0)
		req := lineage.Request{Why: strings.Join(scripttest.Words(d, 1), " "), Operator: d.Cmd == "resync"}
		if err := n.recv.Step(req); err != nil {
			h.printf("%s: refused: %v", n.name, err)
		}
		h.flush(n, nil)
	case "pause", "resume":
		h.node(d, 0).paused = d.Cmd == "pause"
	case "tick":
		dur, err := time.ParseDuration(d.CmdArgs[0].Key)
		if err != nil {
			d.Fatalf(t, "%v", err)
		}
		h.now = h.now.Add(dur)
	case "inject":
		h.inject(d)
	case "rows":
		for _, name := range []string{"a", "b"} {
			h.printf("%s: %s", name, h.rows(h.nodes[name]))
		}
	case "check":
		h.check()
	default:
		d.Fatalf(t, "unknown command %q", d.Cmd)
	}
	return h.out.String()
}

// Check is the invariant checked after every command of a script: what
// the check command found.
func (h *harness) Check() error {
	if h.broken != "" {
		return fmt.Errorf("invariants broken:\n%s", h.broken)
	}
	return nil
}

func (h *harness) atoi(d *datadriven.TestData, s string) int { return scripttest.Int(h.t, d, s) }

func (h *harness) pair() {
	h.now, h.files, h.acked, h.ids = t0, storefake.NewFiles(), nil, 0
	h.nodes = map[string]*simNode{
		"a": {name: "a", master: true, backups: map[string]*storefake.Store{}},
		"b": {name: "b", backups: map[string]*storefake.Store{}},
	}
	for _, name := range []string{"a", "b"} {
		h.nodes[name].db = h.newDB(h.nodes[name])
	}
}

func (h *harness) newDB(n *simNode) *storefake.Store {
	side := store.Standby
	if n.master {
		side = store.Master
	}
	return storefake.New(storefake.Options{Side: side, Files: h.files, Now: func() time.Time { return h.now },
		NewID: func() string { h.ids++; return fmt.Sprintf("%s%d", n.name, h.ids) }})
}

func (h *harness) node(d *datadriven.TestData, i int) *simNode {
	return scripttest.Pick(h.t, d, i, h.nodes)
}

func (h *harness) peerOf(n *simNode) *simNode { return h.nodes[scripttest.Other(n.name)] }

func (h *harness) info(n *simNode) store.Info {
	i, err := n.db.Info(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return i
}

func (h *harness) position(n *simNode) (store.Position, bool) {
	p, ok, err := n.db.Position(context.Background(), h.peerOf(n).name)
	if err != nil {
		h.t.Fatal(err)
	}
	return p, ok
}

// start starts a node's replicator: the receiver from the position in its
// database, the shipper from its stream's last batch.
func (h *harness) start(n *simNode) {
	p, ok := h.position(n)
	n.recv = lineage.NewReceiver(lineage.Config{Master: n.master, Peer: h.peerOf(n).name,
		Pos: lineage.Position{DB: p.DB, Log: p.Log, Stream: p.Stream}, Have: ok})
	n.cur = lineage.Shipped{}
	if len(n.stream) > 0 {
		b := n.stream[len(n.stream)-1].b
		n.cur = lineage.Shipped{DB: b.DB, To: b.To, Have: true}
	}
	n.up, n.g, n.cursor, n.state, n.waiting = true, nil, 0, "", false
	h.printf("%s: replicator started (db %s, position %s)", n.name, h.info(n).DB, fmtPos(p, ok))
}

func fmtPos(p store.Position, ok bool) string {
	if !ok {
		return "none"
	}
	return fmt.Sprintf("%s@%d stream %d", p.DB, p.Log, p.Stream)
}

func (h *harness) publish(n *simNode, b *wire.Batch) {
	n.lastSeq++
	n.stream = append(n.stream, msg{seq: n.lastSeq, b: b})
}

// ship is one look of the shipper, as Service.shipOnce.
func (h *harness) ship(n *simNode) {
	ctx := context.Background()
	info := h.info(n)
	p, ok := h.position(n)
	plan := lineage.PlanShip(n.master, n.master || ok && p.DB != "", n.cur, lineage.Own{DB: info.DB, DBStart: info.DBStart, LogHigh: info.LogHigh, Shipped: info.Shipped, ShippedKnown: info.ShippedKnown})
	if n.paused {
		return
	}
	if plan.Kind != lineage.ShipGroup && plan.Kind != lineage.ShipNothing {
		h.printf("%s: ship %s", n.name, plan)
	}
	switch plan.Kind {
	case lineage.ShipNothing:
		return
	case lineage.ShipRestored:
		id, _ := n.db.NewID(ctx)
		info.DB = id
		if plan.Reconcile != "" {
			h.step(n, lineage.Request{Why: plan.Reconcile})
			return
		}
		fallthrough
	case lineage.ShipGenesis:
		if plan.Purge {
			n.stream = nil
		}
		b := &wire.Batch{Node: n.name, Master: n.master, DB: info.DB, Start: plan.At, From: plan.At, To: plan.At,
			Final: true, Genesis: &wire.Genesis{Reason: plan.Reason}}
		if !n.master {
			b.Genesis.Base = p.DB
		}
		h.publish(n, b)
		n.cur = lineage.Shipped{DB: info.DB, To: plan.At, Have: true}
		_ = n.db.SetShipped(ctx, n.cur.DB, n.cur.To)
		h.printf("%s: genesis of %s published at stream %d", n.name, info.DB, n.lastSeq)
		return
	}
	var cs []wire.Change
	to, _ := n.db.ReadLog(ctx, n.cur.To, func(c wire.Change) error { cs = append(cs, c); return nil })
	if to == n.cur.To {
		return
	}
	h.publish(n, &wire.Batch{Node: n.name, Master: n.master, DB: info.DB, Start: n.cur.To, From: n.cur.To, To: to, Final: true, Changes: cs})
	h.printf("%s: shipped (%d, %d] of %s at stream %d", n.name, n.cur.To, to, info.DB, n.lastSeq)
	n.cur.To = to
	_ = n.db.SetShipped(ctx, n.cur.DB, n.cur.To)
}

// receive runs the receive loop until it waits or has nothing to read.
func (h *harness) receive(n *simNode) {
	for range 10 {
		mv := n.recv.Next(h.now, n.paused)
		h.flush(n, nil)
		if mv.Kind != lineage.Wait {
			n.waiting = false
		}
		switch mv.Kind {
		case lineage.Reconcile:
			h.reconcile(n, mv.Why)
		case lineage.Wait:
			if !n.waiting {
				h.printf("%s: blocked, next attempt in %s", n.name, mv.Wait)
			}
			n.waiting = true
			return
		case lineage.Paused:
			return
		case lineage.Consume:
			if !h.consume(n) {
				return
			}
		}
	}
}

// consume delivers the peer's batches after the position; true when the
// machine stopped the consumer.
func (h *harness) consume(n *simNode) bool {
	p := h.peerOf(n)
	if n.cursor == 0 {
		pos, _ := n.recv.Position()
		n.cursor = pos.Stream
	}
	for _, m := range slices.Clone(p.stream) {
		if m.seq <= n.cursor {
			continue
		}
		n.cursor = m.seq
		in := lineage.Batch{Seq: m.seq, Node: m.b.Node, Master: m.b.Master, DB: m.b.DB, From: m.b.From, To: m.b.To, Final: m.b.Final}
		if g := m.b.Genesis; g != nil {
			in.Genesis = &lineage.Genesis{Reason: g.Reason, Base: g.Base}
			in.Local = h.info(n).DB
		}
		if h.step(n, in) {
			_ = n.recv.Step(lineage.Stopped{})
			h.flush(n, nil)
			n.cursor = 0
			return true
		}
		if n.recv == nil {
			return false
		}
	}
	return false
}

func (h *harness) reconcile(n *simNode, why string) {
	n.recons++
	p := h.peerOf(n)
	var err error
	switch {
	case n.fail > 0:
		n.fail--
		err = errors.New("ask the master for a snapshot: timeout")
	case !p.up:
		err = errors.New("ask the master for a snapshot: no responders")
	}
	in := lineage.Reconciled{Now: h.now, Err: err}
	if err == nil {
		ctx := context.Background()
		path := fmt.Sprintf("snap-%d", n.recons)
		if _, err := p.db.Snapshot(ctx, path); err != nil {
			h.t.Fatal(err)
		}
		rec, err := n.db.Restore(ctx, path, p.name, p.lastSeq)
		if err != nil {
			h.t.Fatal(err)
		}
		pos, ok := h.position(n)
		in.Pos, in.Have = lineage.Position{DB: pos.DB, Log: pos.Log, Stream: pos.Stream}, ok
		h.printf("%s: reconciled with %s's snapshot (%s): taken %d, kept %d, conflicts %d; now %s", n.name, p.name,
			fmtPos(pos, ok), rec.Taken, rec.Kept, len(rec.Conflicts), h.info(n).DB)
	}
	_ = n.recv.Step(in)
	h.flush(n, nil)
}

func (h *harness) inject(d *datadriven.TestData) {
	n := h.node(d, 0)
	b := &wire.Batch{Node: h.peerOf(n).name, Master: !n.master}
	var in lineage.Batch
	var genesis, base string
	for _, a := range d.CmdArgs[1:] {
		switch a.Key {
		case "seq":
			in.Seq = uint64(h.atoi(d, a.Vals[0]))
		case "db":
			b.DB = a.Vals[0]
		case "from":
			b.From = uint64(h.atoi(d, a.Vals[0]))
		case "to":
			b.To = uint64(h.atoi(d, a.Vals[0]))
		case "final":
			b.Final = true
		case "node":
			b.Node = a.Vals[0]
		case "genesis":
			genesis = a.Vals[0]
		case "base":
			base = a.Vals[0]
		default:
			d.Fatalf(h.t, "inject: unknown argument %q", a.Key)
		}
	}
	in.Node, in.Master, in.DB, in.From, in.To, in.Final = b.Node, b.Master, b.DB, b.From, b.To, b.Final
	if genesis != "" {
		in.Genesis = &lineage.Genesis{Reason: genesis, Base: base}
		in.Local = h.info(n).DB
	}
	h.step(n, in)
}

// step steps an input and carries out the Ready; true when it stopped the
// consumer.
func (h *harness) step(n *simNode, in lineage.Input) bool {
	if err := n.recv.Step(in); err != nil {
		h.printf("%s: refused: %v", n.name, err)
	}
	return h.flush(n, in)
}

// flush carries out a node's Ready, in the documented order.
func (h *harness) flush(n *simNode, in lineage.Input) bool {
	ctx := context.Background()
	stop := false
	for n.recv.HasReady() {
		rd := n.recv.Ready()
		n.recv.Advance()
		if rd.Verdict != "" {
			h.printf("%s: %s", n.name, rd.Verdict)
		}
		if rd.Abort && n.g != nil {
			_ = n.g.Rollback()
			n.g = nil
		}
		if rd.Part != nil {
			h.part(n, rd.Part, in.(lineage.Batch))
		}
		if rd.CheckPeerFirst {
			p := h.peerOf(n)
			first := p.lastSeq + 1
			if len(p.stream) > 0 {
				first = p.stream[0].seq
			}
			_ = n.recv.Step(lineage.PeerFirst{Seq: first, OK: true})
		}
		if rd.Restart {
			h.printf("%s: the consumer starts again from the position", n.name)
			n.cursor = 0
		}
		if p := rd.SetPosition; p != nil {
			_ = n.db.SetPosition(ctx, h.peerOf(n).name, store.Position{DB: p.DB, Log: p.Log, Stream: p.Stream})
		}
		for _, r := range rd.Rejects {
			if !strings.HasPrefix(rd.Verdict, "reject") {
				h.printf("%s: reject: %s", n.name, r)
			}
		}
		if st := rd.State; st != nil && st.Name+st.Reason != n.state {
			n.state = st.Name + st.Reason
			h.printf("%s: state %s %s", n.name, st.Name, st.Reason)
		}
		for _, e := range rd.Events {
			h.printf("%s: event %s: %s (retry in %s)", n.name, e.Type, e.Reason, e.RetryIn)
		}
		if a := rd.Applied; a != nil && a.Reconcile != "" {
			h.printf("%s → %s: reconcile: %s", n.name, h.peerOf(n).name, a.Reconcile)
			if p := h.peerOf(n); p.up && !p.master && lineage.AskCurrent(a.ReconcileDB, h.info(p).DB) {
				_ = p.recv.Step(lineage.Request{Why: "the master asks: " + a.Reconcile})
				h.flush(p, nil)
			} else if p.up && !p.master {
				h.printf("%s: ignores the request: about database %s, its own is %s", p.name, a.ReconcileDB, h.info(p).DB)
			}
		}
		stop = stop || rd.Stop
	}
	return stop
}

// part applies a part of the peer's group; the injected batches carry no
// changes.
func (h *harness) part(n *simNode, p *lineage.Part, b lineage.Batch) {
	ctx := context.Background()
	if p.New || n.g == nil {
		n.g, _ = n.db.Begin(ctx, h.peerOf(n).name, !n.master)
	}
	var changes []wire.Change
	for _, m := range h.peerOf(n).stream {
		if m.seq == b.Seq {
			changes = m.b.Changes
		}
	}
	pos, _ := n.recv.Position()
	if err := n.g.Apply(ctx, &wire.Batch{DB: b.DB, From: b.From, To: b.To, Changes: changes}, pos.Log); err != nil {
		h.t.Fatal(err)
	}
	if p.Commit == nil {
		return
	}
	c := *p.Commit
	res, err := n.g.Commit(ctx, store.Position{DB: c.DB, Log: c.Log, Stream: c.Stream})
	n.g = nil
	if err != nil {
		_ = n.recv.Step(lineage.GroupFailed{Err: err})
		return
	}
	if len(res.Conflicts) > 0 {
		h.printf("%s: %d conflicts, the master's versions won", n.name, len(res.Conflicts))
	}
	_ = n.recv.Step(lineage.Applied{Pos: c})
}

func (h *harness) rows(n *simNode) string {
	rows := n.db.Rows("t")
	var out []string
	for _, k := range slices.Sorted(maps.Keys(rows)) {
		out = append(out, k+"="+rows[k])
	}
	cs, _ := n.db.Conflicts(context.Background())
	s := "{" + strings.Join(out, " ") + "}"
	if len(cs) > 0 {
		var lost []string
		for _, c := range cs {
			lost = append(lost, c.PK+"="+c.LoserRow)
		}
		s += " conflicts {" + strings.Join(lost, " ") + "}"
	}
	return s
}

// check checks the invariants: both databases hold the same rows; every
// acknowledged write is on both nodes, or in both conflict tables, or
// overwritten by a later acknowledged write of the same key.
func (h *harness) check() {
	a, b := h.nodes["a"], h.nodes["b"]
	ra, rb := a.db.Rows("t"), b.db.Rows("t")
	ok := maps.Equal(ra, rb)
	if !ok {
		h.printf("DIVERGED: a %s, b %s", h.rows(a), h.rows(b))
	}
	lost := func(n *simNode, w write) bool {
		cs, _ := n.db.Conflicts(context.Background())
		for _, c := range cs {
			if c.PK == w.key && c.LoserRow == w.val {
				return false
			}
		}
		return true
	}
	for i, w := range h.acked {
		later := slices.ContainsFunc(h.acked[i+1:], func(x write) bool { return x.key == w.key })
		v, present := ra[w.key]
		kept := (w.val == "" && !present) || (present && v == w.val)
		if !later && !kept && (lost(a, w) || lost(b, w)) {
			ok = false
			h.printf("LOST: %s's write %s=%q", w.node, w.key, w.val)
		}
	}
	h.printf("check: %d acknowledged writes; databases equal and nothing lost: %v; reconciles a %d, b %d", len(h.acked), ok, a.recons, b.recons)
	if !ok {
		h.broken += h.out.String()
	}
}

func (h *harness) printf(format string, args ...any) {
	fmt.Fprintf(&h.out, "t=%s %s\n", h.now.Sub(t0), fmt.Sprintf(format, args...))
}

package lineage

import (
	"errors"
	"fmt"
	"time"
)

// FencedDB is the position's database id an older Tandem wrote while it
// served the standby a snapshot (batches of the standby's old id were not
// applied); kept so that such a position is still understood.
const FencedDB = "fenced"

// Position is how far the peer's lineage has been applied here.
type Position struct {
	DB     string // the peer's database id
	Log    uint64 // the last log sequence applied
	Stream uint64 // the last stream sequence applied (0: unknown)
}

// PeerLineage is how a batch of the peer's compares with the lineage this
// node follows.
type PeerLineage int

// Peer lineages.
const (
	PeerSame     PeerLineage = iota // continues the lineage followed
	PeerUnknown                     // no position yet (first start, a deleted or foreign database)
	PeerReplaced                    // the peer's database has another id (rebuilt, replaced, reconciled)
	PeerRestored                    // the peer announced it was restored from an older backup
)

func (p PeerLineage) String() string {
	return [...]string{"same", "unknown", "replaced", "restored-from-backup"}[p]
}

// ComparePeer compares a batch (db; genesis reason, "" for a batch of
// changes) with the position followed.
func ComparePeer(pos Position, have bool, db, genesis string) PeerLineage {
	switch {
	case !have || pos.DB == "":
		return PeerUnknown
	case db == pos.DB:
		return PeerSame
	case genesis == ReasonBackup:
		return PeerRestored
	}
	return PeerReplaced
}

// Config configures a Receiver.
type Config struct {
	Master bool   // this node is the master
	Peer   string // the peer's node name
	// Pos is the position read from the database at start; Have whether
	// there is one.
	Pos  Position
	Have bool
}

// Receiver is the decision machine of the receiving side: what to do with
// each of the peer's batches, when to reconcile and when to wait. It is not
// safe for concurrent use: the receive goroutine owns it.
type Receiver struct {
	cfg        Config
	pos        Position
	have       bool
	group      *group // the group being assembled
	reconcile  string // why a reconcile is needed, or ""
	blocked    bool   // this machine set the state "blocked"
	pendingGap *Batch // a batch that left a gap, waiting for PeerFirst
	retry      Backoff
	rd         Ready
}

type group struct{ start, to uint64 }

// NewReceiver starts a machine. The master seeds: a standby without a
// position in the master's lineage reconciles first.
func NewReceiver(c Config) *Receiver {
	r := &Receiver{cfg: c, pos: c.Pos, have: c.Have}
	if !c.Master && (!c.Have || c.Pos.DB == "") {
		r.reconcile = "no position in the master's changes (first start or a foreign database)"
	}
	return r
}

// Position is the position followed, and whether there is one.
func (r *Receiver) Position() (Position, bool) { return r.pos, r.have }

// Reconciling is why a reconcile is needed, or "".
func (r *Receiver) Reconciling() string { return r.reconcile }

// Blocked is the back-off's current wait and reason ("" when not blocked).
func (r *Receiver) Blocked() (time.Duration, string) { return r.retry.Delay(), r.retry.Reason() }

// MoveKind is what the receive loop does next.
type MoveKind int

// Moves.
const (
	Consume   MoveKind = iota // read the peer's stream after the position
	Reconcile                 // fetch the master's snapshot and merge it (store Restore); then Step(Reconciled)
	Wait                      // blocked: wait Move.Wait (or for a request), then ask again
	Paused                    // paused: wait for a resume (or a request)
)

func (k MoveKind) String() string { return [...]string{"consume", "reconcile", "wait", "paused"}[k] }

// Move is the loop's next move.
type Move struct {
	Kind MoveKind
	Why  string        // Reconcile: why
	Wait time.Duration // Wait: how long
}

// Next decides the loop's next move at now. A reconcile needed again soon
// after the last one waits out the back-off, in the state "blocked", with
// one ReplBlocked event per reason (R10: no loops). Pausing never delays a
// request: a paused node does not reconcile.
func (r *Receiver) Next(now time.Time, paused bool) Move {
	switch {
	case paused:
		return Move{Kind: Paused}
	case r.reconcile == "":
		return Move{Kind: Consume}
	}
	wait := r.retry.Wait(now)
	if wait <= 0 {
		r.abort()
		r.state("syncing", r.reconcile)
		return Move{Kind: Reconcile, Why: r.reconcile}
	}
	if r.retry.Reason() == "" {
		reason := "re-sync needed again soon after the last one: " + r.reconcile
		r.retry.SetReason(reason)
		r.event(Event{Type: EventBlocked, Reason: reason, RetryIn: wait})
	}
	r.setBlocked(r.retry.Reason())
	return Move{Kind: Wait, Wait: wait}
}

// Input is an input to Step.
type Input interface{ input() }

// Batch is the metadata of one message of the peer's stream, decoded.
type Batch struct {
	Seq    uint64 // its stream sequence
	Node   string // the node it says it is from
	Master bool   // whether it says it is from the master
	DB     string
	From   uint64 // the part's changes are in (From, To]
	To     uint64
	Final  bool // the group's last part
	// Genesis, for a genesis message: its reason, and Base, the master
	// database a standby says it was reconciled with.
	Genesis *Genesis
	// Local is this node's database id (the master checks a standby's
	// genesis against it).
	Local string
}

// Genesis is the announcement of a new lineage.
type Genesis struct{ Reason, Base string }

// Applied: the group ending at Pos was committed. Reconcile, when set, is
// why the group needs a reconcile after it (the store found the peer's
// schema changed in a way only a reconcile can follow); a standby does one.
type Applied struct {
	Pos       Position
	Reconcile string
}

// GroupFailed: the group could not be applied (bad input); nothing of it was.
type GroupFailed struct{ Err error }

// Reconciled: a reconcile ended at Now; Err nil means it succeeded and the
// position read back from the database is Pos (Have).
type Reconciled struct {
	Now  time.Time
	Err  error
	Pos  Position
	Have bool
}

// Request asks for a reconcile (the master, the shipper, a schema change;
// an operator when Operator). An operator's request runs at once: it
// resets the back-off, which only keeps automatic requests from looping.
type Request struct {
	Why      string
	Operator bool
}

// Stopped: the consumer stopped (an error, a restart): the group being
// assembled is dropped and will be read again.
type Stopped struct{}

// Discarded: an operator's discard (tandem repl resync --from PEER
// --discard) made this database equal to the peer's; the position read back
// is Pos (Have). No reconcile is needed any more, and the back-off is reset.
type Discarded struct {
	Pos  Position
	Have bool
}

// PeerFirst answers Ready.CheckPeerFirst: the first sequence the peer's
// stream holds, OK false when the peer could not be asked.
type PeerFirst struct {
	Seq uint64
	OK  bool
}

// PeerStream: the peer's batch stream ends at sequence Last (the driver
// looks when the consumer has been idle). A stream that ends below the
// position was recreated (the peer's data directory lost): its sequences
// started again at 1, and every batch of it would look already applied.
type PeerStream struct{ Last uint64 }

func (Batch) input()       {}
func (Applied) input()     {}
func (GroupFailed) input() {}
func (Reconciled) input()  {}
func (Request) input()     {}
func (Stopped) input()     {}
func (PeerStream) input()  {}
func (Discarded) input()   {}
func (PeerFirst) input()   {}

// ErrMasterSource refuses a reconcile request on the master.
var ErrMasterSource = errors.New("the master is the source of every resync")

// Step takes one input. Bad requests are errors and change nothing.
func (r *Receiver) Step(in Input) error {
	switch in := in.(type) {
	case Batch:
		r.batch(in)
	case Applied:
		r.applied(in)
	case GroupFailed:
		r.abort()
		r.setBlocked(in.Err.Error())
		r.reject(in.Err.Error())
		r.rd.Verdict = "group failed: " + in.Err.Error()
	case Reconciled:
		r.reconciled(in)
	case Request:
		if r.cfg.Master {
			return ErrMasterSource
		}
		r.reconcile = in.Why
		r.rd.Stop = true
		r.rd.Verdict = "reconcile: " + in.Why
		if in.Operator {
			r.retry = Backoff{}
			r.rd.Verdict += " (an operator's: the back-off is reset)"
		}
	case Stopped:
		r.abort()
	case PeerFirst:
		r.peerFirst(in)
	case Discarded:
		r.abort()
		r.pos, r.have = in.Pos, in.Have
		r.reconcile, r.retry, r.blocked = "", Backoff{}, false
		r.rd.Verdict = "discarded: equal to the peer's data"
	case PeerStream:
		if r.have && in.Last < r.pos.Stream {
			r.rd.Verdict = fmt.Sprintf("the peer's stream was recreated (it ends at %d, the position is %d): reading it from the start", in.Last, r.pos.Stream)
			r.abort()
			r.pos.Stream = 0
			r.rd.Stop = true
		}
	default:
		panic(fmt.Sprintf("lineage: unknown input %T", in))
	}
	return nil
}

func (r *Receiver) reconciled(in Reconciled) {
	if in.Err == nil {
		r.retry.Attempted(in.Now, "")
		r.reconcile = ""
		r.pos, r.have = in.Pos, in.Have
		r.blocked = false
		r.state("running", "")
		r.rd.Verdict = "reconciled"
		return
	}
	why := r.reconcile
	reason := "resync failed: " + in.Err.Error()
	if r.retry.Attempted(in.Now, reason) {
		r.event(Event{Type: EventBlocked, Reason: reason, RetryIn: r.retry.Delay(), Why: "R10: " + why})
	}
	r.setBlocked(reason)
	r.rd.Verdict = "reconcile failed: " + in.Err.Error()
}

func (r *Receiver) applied(in Applied) {
	r.group = nil
	r.pos, r.have = in.Pos, true
	if r.blocked {
		r.blocked = false
		r.state("running", "")
	}
	r.sendApplied("")
	if in.Reconcile != "" && !r.cfg.Master {
		r.needReconcile(PeerSame, in.Reconcile)
	}
}

// batch decides what to do with one message of the peer's stream.
func (r *Receiver) batch(b Batch) {
	if b.Node != r.cfg.Peer || b.Master == r.cfg.Master {
		r.reject(fmt.Sprintf("batch from node %q (master %v) in the stream of peer %q", b.Node, b.Master, r.cfg.Peer))
		return
	}
	if r.have && b.Seq <= r.pos.Stream {
		r.rd.Verdict = fmt.Sprintf("skip: stream %d already applied (position %d)", b.Seq, r.pos.Stream)
		return
	}
	if b.Genesis != nil {
		r.genesis(b)
		return
	}
	if !r.have || b.DB != r.pos.DB {
		rel := ComparePeer(r.pos, r.have, b.DB, "")
		switch {
		case r.pos.DB == FencedDB:
			r.rd.Verdict = "skip: a batch of the standby's old database"
		case !r.cfg.Master:
			r.needReconcile(rel, fmt.Sprintf("the master's database id is %s, this standby follows %q", b.DB, r.pos.DB))
		default:
			r.reject(fmt.Sprintf("wrong database id %q, the standby's database here is %q", b.DB, r.pos.DB))
		}
		return
	}
	r.part(b)
}

func (r *Receiver) needReconcile(rel PeerLineage, why string) {
	r.reconcile = why
	r.rd.Stop = true
	r.rd.Verdict = fmt.Sprintf("reconcile (peer lineage %s): %s", rel, why)
}

// genesis takes the announcement of a new lineage of the peer.
func (r *Receiver) genesis(b Batch) {
	r.abort()
	if !r.cfg.Master {
		rel := ComparePeer(r.pos, r.have, b.DB, b.Genesis.Reason)
		if rel == PeerSame {
			r.rd.Verdict = "skip: genesis of the lineage followed"
			return
		}
		r.needReconcile(rel, fmt.Sprintf("the master announced database id %s (%s)", b.DB, b.Genesis.Reason))
		return
	}
	if b.Genesis.Base != b.Local {
		why := fmt.Sprintf("the standby's database %s was restored from %q, not from this master's database %s", b.DB, b.Genesis.Base, b.Local)
		r.reject(why)
		r.askReconcile(b.DB, why)
		return
	}
	r.pos, r.have = Position{DB: b.DB, Log: b.To, Stream: b.Seq}, true
	p := r.pos
	r.rd.SetPosition = &p
	r.rd.Verdict = fmt.Sprintf("accept: the standby's new database id %s (%s)", b.DB, b.Genesis.Reason)
	r.sendApplied("")
}

// part adds a part to the group (starting, continuing or restarting it).
func (r *Receiver) part(b Batch) {
	p := &Part{}
	note := ""
	switch {
	case r.group != nil && b.From == r.group.to:
	case b.From <= r.pos.Log:
		if r.group != nil {
			note = " (the group restarts: shipped again)"
		}
		r.abort() // a group shipped again (after a crash of the shipper): start over
		r.group = &group{start: b.From, to: b.From}
		p.New = true
	case b.To <= r.pos.Log:
		r.rd.Verdict = "skip: already applied"
		return
	default:
		r.gap(b)
		return
	}
	r.group.to = b.To
	p.Start = r.group.start
	if b.Final {
		p.Commit = &Position{DB: b.DB, Log: b.To, Stream: b.Seq}
	}
	r.rd.Part = p
	r.rd.Verdict = fmt.Sprintf("apply (%d, %d] of group %d", b.From, b.To, r.group.start)
	if p.New && b.From < r.pos.Log {
		note = fmt.Sprintf(" (changes up to %d already applied are skipped)", r.pos.Log)
	}
	r.rd.Verdict += note
	if b.Final {
		r.rd.Verdict += ", commit"
	}
}

// gap handles a batch that starts after the position: the machine asks
// where the peer's stream starts (PeerFirst decides).
func (r *Receiver) gap(b Batch) {
	r.abort()
	r.pendingGap = &b
	r.rd.CheckPeerFirst = true
	r.rd.Verdict = fmt.Sprintf("gap: batch (%d, %d] after position %d; where does the peer's stream start?", b.From, b.To, r.pos.Log)
}

// peerFirst decides a gap. If the peer's stream still holds what follows
// the position (an ordered consumer can skip ahead across a cut link), the
// consumer starts again from there. If the peer has pruned it — it did so
// once this node acknowledged those changes — this database lost changes it
// had applied: it was restored from a backup taken before, with no write of
// its own since, which its own log cannot show. Its position cannot be
// trusted (R10): a standby reconciles, a master asks the standby to.
func (r *Receiver) peerFirst(in PeerFirst) {
	b := r.pendingGap
	r.pendingGap = nil
	if b == nil {
		return
	}
	if !in.OK || in.Seq <= r.pos.Stream+1 {
		r.reject(fmt.Sprintf("batch (%d, %d] of database %s leaves a gap after %d; reading again from there", b.From, b.To, b.DB, r.pos.Log))
		r.rd.Restart = true
		return
	}
	why := fmt.Sprintf("the peer's changes (%d, %d] of database %s are gone from its stream (it starts at %d): this database lost changes it had applied (restored from a backup?)",
		r.pos.Log, b.From, b.DB, in.Seq)
	r.reject(fmt.Sprintf("batch (%d, %d] leaves a gap: %s", b.From, b.To, why))
	if !r.cfg.Master {
		r.needReconcile(PeerSame, why)
		return
	}
	r.askReconcile(b.DB, why)
}

func (r *Receiver) abort() {
	if r.group != nil {
		r.rd.Abort = true
	}
	r.group = nil
}

func (r *Receiver) reject(why string) {
	r.rd.Rejects = append(r.rd.Rejects, why)
	if r.rd.Verdict == "" {
		r.rd.Verdict = "reject: " + why
	}
}

func (r *Receiver) sendApplied(why string) {
	a, ok := r.Ack()
	if !ok && why == "" {
		return
	}
	a.Reconcile = why
	r.rd.Applied = &a
}

// askReconcile asks the peer (a standby) to reconcile its database db.
func (r *Receiver) askReconcile(db, why string) {
	r.sendApplied(why)
	r.rd.Applied.ReconcileDB = db
}

func (r *Receiver) setBlocked(reason string) {
	r.blocked = true
	r.state("blocked", reason)
}

func (r *Receiver) state(s, reason string) { r.rd.State = &State{Name: s, Reason: reason} }

func (r *Receiver) event(e Event) { r.rd.Events = append(r.rd.Events, e) }

// Ack is the position to report to the peer now (periodically), and
// whether there is one.
func (r *Receiver) Ack() (Ack, bool) {
	if !r.have {
		return Ack{}, false
	}
	a := r.pos
	if a.DB == FencedDB {
		a.DB = ""
	}
	return Ack{Pos: a}, true
}

package replicator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/lineage"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// memGroupLimit is how many bytes of a group's parts are held in memory
// before applying starts (then the parts go straight into the open
// transaction, which holds the database's write lock until the final part).
const memGroupLimit = 32 << 20

// pullBytes bounds the bytes of the peer's batches requested at a time:
// several of the largest messages, a small part of what the link carries in
// a heartbeat interval.
const pullBytes = 4 * wire.MaxSize

// pullMsgs bounds the peer's batches requested and not yet taken by the
// receiver, and with it the bytes on the link and held here: pullBytes
// alone does not (nats.go asks again as soon as fewer than half of the
// messages asked for wait to be taken, and a pull that its byte limit ended
// counts only what it delivered). At 256, up to 128 parts of a large row
// (about 25 MiB) could be on their way at once, ahead of the master's
// heartbeats on the same link. 16 parts are at most pullBytes of a large
// row, and hold thousands of small rows.
const pullMsgs = 16

var (
	errResync  = errors.New("resync needed")
	errRestart = errors.New("consumer restart")
	errPaused  = errors.New("paused")
)

// ctlReq is a request to the receiver goroutine.
type ctlReq struct {
	kind string // "resync" (the standby); "operator": a resync an operator asked for; "discard"
	why  string
	done chan error // nil: no answer wanted
	// discarded receives the outcome of a "discard".
	discarded chan discardResult
}

// group is the group being assembled from the peer's parts: its parts held
// in memory until applying starts, then its open transaction.
type group struct {
	parts []*wire.Batch
	size  int
	tx    store.Apply
	last  time.Time // when its last part arrived
	large bool      // it holds a row in pieces (largeBegin)
}

// receiveStore is what the receiver uses of the store.
type receiveStore interface {
	store.Applier
	store.Reconciler
	store.Discarder
	Info(ctx context.Context) (store.Info, error)
	Refused() map[string]string
}

// receiver applies the peer's batches, and reconciles or discards when the
// decision machine (package lineage) or an operator says so. The goroutine
// run owns the machine, the consumer and the group being assembled;
// requests from other goroutines reach it through ctl; what status shows
// of it (in) is guarded by mu.
type receiver struct {
	pair, node, peer string
	peerDom          string
	master           bool
	nc               *nats.Conn
	st               receiveStore
	log              zerolog.Logger
	rep              *reporter
	met              *metrics
	board            *board
	pause            *pause
	ship             *shipper   // held while a discard runs here
	fetch            *snapFetch // the peer's snapshots
	groupTTL         time.Duration
	hook             func(uint64) error // fault hook: BeforeApply
	ctl              chan ctlReq        // to run
	resume           chan struct{}      // size 1: look at the pause now
	wake             chan struct{}      // the shipper's

	mu sync.Mutex // guards in
	in inStatus

	// Owned by run:
	m        *lineage.Receiver
	g        *group
	lastSent time.Time
	// lastApplied is the last message sendApplied published.
	lastApplied []byte
	peerJS      jetstream.JetStream
	lastMsg     time.Time // when the consumer last delivered
	lastSeq     uint64    // the stream sequence it last delivered
	checked     time.Time // when the peer's stream was last looked at
}

// run is the receiver goroutine: it applies the peer's batches, and
// reconciles with the master when the machine says so.
func (r *receiver) run(ctx context.Context) error {
	p, ok, err := r.st.Position(ctx, r.peer)
	if err != nil {
		return fmt.Errorf("replicator: read position: %w", err)
	}
	r.setIn(p)
	r.m = lineage.NewReceiver(lineage.Config{Master: r.master, Peer: r.peer, Pos: toLineage(p), Have: ok})
	defer r.abort() // a group still open ends with the receiver (and its large row, if any)
	for ctx.Err() == nil {
		mv := r.m.Next(time.Now(), r.pause.on())
		if err := r.carryOut(ctx, nil); err != nil && !errors.Is(err, errResync) {
			return err
		}
		switch mv.Kind {
		case lineage.Reconcile:
			if err := r.reconcile(ctx, mv.Why); err != nil {
				return err
			}
		case lineage.Wait:
			r.waitBlocked(ctx, mv.Wait)
		case lineage.Paused:
			r.waitPaused(ctx)
		case lineage.Consume:
			if err := r.consumeOnce(ctx); err != nil {
				return err
			}
		}
	}
	return nil
}

// consumeOnce consumes until something needs the loop, and drops the group
// being assembled; only a fault hook's error ends the receiver.
func (r *receiver) consumeOnce(ctx context.Context) error {
	err := r.consume(ctx)
	_ = r.m.Step(lineage.Stopped{})
	if herr := r.carryOut(ctx, nil); errors.Is(herr, errHook) {
		return herr
	}
	switch {
	case errors.Is(err, errHook):
		return err
	case errors.Is(err, errResync), errors.Is(err, errPaused), errors.Is(err, errRestart):
	case err != nil && ctx.Err() == nil:
		r.log.Debug().Err(err).Msg("reading the peer's batches")
		// Until it first reads the peer's stream, the state is "starting":
		// say why it is still (the link or the peer is down).
		r.board.explain("starting", fmt.Sprintf("cannot read %s's batches: %v", r.peer, err))
		r.mu.Lock()
		r.in.pending = 0
		r.mu.Unlock()
		clock.Sleep(ctx, 250*time.Millisecond)
	}
	return nil
}

// waitBlocked waits out the back-off, still answering control requests.
func (r *receiver) waitBlocked(ctx context.Context, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case req := <-r.ctl:
		r.control(ctx, req) //nolint:errcheck
	}
}

// status is what status shows of the receiver.
func (r *receiver) status() inStatus {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.in
}

func toLineage(p store.Position) lineage.Position {
	return lineage.Position{DB: p.DB, Log: p.Log, Stream: p.Stream}
}

func (r *receiver) setIn(p store.Position) {
	r.mu.Lock()
	r.in.db, r.in.applied = p.DB, p.Log
	r.mu.Unlock()
}

// carryOut carries out the machine's Ready in the order lineage.Ready
// documents, for as long as there is one (an apply's outcome is stepped
// back in). b is the batch the input was about, if any. It returns
// errResync when the machine stops the consumer, and a fault hook's error.
func (r *receiver) carryOut(ctx context.Context, b *wire.Batch) error {
	stop, restart := false, false
	for r.m.HasReady() {
		rd := r.m.Ready()
		r.m.Advance()
		if rd.Verdict != "" {
			r.log.Debug().Str("verdict", rd.Verdict).Msg("replication decision")
		}
		if rd.Abort {
			r.abort()
		}
		if rd.Part != nil {
			if ferr := r.fetchPieces(ctx, b); ferr != nil {
				restart = restart || !errors.Is(ferr, errRefused)
				if err := r.pieceFailed(ferr); err != nil {
					return err
				}
			} else if err := r.applyPart(ctx, rd.Part, b); err != nil {
				return err
			}
		}
		if p := rd.SetPosition; p != nil {
			if err := r.st.SetPosition(ctx, r.peer, store.Position{DB: p.DB, Log: p.Log, Stream: p.Stream}); err != nil {
				return err
			}
			r.log.Info().Str("db", p.DB).Str("verdict", rd.Verdict).Msg("the standby's new database id accepted")
			r.setIn(store.Position{DB: p.DB, Log: p.Log})
		}
		if rd.CheckPeerFirst {
			first, ok := r.peerFirstSeq(ctx)
			_ = r.m.Step(lineage.PeerFirst{Seq: first, OK: ok})
		}
		for _, why := range rd.Rejects {
			r.rep.reject("batch", subject.ReplChanges(r.pair, r.peer), fmt.Errorf("%w: %s", wire.ErrInvalid, why))
		}
		if rd.State != nil {
			r.board.set(rd.State.Name, rd.State.Reason)
		}
		for _, e := range rd.Events {
			r.emitDecision(e)
		}
		if rd.Applied != nil {
			r.sendApplied(*rd.Applied, false)
		}
		stop = stop || rd.Stop
		restart = restart || rd.Restart
	}
	if restart {
		clock.Sleep(ctx, 250*time.Millisecond)
		return errRestart
	}
	if stop {
		return errResync
	}
	return nil
}

// emitDecision publishes an event the machine asked for.
func (r *receiver) emitDecision(e lineage.Event) {
	data := event.Blocked{Why: event.Because(e.Reason), RetryInSeconds: e.RetryIn.Seconds(), Attempt: e.Why}
	r.log.Warn().Dur("retry_in", e.RetryIn).Str("reason", e.Reason).Msg("replication blocked")
	r.rep.emit(event.ReplBlocked, data)
}

// waitPaused waits for a resume, still answering control requests, and
// tells the peer its position (and that it is paused) every second.
func (r *receiver) waitPaused(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.resume:
			return
		case req := <-r.ctl:
			r.control(ctx, req) //nolint:errcheck
			return
		case <-tick.C:
			if ack, ok := r.m.Ack(); ok {
				r.sendApplied(ack, true)
			}
		}
	}
}

// consume reads the peer's stream after the position until something
// needs the loop (an error, a resync, a pause).
func (r *receiver) consume(ctx context.Context) error {
	js, err := jetstream.NewWithDomain(r.nc, r.peerDom)
	if err != nil {
		return err
	}
	r.peerJS, r.lastMsg, r.lastSeq = js, time.Now(), 0
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject.ReplChanges(r.pair, r.peer)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if pos, _ := r.m.Position(); pos.Stream > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos.Stream+1
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	oc, err := js.OrderedConsumer(cctx, subject.ReplStream(r.pair, r.peer), cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("consumer on %s: %w", subject.ReplStream(r.pair, r.peer), err)
	}
	// Bytes in flight are bounded too: the batches share the link to the
	// peer with its heartbeats, which must not wait behind hundreds of
	// megabytes of a large row's parts (a false failover).
	it, err := oc.Messages(jetstream.PullMaxMessagesWithBytesLimit(pullMsgs, pullBytes))
	if err != nil {
		return err
	}
	msgs, done := make(chan jetstream.Msg), make(chan struct{})
	pumpErr := make(chan error, 1)
	go func() {
		for {
			m, err := it.Next()
			if err != nil {
				pumpErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-done:
				return
			}
		}
	}()
	defer func() { close(done); it.Stop() }()
	r.board.set(r.runningState(), "")
	return r.receiveLoop(ctx, msgs, pumpErr)
}

func (r *receiver) runningState() string {
	if st, _ := r.board.get(); st == "blocked" {
		return st
	}
	return "running"
}

func (r *receiver) receiveLoop(ctx context.Context, msgs <-chan jetstream.Msg, pumpErr <-chan error) error {
	tick := clock.NewBeat(time.Second) // on the whole second, with the node's other periodic jobs
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-pumpErr:
			return err
		case m := <-msgs:
			r.lastMsg = time.Now()
			if meta, err := m.Metadata(); err == nil {
				r.lastSeq = meta.Sequence.Stream
			}
			if err := r.handle(ctx, m); err != nil {
				return err
			}
			// A batch that took long to apply (a large transaction) is
			// no silence of the consumer's.
			r.lastMsg = time.Now()
		case req := <-r.ctl:
			if err := r.control(ctx, req); err != nil {
				return err
			}
		case <-r.resume:
			if r.pause.on() {
				return errPaused
			}
		case <-tick.C:
			tick.Next()
			if r.g != nil && r.g.tx != nil && time.Since(r.g.last) > r.groupTTL {
				r.log.Warn().Dur("waited", time.Since(r.g.last)).Msg("a group's parts stopped coming; reading it again")
				return errRestart
			}
			if ack, ok := r.m.Ack(); ok {
				r.sendApplied(ack, true)
			}
			if r.consumerStalled(ctx) {
				return errRestart
			}
		}
	}
}

// stallAfter is how long a consumer may deliver nothing before the peer's
// stream is looked at.
const stallAfter = 5 * time.Second

// consumerStalled reports whether the peer's stream holds batches after the
// position while the consumer has delivered nothing for stallAfter (also in
// the middle of a group: its parts are read again from the position). An
// ordered consumer that lost its server-side half across a cut leafnode
// does not always recover by itself after the heal; a new one does.
func (r *receiver) consumerStalled(ctx context.Context) bool {
	now := time.Now()
	if now.Sub(r.lastMsg) < stallAfter || now.Sub(r.checked) < stallAfter {
		return false
	}
	r.checked = now
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := r.peerJS.Stream(cctx, subject.ReplStream(r.pair, r.peer))
	if err != nil {
		return false // the peer is out of reach: nothing to restart for
	}
	last := st.CachedInfo().State.LastSeq
	_ = r.m.Step(lineage.PeerStream{Last: last})
	if err := r.carryOut(ctx, nil); err != nil {
		return true // the machine restarts the consumer from the new position
	}
	pos, _ := r.m.Position()
	if last <= max(pos.Stream, r.lastSeq) {
		r.mu.Lock()
		r.in.pending = 0 // the last delivery's count is stale: nothing waits
		r.mu.Unlock()
		return false
	}
	r.log.Warn().Uint64("position", max(pos.Stream, r.lastSeq)).Uint64("peer_last", last).
		Msg("the peer's stream has batches the consumer does not deliver; starting a new consumer")
	return true
}

// control carries out a request from another goroutine.
func (r *receiver) control(ctx context.Context, req ctlReq) error {
	if req.kind == "discard" {
		rec, derr := r.discardFrom(ctx)
		req.discarded <- discardResult{rec: rec, err: derr}
		if req.done != nil {
			req.done <- nil
		}
		return errRestart
	}
	err := r.m.Step(lineage.Request{Why: req.why, Operator: req.kind == "operator"})
	if req.done != nil {
		req.done <- err
	}
	if err != nil {
		return nil
	}
	return r.carryOut(ctx, nil)
}

// askResync asks the receiver (of a standby) to re-sync.
func (r *receiver) askResync(why string) { r.ask(ctlReq{kind: "resync", why: why}) }

// ask hands a request to the receiver without waiting for it.
func (r *receiver) ask(req ctlReq) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case r.ctl <- req:
		case <-ctx.Done():
		}
	}()
}

// abort drops the group being assembled.
func (r *receiver) abort() {
	if r.g != nil && r.g.tx != nil {
		_ = r.g.tx.Rollback()
	}
	r.dropGroup()
}

// dropGroup forgets the group being assembled (applied or aborted).
func (r *receiver) dropGroup() {
	if r.g != nil && r.g.large {
		largeEnd()
	}
	r.g = nil
}

// handle takes one message of the peer's stream: the machine decides, the
// driver carries it out.
func (r *receiver) handle(ctx context.Context, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.in.pending = meta.NumPending
	r.mu.Unlock()
	b, err := wire.Decode(m.Data(), r.pair)
	if err != nil {
		r.rep.reject("batch", m.Subject(), err)
		return nil
	}
	in := lineage.Batch{Seq: meta.Sequence.Stream, Node: b.Node, Master: b.Master, DB: b.DB, From: b.From, To: b.To, Final: b.Final}
	if b.Genesis != nil {
		in.Genesis = &lineage.Genesis{Reason: b.Genesis.Reason, Base: b.Genesis.Base}
		if r.master {
			info, err := r.st.Info(ctx)
			if err != nil {
				return err
			}
			in.Local = info.DB
		}
	}
	if err := r.m.Step(in); err != nil {
		return err
	}
	return r.carryOut(ctx, b)
}

// peerFirstSeq is the first sequence the peer's batch stream holds; false
// when the peer cannot be asked.
func (r *receiver) peerFirstSeq(ctx context.Context) (uint64, bool) {
	if r.peerJS == nil {
		return 0, false
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := r.peerJS.Stream(cctx, subject.ReplStream(r.pair, r.peer))
	if err != nil {
		return 0, false
	}
	return st.CachedInfo().State.FirstSeq, true
}

// applyPart adds a part to the group (held in memory until the group is
// final or large, then applied in the group's transaction) and commits the
// group at its final part.
func (r *receiver) applyPart(ctx context.Context, p *lineage.Part, b *wire.Batch) error {
	if p.New || r.g == nil {
		r.abort()
		r.g = &group{}
	}
	g := r.g
	g.last = time.Now()
	if !g.large && hasPieces(b) {
		largeBegin()
		g.large = true
	}
	if g.tx == nil {
		g.parts = append(g.parts, b)
		for _, c := range b.Changes {
			g.size += len(c.Row) + len(c.Chunk) + 128
		}
	} else if err := g.tx.Apply(ctx, b, r.appliedLog()); err != nil {
		return r.groupFailed(err)
	}
	// A row in pieces goes straight into the transaction: its parts are
	// not held as well.
	if g.tx == nil && (g.size > memGroupLimit || p.Commit != nil || g.large) {
		if err := r.beginGroup(ctx); err != nil {
			return r.groupFailed(err)
		}
	}
	if p.Commit == nil {
		return nil
	}
	return r.commitGroup(ctx, *p.Commit)
}

// hasPieces reports whether b carries a piece of a row too large for one
// message.
func hasPieces(b *wire.Batch) bool {
	for i := range b.Changes {
		if b.Changes[i].Pieces > 0 {
			return true
		}
	}
	return false
}

// appliedLog is the last log sequence of the peer applied here.
func (r *receiver) appliedLog() uint64 {
	p, _ := r.m.Position()
	return p.Log
}

func (r *receiver) beginGroup(ctx context.Context) error {
	tx, err := r.st.Begin(ctx, r.peer, !r.master)
	if err != nil {
		return err
	}
	r.g.tx = tx
	if h, ok := tx.(interface{ SetBeforeChange(func(uint64) error) }); ok && r.hook != nil {
		h.SetBeforeChange(func(seq uint64) error {
			if err := r.hook(seq); err != nil {
				return fmt.Errorf("%w: %w", errHook, err)
			}
			return nil
		})
	}
	for _, p := range r.g.parts {
		if err := tx.Apply(ctx, p, r.appliedLog()); err != nil {
			return err
		}
	}
	r.g.parts = nil
	return nil
}

// groupFailed drops a group that cannot be applied: a fault hook ends the
// service as a crash would; anything else is bad input, which the machine
// reports and shows as "blocked".
func (r *receiver) groupFailed(err error) error {
	r.abort()
	if errors.Is(err, errHook) {
		return err
	}
	return r.m.Step(lineage.GroupFailed{Err: err})
}

func (r *receiver) commitGroup(ctx context.Context, lp lineage.Position) error {
	p := store.Position{DB: lp.DB, Log: lp.Log, Stream: lp.Stream}
	res, err := r.g.tx.Commit(ctx, p)
	r.dropGroup()
	if err != nil {
		return r.groupFailed(err)
	}
	now := time.Now()
	if res.LastTS > 0 {
		lag := now.Sub(time.Unix(0, int64(res.LastTS*1e9)))
		r.met.lag.Observe(max(lag.Seconds(), 0))
	}
	r.mu.Lock()
	r.in = inStatus{db: p.DB, applied: p.Log, pending: r.in.pending, lastTS: res.LastTS, at: now}
	r.mu.Unlock()
	r.met.rowsApplied.Add(float64(res.Applied))
	r.met.groupsApplied.Inc()
	r.met.conflicts.Add(float64(len(res.Conflicts)))
	for _, c := range res.Conflicts {
		r.reportConflict(c)
	}
	return r.m.Step(lineage.Applied{Pos: lp, Reconcile: res.Resync})
}

func (r *receiver) reportConflict(c store.Conflict) {
	winner, loser := r.node, r.peer
	if !r.master {
		winner, loser = r.peer, r.node
	}
	data := event.Conflict{Table: c.Table, PK: c.PK, Kind: c.Kind, Winner: winner, Loser: loser,
		LoserOp: c.LoserOp, WinnerVersion: c.WinnerVer.String(), LoserVersion: c.LoserVer.String(),
		Why: event.Because("R3: concurrent changes of one row; the master's version wins")}
	if c.LoserRow != "" {
		data.LoserRow = json.RawMessage(c.LoserRow)
	}
	r.log.Info().Str("table", c.Table).Str("pk", c.PK).Str("kind", c.Kind).Msg("conflict: the master's version wins")
	r.rep.emit(event.ReplConflict, data)
}

// appliedRepeat is how often a periodic call repeats a position the peer
// was already told (a core NATS message may be lost across a link that
// drops): an idle pair sends nothing new, and a message a second each way
// kept both nodes and the link busy for nothing.
const appliedRepeat = 5 * time.Second

// sendApplied tells the peer how far its batches are applied (at most
// every 100 ms unless forced by a reconcile request). Periodic calls pass
// tick: they send what changed since the last message, a reconcile
// request every time, and the same position again only after
// appliedRepeat.
func (r *receiver) sendApplied(ack lineage.Ack, tick bool) {
	if ack.Reconcile == "" && !tick && time.Since(r.lastSent) < 100*time.Millisecond {
		return
	}
	a := wire.Applied{V: wire.Version, Pair: r.pair, Node: r.node, Log: ack.Pos.Log, Stream: ack.Pos.Stream,
		Resync: ack.Reconcile != "", Reason: ack.Reconcile, Paused: r.pause.on(), PauseAt: r.pause.decided()}
	if a.Resync && wire.ValidDB(ack.ReconcileDB) {
		a.ResyncDB = ack.ReconcileDB
	}
	if wire.ValidDB(ack.Pos.DB) {
		a.DB = ack.Pos.DB
	}
	b, _ := json.Marshal(a)
	if tick && !a.Resync && bytes.Equal(b, r.lastApplied) && time.Since(r.lastSent) < appliedRepeat {
		return
	}
	r.lastSent, r.lastApplied = time.Now(), b
	_ = r.nc.Publish(subject.ReplApplied(r.pair, r.peer), b)
}

package replicator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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

// receiver is the state owned by the receive goroutine: the decision
// machine (package lineage) and what carrying out its decisions needs.
type receiver struct {
	m        *lineage.Receiver
	g        *group
	lastSent time.Time
	peerJS   jetstream.JetStream
	lastMsg  time.Time // when the consumer last delivered
	lastSeq  uint64    // the stream sequence it last delivered
	checked  time.Time // when the peer's stream was last looked at
}

// runReceive is the receiver goroutine: it applies the peer's batches, and
// reconciles with the master when the machine says so.
func (s *Service) runReceive(ctx context.Context) error {
	p, ok, err := s.st.Position(ctx, s.peer)
	if err != nil {
		return fmt.Errorf("replicator: read position: %w", err)
	}
	s.setIn(p)
	r := &receiver{m: lineage.NewReceiver(lineage.Config{Master: s.master(), Peer: s.peer, Pos: toLineage(p), Have: ok})}
	defer s.abort(r) // a group still open ends with the receiver (and its large row, if any)
	for ctx.Err() == nil {
		mv := r.m.Next(time.Now(), s.paused.Load())
		if err := s.carryOut(ctx, r, nil); err != nil && !errors.Is(err, errResync) {
			return err
		}
		switch mv.Kind {
		case lineage.Reconcile:
			if err := s.reconcile(ctx, r, mv.Why); err != nil {
				return err
			}
		case lineage.Wait:
			s.waitBlocked(ctx, r, mv.Wait)
		case lineage.Paused:
			s.waitPaused(ctx, r)
		case lineage.Consume:
			if err := s.consumeOnce(ctx, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// consumeOnce consumes until something needs the loop, and drops the group
// being assembled; only a fault hook's error ends the receiver.
func (s *Service) consumeOnce(ctx context.Context, r *receiver) error {
	err := s.consume(ctx, r)
	_ = r.m.Step(lineage.Stopped{})
	if herr := s.carryOut(ctx, r, nil); errors.Is(herr, errHook) {
		return herr
	}
	switch {
	case errors.Is(err, errHook):
		return err
	case errors.Is(err, errResync), errors.Is(err, errPaused), errors.Is(err, errRestart):
	case err != nil && ctx.Err() == nil:
		s.log.Debug().Err(err).Msg("reading the peer's batches")
		s.mu.Lock()
		s.in.pending = 0
		s.mu.Unlock()
		clock.Sleep(ctx, 250*time.Millisecond)
	}
	return nil
}

// waitBlocked waits out the back-off, still answering control requests.
func (s *Service) waitBlocked(ctx context.Context, r *receiver, wait time.Duration) {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case req := <-s.ctl:
		s.control(ctx, r, req) //nolint:errcheck
	}
}

func toLineage(p store.Position) lineage.Position {
	return lineage.Position{DB: p.DB, Log: p.Log, Stream: p.Stream}
}

func (s *Service) setIn(p store.Position) {
	s.mu.Lock()
	s.in.db, s.in.applied = p.DB, p.Log
	s.mu.Unlock()
}

// carryOut carries out the machine's Ready in the order lineage.Ready
// documents, for as long as there is one (an apply's outcome is stepped
// back in). b is the batch the input was about, if any. It returns
// errResync when the machine stops the consumer, and a fault hook's error.
func (s *Service) carryOut(ctx context.Context, r *receiver, b *wire.Batch) error {
	stop, restart := false, false
	for r.m.HasReady() {
		rd := r.m.Ready()
		r.m.Advance()
		if rd.Verdict != "" {
			s.log.Debug().Str("verdict", rd.Verdict).Msg("replication decision")
		}
		if rd.Abort {
			s.abort(r)
		}
		if rd.Part != nil {
			if err := s.applyPart(ctx, r, rd.Part, b); err != nil {
				return err
			}
		}
		if p := rd.SetPosition; p != nil {
			if err := s.st.SetPosition(ctx, s.peer, store.Position{DB: p.DB, Log: p.Log, Stream: p.Stream}); err != nil {
				return err
			}
			s.log.Info().Str("db", p.DB).Str("verdict", rd.Verdict).Msg("the standby's new database id accepted")
			s.setIn(store.Position{DB: p.DB, Log: p.Log})
		}
		if rd.CheckPeerFirst {
			first, ok := s.peerFirstSeq(ctx, r)
			_ = r.m.Step(lineage.PeerFirst{Seq: first, OK: ok})
		}
		for _, why := range rd.Rejects {
			s.reject("batch", subject.ReplChanges(s.cfg.Pair, s.peer), fmt.Errorf("%w: %s", wire.ErrInvalid, why))
		}
		if rd.State != nil {
			s.setState(rd.State.Name, rd.State.Reason)
		}
		for _, e := range rd.Events {
			s.emitDecision(e)
		}
		if rd.Applied != nil {
			s.sendApplied(r, *rd.Applied, false)
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
func (s *Service) emitDecision(e lineage.Event) {
	data := event.Blocked{Why: event.Because(e.Reason), RetryInSeconds: e.RetryIn.Seconds(), Attempt: e.Why}
	s.log.Warn().Dur("retry_in", e.RetryIn).Str("reason", e.Reason).Msg("replication blocked")
	s.emit(event.ReplBlocked, data)
}

// waitPaused waits for a resume, still answering control requests, and
// tells the peer its position (and that it is paused) every second.
func (s *Service) waitPaused(ctx context.Context, r *receiver) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.resume:
			return
		case req := <-s.ctl:
			s.control(ctx, r, req) //nolint:errcheck
			return
		case <-tick.C:
			if ack, ok := r.m.Ack(); ok {
				s.sendApplied(r, ack, true)
			}
		}
	}
}

// consume reads the peer's stream after the position until something
// needs the loop (an error, a resync, a pause).
func (s *Service) consume(ctx context.Context, r *receiver) error {
	js, err := jetstream.NewWithDomain(s.nc, s.peerDom)
	if err != nil {
		return err
	}
	r.peerJS, r.lastMsg, r.lastSeq = js, time.Now(), 0
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{subject.ReplChanges(s.cfg.Pair, s.peer)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	if pos, _ := r.m.Position(); pos.Stream > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, pos.Stream+1
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	oc, err := js.OrderedConsumer(cctx, subject.ReplStream(s.cfg.Pair, s.peer), cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("consumer on %s: %w", subject.ReplStream(s.cfg.Pair, s.peer), err)
	}
	// Bytes in flight are bounded too: the batches share the link to the
	// peer with its heartbeats, which must not wait behind hundreds of
	// megabytes of a large row's parts (a false failover).
	it, err := oc.Messages(jetstream.PullMaxMessagesWithBytesLimit(256, pullBytes))
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
	s.setState(s.runningState(), "")
	return s.receiveLoop(ctx, r, msgs, pumpErr)
}

func (s *Service) runningState() string {
	if st, _ := s.stateNow(); st == "blocked" {
		return st
	}
	return "running"
}

func (s *Service) receiveLoop(ctx context.Context, r *receiver, msgs <-chan jetstream.Msg, pumpErr <-chan error) error {
	tick := time.NewTicker(time.Second)
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
			if err := s.handle(ctx, r, m); err != nil {
				return err
			}
		case req := <-s.ctl:
			if err := s.control(ctx, r, req); err != nil {
				return err
			}
		case <-s.resume:
			if s.paused.Load() {
				return errPaused
			}
		case <-tick.C:
			if r.g != nil && r.g.tx != nil && time.Since(r.g.last) > s.groupTTL {
				s.log.Warn().Dur("waited", time.Since(r.g.last)).Msg("a group's parts stopped coming; reading it again")
				return errRestart
			}
			if ack, ok := r.m.Ack(); ok {
				s.sendApplied(r, ack, true)
			}
			if s.consumerStalled(ctx, r) {
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
func (s *Service) consumerStalled(ctx context.Context, r *receiver) bool {
	now := time.Now()
	if now.Sub(r.lastMsg) < stallAfter || now.Sub(r.checked) < stallAfter {
		return false
	}
	r.checked = now
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := r.peerJS.Stream(cctx, subject.ReplStream(s.cfg.Pair, s.peer))
	if err != nil {
		return false // the peer is out of reach: nothing to restart for
	}
	last := st.CachedInfo().State.LastSeq
	_ = r.m.Step(lineage.PeerStream{Last: last})
	if err := s.carryOut(ctx, r, nil); err != nil {
		return true // the machine restarts the consumer from the new position
	}
	pos, _ := r.m.Position()
	if last <= max(pos.Stream, r.lastSeq) {
		s.mu.Lock()
		s.in.pending = 0 // the last delivery's count is stale: nothing waits
		s.mu.Unlock()
		return false
	}
	s.log.Warn().Uint64("position", max(pos.Stream, r.lastSeq)).Uint64("peer_last", last).
		Msg("the peer's stream has batches the consumer does not deliver; starting a new consumer")
	return true
}

// control carries out a request from another goroutine.
func (s *Service) control(ctx context.Context, r *receiver, req ctlReq) error {
	if req.kind == "discard" {
		rec, derr := s.discardFrom(ctx, r)
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
	return s.carryOut(ctx, r, nil)
}

// askResync asks the receiver (of a standby) to re-sync.
func (s *Service) askResync(why string) { s.ask(ctlReq{kind: "resync", why: why}) }

// ask hands a request to the receiver without waiting for it.
func (s *Service) ask(req ctlReq) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case s.ctl <- req:
		case <-ctx.Done():
		}
	}()
}

// abort drops the group being assembled.
func (s *Service) abort(r *receiver) {
	if r.g != nil && r.g.tx != nil {
		_ = r.g.tx.Rollback()
	}
	s.dropGroup(r)
}

// dropGroup forgets the group being assembled (applied or aborted).
func (s *Service) dropGroup(r *receiver) {
	if r.g != nil && r.g.large {
		largeEnd()
	}
	r.g = nil
}

// handle takes one message of the peer's stream: the machine decides, the
// driver carries it out.
func (s *Service) handle(ctx context.Context, r *receiver, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.in.pending = meta.NumPending
	s.mu.Unlock()
	b, err := wire.Decode(m.Data(), s.cfg.Pair)
	if err != nil {
		s.reject("batch", m.Subject(), err)
		return nil
	}
	in := lineage.Batch{Seq: meta.Sequence.Stream, Node: b.Node, Master: b.Master, DB: b.DB, From: b.From, To: b.To, Final: b.Final}
	if b.Genesis != nil {
		in.Genesis = &lineage.Genesis{Reason: b.Genesis.Reason, Base: b.Genesis.Base}
		if s.master() {
			info, err := s.st.Info(ctx)
			if err != nil {
				return err
			}
			in.Local = info.DB
		}
	}
	if err := r.m.Step(in); err != nil {
		return err
	}
	return s.carryOut(ctx, r, b)
}

// peerFirstSeq is the first sequence the peer's batch stream holds; false
// when the peer cannot be asked.
func (s *Service) peerFirstSeq(ctx context.Context, r *receiver) (uint64, bool) {
	if r.peerJS == nil {
		return 0, false
	}
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := r.peerJS.Stream(cctx, subject.ReplStream(s.cfg.Pair, s.peer))
	if err != nil {
		return 0, false
	}
	return st.CachedInfo().State.FirstSeq, true
}

// applyPart adds a part to the group (held in memory until the group is
// final or large, then applied in the group's transaction) and commits the
// group at its final part.
func (s *Service) applyPart(ctx context.Context, r *receiver, p *lineage.Part, b *wire.Batch) error {
	if p.New || r.g == nil {
		s.abort(r)
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
	} else if err := g.tx.Apply(ctx, b, s.appliedLog(r)); err != nil {
		return s.groupFailed(r, err)
	}
	// A row in pieces goes straight into the transaction: its parts are
	// not held as well.
	if g.tx == nil && (g.size > memGroupLimit || p.Commit != nil || g.large) {
		if err := s.beginGroup(ctx, r); err != nil {
			return s.groupFailed(r, err)
		}
	}
	if p.Commit == nil {
		return nil
	}
	return s.commitGroup(ctx, r, *p.Commit)
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
func (s *Service) appliedLog(r *receiver) uint64 {
	p, _ := r.m.Position()
	return p.Log
}

func (s *Service) beginGroup(ctx context.Context, r *receiver) error {
	tx, err := s.st.Begin(ctx, s.peer, !s.master())
	if err != nil {
		return err
	}
	r.g.tx = tx
	if h, ok := tx.(interface{ SetBeforeChange(func(uint64) error) }); ok && s.hook != nil {
		h.SetBeforeChange(func(seq uint64) error {
			if err := s.hook(seq); err != nil {
				return fmt.Errorf("%w: %w", errHook, err)
			}
			return nil
		})
	}
	for _, p := range r.g.parts {
		if err := tx.Apply(ctx, p, s.appliedLog(r)); err != nil {
			return err
		}
	}
	r.g.parts = nil
	return nil
}

// groupFailed drops a group that cannot be applied: a fault hook ends the
// service as a crash would; anything else is bad input, which the machine
// reports and shows as "blocked".
func (s *Service) groupFailed(r *receiver, err error) error {
	s.abort(r)
	if errors.Is(err, errHook) {
		return err
	}
	return r.m.Step(lineage.GroupFailed{Err: err})
}

func (s *Service) commitGroup(ctx context.Context, r *receiver, lp lineage.Position) error {
	p := store.Position{DB: lp.DB, Log: lp.Log, Stream: lp.Stream}
	res, err := r.g.tx.Commit(ctx, p)
	s.dropGroup(r)
	if err != nil {
		return s.groupFailed(r, err)
	}
	now := time.Now()
	if res.LastTS > 0 {
		lag := now.Sub(time.Unix(0, int64(res.LastTS*1e9)))
		s.met.lag.Observe(max(lag.Seconds(), 0))
	}
	s.mu.Lock()
	s.in = inStatus{db: p.DB, applied: p.Log, pending: s.in.pending, lastTS: res.LastTS, at: now}
	s.mu.Unlock()
	s.met.rowsApplied.Add(float64(res.Applied))
	s.met.groupsApplied.Inc()
	s.met.conflicts.Add(float64(len(res.Conflicts)))
	for _, c := range res.Conflicts {
		s.reportConflict(c)
	}
	return r.m.Step(lineage.Applied{Pos: lp, Reconcile: res.Resync})
}

func (s *Service) reportConflict(c store.Conflict) {
	winner, loser := s.cfg.Node, s.peer
	if !s.master() {
		winner, loser = s.peer, s.cfg.Node
	}
	data := event.Conflict{Table: c.Table, PK: c.PK, Kind: c.Kind, Winner: winner, Loser: loser,
		LoserOp: c.LoserOp, WinnerVersion: c.WinnerVer.String(), LoserVersion: c.LoserVer.String(),
		Why: event.Because("R3: concurrent changes of one row; the master's version wins")}
	if c.LoserRow != "" {
		data.LoserRow = json.RawMessage(c.LoserRow)
	}
	s.log.Info().Str("table", c.Table).Str("pk", c.PK).Str("kind", c.Kind).Msg("conflict: the master's version wins")
	s.emit(event.ReplConflict, data)
}

// sendApplied tells the peer how far its batches are applied (at most
// every 100 ms unless forced by a reconcile request; periodic calls pass
// tick).
func (s *Service) sendApplied(r *receiver, ack lineage.Ack, tick bool) {
	if ack.Reconcile == "" && !tick && time.Since(r.lastSent) < 100*time.Millisecond {
		return
	}
	r.lastSent = time.Now()
	a := wire.Applied{V: wire.Version, Pair: s.cfg.Pair, Node: s.cfg.Node, Log: ack.Pos.Log, Stream: ack.Pos.Stream,
		Resync: ack.Reconcile != "", Reason: ack.Reconcile, Paused: s.paused.Load(), PauseAt: s.pauseAt.Load()}
	if a.Resync && wire.ValidDB(ack.ReconcileDB) {
		a.ResyncDB = ack.ReconcileDB
	}
	if wire.ValidDB(ack.Pos.DB) {
		a.DB = ack.Pos.DB
	}
	b, _ := json.Marshal(a)
	_ = s.nc.Publish(subject.ReplApplied(s.cfg.Pair, s.peer), b)
}

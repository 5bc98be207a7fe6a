package replicator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// fencedDB is the position's database id an older Tandem wrote while it
// served the standby a snapshot (batches of the standby's old id were not
// applied); kept so that such a position is still understood.
const fencedDB = "fenced"

// memGroupLimit is how many bytes of a group's parts are held in memory
// before applying starts (then the parts go straight into the open
// transaction, which holds the database's write lock until the final part).
const memGroupLimit = 32 << 20

var (
	errResync  = errors.New("resync needed")
	errRestart = errors.New("consumer restart")
	errPaused  = errors.New("paused")
)

// ctlReq is a request to the receiver goroutine.
type ctlReq struct {
	kind string // "resync" (the standby)
	why  string
	done chan error // nil: no answer wanted
}

// group is the group being assembled from the peer's parts.
type group struct {
	start, to uint64
	parts     []*wire.Batch
	size      int
	tx        store.Apply
	began     time.Time
}

// receiver is the state owned by the receive goroutine.
type receiver struct {
	pos      store.Position
	havePos  bool
	g        *group
	resync   string // why a resync is needed, or ""
	lastSent time.Time
	retry    backoff // of resyncs that failed or made no progress
	peerJS   jetstream.JetStream
	lastMsg  time.Time // when the consumer last delivered
	lastSeq  uint64    // the stream sequence it last delivered
	checked  time.Time // when the peer's stream was last looked at
}

// runReceive is the receiver goroutine: it applies the peer's batches.
func (s *Service) runReceive(ctx context.Context) error {
	r := &receiver{}
	if err := s.loadPos(ctx, r); err != nil {
		return err
	}
	if !s.master() && (!r.havePos || r.pos.DB == "") {
		r.resync = "no position in the master's changes (first start or a foreign database)"
	}
	for ctx.Err() == nil {
		if r.resync != "" && !s.paused.Load() {
			if !s.resyncWithBackoff(ctx, r) {
				continue
			}
		}
		if s.paused.Load() {
			s.waitPaused(ctx, r)
			continue
		}
		err := s.consume(ctx, r)
		s.abort(r)
		switch {
		case errors.Is(err, errHook):
			return err
		case errors.Is(err, errResync), errors.Is(err, errPaused), errors.Is(err, errRestart):
		case err != nil && ctx.Err() == nil:
			s.log.Debug().Err(err).Msg("reading the peer's batches")
			s.mu.Lock()
			s.in.pending = 0
			s.mu.Unlock()
			sleep(ctx, 250*time.Millisecond)
		}
	}
	return nil
}

// resyncWithBackoff runs a resync unless the last ones failed or made no
// progress, in which case it waits out an exponential back-off first, in
// the state "blocked" with the reason (R10: no resync loops). It reports
// whether the resync succeeded.
func (s *Service) resyncWithBackoff(ctx context.Context, r *receiver) bool {
	if wait := r.retry.wait(time.Now()); wait > 0 {
		if r.retry.reason == "" {
			reason := "re-sync needed again soon after the last one: " + r.resync
			r.retry.reason = reason
			s.log.Warn().Dur("retry_in", wait).Str("why", r.resync).Msg("replication blocked")
			s.emit(event.ReplBlocked, map[string]any{"reason": reason, "retry_in_seconds": wait.Seconds()})
		}
		s.setState("blocked", r.retry.reason)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		case req := <-s.ctl:
			s.control(ctx, r, req) //nolint:errcheck
		}
		return false
	}
	why := r.resync
	err := s.resync(ctx, r)
	if ctx.Err() != nil {
		return false
	}
	if err == nil {
		r.retry.attempted(time.Now(), "")
		return true
	}
	reason := "resync failed: " + err.Error()
	if r.retry.attempted(time.Now(), reason) {
		s.log.Warn().Err(err).Str("why", why).Dur("retry_in", r.retry.delay).Msg("replication blocked")
		s.emit(event.ReplBlocked, map[string]any{"reason": reason, "retry_in_seconds": r.retry.delay.Seconds(),
			"why": "R10: " + why})
	}
	s.setState("blocked", reason)
	return false
}

// backoff spaces out resyncs: the first runs at once; each one that fails,
// or that comes again within noProgress of the last, doubles the wait up to
// maxBackoff; one that holds for noProgress resets it.
type backoff struct {
	last   time.Time
	delay  time.Duration
	reason string
}

const (
	minBackoff = time.Second
	maxBackoff = time.Minute
	noProgress = 30 * time.Second
)

// wait is how long to wait before the next attempt.
func (b *backoff) wait(now time.Time) time.Duration {
	if b.last.IsZero() || now.Sub(b.last) > noProgress+b.delay {
		b.delay = 0
	}
	return b.last.Add(b.delay).Sub(now)
}

// attempted records an attempt (reason "" when it succeeded) and reports
// whether the reason changed (one event per change, not per attempt).
func (b *backoff) attempted(now time.Time, reason string) bool {
	again := !b.last.IsZero() && now.Sub(b.last) < noProgress+b.delay
	switch {
	case reason != "" || again:
		b.delay = min(max(2*b.delay, minBackoff), maxBackoff)
	default:
		b.delay = 0
	}
	b.last = now
	changed := reason != b.reason
	b.reason = reason
	return changed && reason != ""
}

func (s *Service) loadPos(ctx context.Context, r *receiver) error {
	p, ok, err := s.st.Position(ctx, s.peer)
	if err != nil {
		return fmt.Errorf("replicator: read position: %w", err)
	}
	r.pos, r.havePos = p, ok
	s.mu.Lock()
	s.in.db, s.in.applied = p.DB, p.Log
	s.mu.Unlock()
	return nil
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
			s.sendApplied(r, "", true)
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
	if r.pos.Stream > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, r.pos.Stream+1
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	oc, err := js.OrderedConsumer(cctx, subject.ReplStream(s.cfg.Pair, s.peer), cfg)
	cancel()
	if err != nil {
		return fmt.Errorf("consumer on %s: %w", subject.ReplStream(s.cfg.Pair, s.peer), err)
	}
	it, err := oc.Messages(jetstream.PullMaxMessages(256))
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
			if r.g != nil && r.g.tx != nil && time.Since(r.g.began) > s.groupTTL {
				s.log.Warn().Uint64("start", r.g.start).Msg("a group's parts stopped coming; reading it again")
				return errRestart
			}
			s.sendApplied(r, "", true)
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
	if last <= max(r.pos.Stream, r.lastSeq) {
		s.mu.Lock()
		s.in.pending = 0 // the last delivery's count is stale: nothing waits
		s.mu.Unlock()
		return false
	}
	s.log.Warn().Uint64("position", max(r.pos.Stream, r.lastSeq)).Uint64("peer_last", last).
		Msg("the peer's stream has batches the consumer does not deliver; starting a new consumer")
	return true
}

// control carries out a request from another goroutine.
func (s *Service) control(ctx context.Context, r *receiver, req ctlReq) error {
	var err, ret error
	switch req.kind {
	case "resync":
		if s.master() {
			err = errors.New("the master is the source of every resync")
		} else {
			r.resync, ret = req.why, errResync
		}
	}
	if req.done != nil {
		req.done <- err
	}
	return ret
}

// askResync asks the receiver (of a standby) to re-sync.
func (s *Service) askResync(why string) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		select {
		case s.ctl <- ctlReq{kind: "resync", why: why}:
		case <-ctx.Done():
		}
	}()
}

// abort drops the group being assembled.
func (s *Service) abort(r *receiver) {
	if r.g != nil && r.g.tx != nil {
		_ = r.g.tx.Rollback()
	}
	r.g = nil
}

// handle takes one message of the peer's stream.
func (s *Service) handle(ctx context.Context, r *receiver, m jetstream.Msg) error {
	meta, err := m.Metadata()
	if err != nil {
		return err
	}
	seq := meta.Sequence.Stream
	s.mu.Lock()
	s.in.pending = meta.NumPending
	s.mu.Unlock()
	b, err := wire.Decode(m.Data(), s.cfg.Pair)
	if err == nil && (b.Node != s.peer || b.Master == s.master()) {
		err = fmt.Errorf("%w: batch from node %q (master %v) in the stream of peer %q", wire.ErrInvalid, b.Node, b.Master, s.peer)
	}
	if err != nil {
		s.reject("batch", m.Subject(), err)
		return nil
	}
	if r.havePos && seq <= r.pos.Stream {
		return nil // already applied
	}
	if b.Genesis != nil {
		return s.onGenesis(ctx, r, b, seq)
	}
	if !r.havePos || b.DB != r.pos.DB {
		switch {
		case r.pos.DB == fencedDB:
			return nil // the standby's old batches, overwritten by the snapshot it is getting
		case !s.master():
			r.resync = fmt.Sprintf("the master's database id is %s, this standby follows %q", b.DB, r.pos.DB)
			return errResync
		}
		s.reject("batch", m.Subject(), fmt.Errorf("%w: wrong database id %q, the standby's database here is %q", wire.ErrInvalid, b.DB, r.pos.DB))
		return nil
	}
	return s.addPart(ctx, r, b, seq)
}

// onGenesis takes the announcement of a new database id of the peer.
func (s *Service) onGenesis(ctx context.Context, r *receiver, b *wire.Batch, seq uint64) error {
	s.abort(r)
	if !s.master() {
		if r.havePos && r.pos.DB == b.DB {
			return nil
		}
		r.resync = fmt.Sprintf("the master announced database id %s (%s)", b.DB, b.Genesis.Reason)
		return errResync
	}
	info, err := s.st.Info(ctx)
	if err != nil {
		return err
	}
	if b.Genesis.Base != info.DB {
		why := fmt.Sprintf("the standby's database %s was restored from %q, not from this master's database %s", b.DB, b.Genesis.Base, info.DB)
		s.reject("batch", subject.ReplChanges(s.cfg.Pair, s.peer), fmt.Errorf("%w: %s", wire.ErrInvalid, why))
		s.sendApplied(r, why, false)
		return nil
	}
	r.pos = store.Position{DB: b.DB, Log: b.To, Stream: seq}
	r.havePos = true
	if err := s.st.SetPosition(ctx, s.peer, r.pos); err != nil {
		return err
	}
	s.log.Info().Str("db", b.DB).Str("reason", b.Genesis.Reason).Msg("the standby's new database id accepted")
	s.mu.Lock()
	s.in.db, s.in.applied = b.DB, b.To
	s.mu.Unlock()
	s.sendApplied(r, "", false)
	return nil
}

// gap handles a batch that starts after the position. If the peer's
// stream still holds what follows the position (an ordered consumer can
// skip ahead across a cut link), the consumer starts again from there. If
// the peer has pruned it — it did so once this node acknowledged those
// changes — this database lost changes it had applied: it was restored from
// a backup taken before, with no write of its own since, which its own log
// cannot show. Its position cannot be trusted (R10): a standby re-syncs, a
// master asks the standby to (the standby merges the master's snapshot row
// by row and sends back the rows the master lacks).
func (s *Service) gap(ctx context.Context, r *receiver, b *wire.Batch) error {
	s.abort(r)
	first, ok := s.peerFirstSeq(ctx, r)
	if !ok || first <= r.pos.Stream+1 {
		s.reject("batch", "", fmt.Errorf("%w: batch (%d, %d] of database %s leaves a gap after %d; reading again from there",
			wire.ErrInvalid, b.From, b.To, b.DB, r.pos.Log))
		sleep(ctx, 250*time.Millisecond)
		return errRestart
	}
	why := fmt.Sprintf("the peer's changes (%d, %d] of database %s are gone from its stream (it starts at %d): this database lost changes it had applied (restored from a backup?)",
		r.pos.Log, b.From, b.DB, first)
	s.reject("batch", "", fmt.Errorf("%w: batch (%d, %d] leaves a gap: %s", wire.ErrInvalid, b.From, b.To, why))
	if !s.master() {
		r.resync = why
		return errResync
	}
	s.sendApplied(r, why, false)
	return nil
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

// addPart adds a part to the group (starting, continuing or restarting it)
// and applies the group when the part is final.
func (s *Service) addPart(ctx context.Context, r *receiver, b *wire.Batch, seq uint64) error {
	switch {
	case r.g != nil && b.From == r.g.to:
	case b.From <= r.pos.Log:
		s.abort(r) // a group shipped again (after a crash of the shipper): start over
		r.g = &group{start: b.From, to: b.From, began: time.Now()}
	case b.To <= r.pos.Log:
		return nil
	default:
		return s.gap(ctx, r, b)
	}
	g := r.g
	g.to = b.To
	if g.tx == nil {
		g.parts = append(g.parts, b)
		for _, c := range b.Changes {
			g.size += len(c.Row) + len(c.Chunk) + 128
		}
	} else if err := s.applyPart(ctx, r, b); err != nil {
		return s.failGroup(r, err)
	}
	if g.tx == nil && (g.size > memGroupLimit || b.Final) {
		if err := s.beginGroup(ctx, r); err != nil {
			return s.failGroup(r, err)
		}
	}
	if !b.Final {
		return nil
	}
	return s.commitGroup(ctx, r, b, seq)
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
		if err := s.applyPart(ctx, r, p); err != nil {
			return err
		}
	}
	r.g.parts = nil
	return nil
}

func (s *Service) applyPart(ctx context.Context, r *receiver, b *wire.Batch) error {
	return r.g.tx.Apply(ctx, b, r.pos.Log)
}

// failGroup drops a group that cannot be applied: a fault hook ends the
// service as a crash would; anything else is bad input, reported.
func (s *Service) failGroup(r *receiver, err error) error {
	s.abort(r)
	if errors.Is(err, errHook) {
		return err
	}
	s.setState("blocked", err.Error())
	s.reject("batch", subject.ReplChanges(s.cfg.Pair, s.peer), err)
	return nil
}

func (s *Service) commitGroup(ctx context.Context, r *receiver, b *wire.Batch, seq uint64) error {
	p := store.Position{DB: b.DB, Log: b.To, Stream: seq}
	res, err := r.g.tx.Commit(ctx, p)
	r.g = nil
	if err != nil {
		return s.failGroup(r, err)
	}
	now := time.Now()
	p.TS = res.LastTS
	r.pos, r.havePos = p, true
	if st, _ := s.stateNow(); st == "blocked" {
		s.setState("running", "")
	}
	var lag time.Duration
	if res.LastTS > 0 {
		lag = now.Sub(time.Unix(0, int64(res.LastTS*1e9)))
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
	s.sendApplied(r, "", false)
	return nil
}

func (s *Service) reportConflict(c store.Conflict) {
	winner, loser := s.cfg.Node, s.peer
	if !s.master() {
		winner, loser = s.peer, s.cfg.Node
	}
	data := map[string]any{"table": c.Table, "pk": c.PK, "kind": c.Kind, "winner": winner, "loser": loser,
		"loser_op": c.LoserOp, "winner_version": c.WinnerVer.String(), "loser_version": c.LoserVer.String(),
		"reason": "R3: concurrent changes of one row; the master's version wins"}
	if c.LoserRow != "" {
		data["loser_row"] = json.RawMessage(c.LoserRow)
	}
	s.log.Info().Str("table", c.Table).Str("pk", c.PK).Str("kind", c.Kind).Msg("conflict: the master's version wins")
	s.emit(event.ReplConflict, data)
}

// sendApplied tells the peer how far its batches are applied (at most
// every 100 ms unless forced by a reason; periodic calls pass tick).
func (s *Service) sendApplied(r *receiver, resyncWhy string, tick bool) {
	if resyncWhy == "" && !tick && time.Since(r.lastSent) < 100*time.Millisecond {
		return
	}
	if !r.havePos && resyncWhy == "" {
		return
	}
	r.lastSent = time.Now()
	a := wire.Applied{V: wire.Version, Pair: s.cfg.Pair, Node: s.cfg.Node, Log: r.pos.Log, Stream: r.pos.Stream,
		Resync: resyncWhy != "", Reason: resyncWhy, Paused: s.paused.Load(), PauseAt: s.pauseAt.Load()}
	if wire.ValidDB(r.pos.DB) && r.pos.DB != fencedDB {
		a.DB = r.pos.DB
	}
	b, _ := json.Marshal(a)
	_ = s.nc.Publish(subject.ReplApplied(s.cfg.Pair, s.peer), b)
}

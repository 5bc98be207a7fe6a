package replicator

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/dbwatch"
	"github.com/tandem-ha/tandem/services/replicator/internal/lineage"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// StreamConfig is the configuration of node's batch stream: file storage,
// no limits (pruned only once the peer has applied), duplicates detected
// over bus.DuplicateWindow (retried publishes carry the same id).
func StreamConfig(pair, node string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        subject.ReplStream(pair, node),
		Description: fmt.Sprintf("Tandem change batches of node %s of pair %s, kept until the peer applied them", node, pair),
		Subjects:    []string{subject.ReplChanges(pair, node)},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    1,
		MaxBytes:    -1,
		Duplicates:  bus.DuplicateWindow,
	}
}

// shipStore is what the shipper uses of the store.
type shipStore interface {
	store.LogReader
	store.Schema
	Position(ctx context.Context, source string) (store.Position, bool, error)
	NewID(ctx context.Context) (string, error)
}

// shipper ships this node's changes: it reads the change log, publishes
// it into the node's batch stream (announcing a new database id first when
// there is one: lineage.PlanShip), looks for schema changes, hears how far
// the peer applied (onApplied) and prunes the log and the stream behind it.
//
// The goroutine run owns the shipping loop; onApplied runs in a NATS
// handler; both share the fields under mu. mu of the shipment (shipping)
// is held while a shipment is in flight, so that a discard that holds
// shipping knows when nothing is.
type shipper struct {
	pair, node, peer string
	master           bool
	poll             time.Duration
	idlePoll         time.Duration // the idle poll of a database watched for writes
	db               string        // the database's path, watched for writes
	st               shipStore
	js               jetstream.JetStream
	log              zerolog.Logger
	rep              *reporter
	met              *metrics
	board            *board
	base             context.Context // ends when Run ends
	wake             chan struct{}   // size 1: look at the log now
	paused           func() bool
	follow           func(paused bool, at int64) // the pause the peer says it follows
	askResync        func(why string)            // a standby's receiver: reconcile with the master

	hold     atomic.Bool // no shipment starts (a resync --discard runs here)
	shipping sync.Mutex  // held while a shipment is in flight

	mu          sync.Mutex // guards the fields below
	shipped     uint64
	peerApplied peerPos
	lastPrune   time.Time
	pruned      peerPos // the last applied position pruned up to
}

// progress is how far this node shipped, and how far the peer says it
// applied.
func (s *shipper) progress() (shipped uint64, acked peerPos) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shipped, s.peerApplied
}

// holdShipping stops shipping (true) or lets it go on (false, and look at
// the log now); idle waits for a shipment in flight to end and reports
// whether shipping is held.
func (s *shipper) holdShipping(on bool) {
	s.hold.Store(on)
	if !on {
		poke(s.wake)
	}
}

// settled waits for a shipment in flight to end: after a pause, nothing
// committed from then on is shipped (run looks at the pause again once
// it holds shipping).
func (s *shipper) settled() {
	s.shipping.Lock()
	//lint:ignore SA2001 an empty critical section: a barrier behind the shipment in flight
	s.shipping.Unlock()
}

func (s *shipper) idle() bool {
	s.shipping.Lock()
	defer s.shipping.Unlock()
	return s.hold.Load()
}

// run is the shipper goroutine.
func (s *shipper) run(ctx context.Context) error {
	var stream jetstream.Stream
	for {
		var err error
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		stream, err = s.js.CreateOrUpdateStream(cctx, StreamConfig(s.pair, s.node))
		cancel()
		if err == nil {
			break
		}
		s.log.Warn().Err(err).Msg("cannot create the batch stream yet")
		if !clock.Sleep(ctx, time.Second) {
			return nil
		}
	}
	cur, err := s.lastShipped(ctx, stream)
	if err != nil && ctx.Err() == nil {
		return err
	}
	timer := time.NewTimer(s.poll)
	defer timer.Stop()
	var p shipPoll
	var stuck lineage.Backoff // of changes that cannot be shipped
	written, unwatch := s.watchDatabase()
	defer unwatch()
	now := time.Now()
	p.start(now)
	for ctx.Err() == nil {
		changed, err := s.st.Changed(ctx)
		if err != nil {
			s.log.Warn().Err(err).Msg("poll the change log")
		}
		now = time.Now()
		delay := time.Duration(0)
		if p.due(now, changed, s.paused() || s.hold.Load()) {
			s.shipping.Lock()
			if s.paused() || s.hold.Load() {
				// Paused or held while this turn began: a change committed
				// after the pause was acknowledged must stay queued (R4).
				s.shipping.Unlock()
				continue
			}
			err := s.shipOnce(ctx, stream, &cur)
			s.shipping.Unlock()
			if err != nil && ctx.Err() == nil {
				s.log.Warn().Err(err).Msg("ship changes")
			}
			p.shipped(now, err == nil)
			delay = s.shipBlocked(&stuck, err)
		}
		idle := s.idlePoll
		if written == nil {
			idle = idlePoll
		}
		wait := max(p.delay(now, s.poll, idle), delay)
		if wait >= time.Second { // idle: look with the node's other periodic jobs (clock.Beat)
			wait = clock.Align(now, wait, time.Second)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-timer.C:
		case <-s.wake:
			p.woken()
		case _, ok := <-written:
			if !ok {
				s.log.Warn().Msg("stopped watching the database for writes; polling it every " + idlePoll.String() + " when idle")
				written = nil
				continue
			}
			p.written(time.Now())
		}
	}
	return nil
}

// watchDatabase watches the database for writes (dbwatch), so that an idle
// shipper sleeps up to s.idlePoll and still looks at once after a write. It
// returns nil when the database cannot be watched: the shipper then polls
// every idlePoll when idle. unwatch ends the watching.
func (s *shipper) watchDatabase() (written <-chan struct{}, unwatch func()) {
	w, err := dbwatch.New(s.db)
	if err != nil {
		s.log.Info().Err(err).Msg("cannot watch the database for writes; polling it every " + idlePoll.String() + " when idle")
		return nil, func() {}
	}
	return w.C(), func() { _ = w.Close() }
}

// shipPoll decides when the shipper ships and how long it sleeps: a pure
// function of the poll's results and the time (the loop passes now).
//
// It ships when the store changed, again a second after a failed attempt
// (a publish that failed leaves its changes in the log, and nothing changes
// the store again), and every fullShip in any case. It polls every
// PollInterval while the database is busy, then backs off while it stays
// quiet (idlePolls, then idle: idlePoll, or Options.IdlePoll when the
// database is watched for writes): an idle pair costs little. A write seen
// by the watcher (written) polls at once and fast again, as a change does:
// the write may come before its commit is visible (store.Changed), and the
// commit must not wait out the long idle sleep.
type shipPoll struct {
	changed time.Time // the last change seen
	tried   time.Time // the last shipping attempt
	pending bool      // changes may wait to be shipped (a change not yet shipped, a failure, a wake)
}

// Shipping and polling cadence.
const (
	retryShip = time.Second      // after a failed attempt
	fullShip  = 10 * time.Second // whatever the store says
)

// idlePolls are the poll delays after a quiet spell: the first step that
// the time since the last change has reached applies; a zero delay is the
// idle one (idlePoll, or Options.IdlePoll when the database is watched).
var idlePolls = [...]struct{ quiet, delay time.Duration }{
	{3 * time.Second, 0},
	{time.Second, 50 * time.Millisecond},
}

// idlePoll is the idle poll delay of a database that cannot be watched for
// writes: the longest a change after a quiet spell waits.
const idlePoll = 200 * time.Millisecond

// DefaultIdlePoll is the idle poll delay of a database watched for writes
// (Options.IdlePoll): it bounds a change the watcher did not report (a
// writer on another machine's mount) and fullShip's lateness.
const DefaultIdlePoll = 2 * time.Second

// start: at start the log may hold changes made while the shipper was down.
func (p *shipPoll) start(now time.Time) {
	p.changed, p.pending = now, true
}

// due reports whether to ship now.
func (p *shipPoll) due(now time.Time, changed, paused bool) bool {
	if changed {
		p.changed, p.pending = now, true
	}
	switch {
	case paused:
		return false
	case changed, p.pending && now.Sub(p.tried) >= retryShip:
		return true
	}
	return now.Sub(p.tried) >= fullShip
}

// written: the watcher saw a write at now: poll fast, as after a change.
func (p *shipPoll) written(now time.Time) {
	p.changed = now
}

// woken: something (a resume, a restore) asks to ship at the next poll.
func (p *shipPoll) woken() {
	p.pending, p.tried = true, time.Time{}
}

// shipped records an attempt at now.
func (p *shipPoll) shipped(now time.Time, ok bool) {
	p.tried, p.pending = now, !ok
}

// delay is how long to sleep before the next poll: poll while busy, idle
// after a quiet spell.
func (p *shipPoll) delay(now time.Time, poll, idle time.Duration) time.Duration {
	quiet := now.Sub(p.changed)
	for _, s := range idlePolls {
		if quiet >= s.quiet {
			if s.delay == 0 {
				return max(poll, idle)
			}
			return max(poll, s.delay)
		}
	}
	return poll
}

// lastShipped reads the stream's last batch: where shipping goes on.
func (s *shipper) lastShipped(ctx context.Context, stream jetstream.Stream) (lineage.Shipped, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		m, err := stream.GetLastMsgForSubject(cctx, subject.ReplChanges(s.pair, s.node))
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			return lineage.Shipped{}, nil
		case err == nil:
			b, err := wire.Decode(m.Data, s.pair)
			if err != nil {
				s.log.Warn().Err(err).Msg("the batch stream's last message is not a batch; starting a new database id")
				return lineage.Shipped{}, nil
			}
			cur := lineage.Shipped{DB: b.DB, To: b.To, Have: true}
			if !b.Final {
				cur.To = b.Start // the group was cut short: ship it again
			}
			return cur, nil
		}
		s.log.Warn().Err(err).Msg("read the batch stream")
		if !clock.Sleep(ctx, time.Second) {
			return lineage.Shipped{}, ctx.Err()
		}
	}
}

// shipOnce ships what the log holds after cur, first announcing a new
// database id if there is one: lineage.PlanShip decides.
func (s *shipper) shipOnce(ctx context.Context, stream jetstream.Stream, cur *lineage.Shipped) error {
	s.syncSchema(ctx)
	info, err := s.st.Info(ctx)
	if err != nil {
		return err
	}
	var master store.Position
	following := true
	if !s.master {
		p, ok, err := s.st.Position(ctx, s.peer)
		if err != nil {
			return err
		}
		master, following = p, ok && p.DB != ""
	}
	plan := lineage.PlanShip(s.master, following, *cur, lineage.Own{DB: info.DB, DBStart: info.DBStart, LogHigh: info.LogHigh, Shipped: info.Shipped, ShippedKnown: info.ShippedKnown})
	switch plan.Kind {
	case lineage.ShipNothing:
		return nil // a standby ships nothing before its first sync
	case lineage.ShipRestored:
		// The stream has changes this database never made, or never
		// recorded as shipped: it is an older copy of itself (a restored
		// backup). It cannot go on as that id.
		s.log.Warn().Str("db", info.DB).Uint64("shipped", cur.To).Uint64("log_high", info.LogHigh).
			Msg("database restored from a backup detected: it is behind what it already shipped")
		s.rep.emit(event.ReplSnapshot, event.Snapshot{Phase: "backup-detected", DB: info.DB,
			Shipped: cur.To, LogHigh: info.LogHigh, Why: event.Because("R9: database restored from a backup detected")})
		if info.DB, err = s.st.NewID(ctx); err != nil {
			return err
		}
		if plan.Reconcile != "" {
			s.askResync(plan.Reconcile)
			return nil // the reconcile gives it a new id again
		}
		return s.genesis(ctx, stream, cur, info, master, plan)
	case lineage.ShipGenesis:
		return s.genesis(ctx, stream, cur, info, master, plan)
	}
	return s.shipGroup(ctx, cur, info.DB)
}

// genesis announces a new database id: for a standby restored from a
// snapshot, the batches of its old id are purged first (plan.Purge), so the
// master never applies changes the snapshot overwrote.
func (s *shipper) genesis(ctx context.Context, stream jetstream.Stream, cur *lineage.Shipped, info store.Info, master store.Position, plan lineage.ShipPlan) error {
	if plan.Purge {
		if err := stream.Purge(ctx); err != nil {
			return fmt.Errorf("purge the batches of the old database id: %w", err)
		}
	}
	reason := plan.Reason
	b := &wire.Batch{V: wire.Version, Pair: s.pair, Node: s.node, Master: s.master, DB: info.DB,
		Start: plan.At, From: plan.At, To: plan.At, Final: true, Genesis: &wire.Genesis{Reason: reason},
		Changes: []wire.Change{}}
	if !s.master {
		b.Genesis.Base, b.Genesis.BasePos = master.DB, master.Log
	}
	if err := s.publish(ctx, b); err != nil {
		return err
	}
	*cur = lineage.Shipped{DB: info.DB, To: plan.At, Have: true}
	s.setShipped(cur.To)
	s.markShipped(ctx, cur)
	s.log.Info().Str("db", info.DB).Str("reason", reason).Uint64("log", plan.At).Msg("database id announced")
	return nil
}

// shipGroup reads the log after cur in one read transaction and publishes
// it as one group of parts.
func (s *shipper) shipGroup(ctx context.Context, cur *lineage.Shipped, db string) error {
	start := cur.To
	var part *wire.Batch
	size, rows := 0, 0
	inLarge := false
	defer func() {
		if inLarge {
			largeEnd()
		}
	}()
	newPart := func(from uint64, n int) *wire.Batch {
		return &wire.Batch{V: wire.Version, Pair: s.pair, Node: s.node, Master: s.master, DB: db,
			Start: start, From: from, To: from, Part: n, Changes: []wire.Change{}}
	}
	to, err := s.st.ReadLog(ctx, start, func(c wire.Change) error {
		if c.Pieces > 0 && !inLarge {
			largeBegin()
			inLarge = true
		}
		// A piece to fetch counts as its chunk: the receiver holds the
		// chunks of a part at once.
		est := 2*(len(c.Chunk)+c.Fetch) + len(c.Row) + len(c.PK) + len(c.Table) + 128
		if part != nil && size+est > wire.PartTarget && len(part.Changes) > 0 {
			if err := s.publish(ctx, part); err != nil {
				return err
			}
			part, size = newPart(part.To, part.Part+1), 0
		}
		if part == nil {
			part = newPart(start, 0)
		}
		part.Changes = append(part.Changes, c)
		part.To = c.Seq
		size += est
		if c.Piece == c.Pieces-1 || c.Pieces == 0 {
			rows++
		}
		return nil
	})
	if err != nil {
		return err
	}
	if to == start {
		return nil
	}
	if part == nil {
		part = newPart(start, 0)
	}
	part.To, part.Final = to, true
	if err := s.publish(ctx, part); err != nil {
		return err
	}
	cur.To = to
	s.setShipped(to)
	s.markShipped(ctx, cur)
	s.met.rowsShipped.Add(float64(rows))
	s.met.groupsShipped.Inc()
	return nil
}

// publish stores one batch in the node's stream, retrying with the same
// message id (a timed-out publish may have been stored).
func (s *shipper) publish(ctx context.Context, b *wire.Batch) error {
	data, err := b.Encode()
	if err != nil {
		return err
	}
	if len(data) > wire.MaxSize {
		return fmt.Errorf("%w: a batch part of %d bytes is over the limit of %d", errTooLarge, len(data), wire.MaxSize)
	}
	msg := &nats.Msg{Subject: subject.ReplChanges(s.pair, s.node), Data: data}
	id := fmt.Sprintf("%s:%d:%d:%d", b.DB, b.Start, b.To, b.Part)
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err = s.js.PublishMsg(cctx, msg, jetstream.WithMsgID(id))
		cancel()
		if err == nil || attempt == 5 || ctx.Err() != nil {
			return err
		}
		if !clock.Sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff *= 2
	}
}

// markShipped records in the database how far it has been shipped, so that
// a restored backup is recognised at start even after new writes filled its
// log up to that sequence (R9). A crash between the publish and this write
// makes the next start take the database for a restored one: a reconcile,
// never a loss.
func (s *shipper) markShipped(ctx context.Context, cur *lineage.Shipped) {
	if err := s.st.SetShipped(ctx, cur.DB, cur.To); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Msg("record the shipped position")
	}
}

func (s *shipper) setShipped(to uint64) {
	s.mu.Lock()
	s.shipped = to
	s.mu.Unlock()
}

// onApplied hears how far the peer has applied this node's batches, and
// prunes the log and the stream up to there (at most every 2 s, and not
// again for a position already pruned: an idle pair repeats its position
// every second).
func (s *shipper) onApplied(m *nats.Msg) {
	a, err := wire.DecodeApplied(m.Data, s.pair)
	if err == nil && a.Node != s.peer {
		err = fmt.Errorf("applied position from node %q, the peer is %q", a.Node, s.peer)
	}
	if err != nil {
		s.rep.reject("applied", m.Subject, err)
		return
	}
	if a.Resync && !s.master && s.askCurrent(a) {
		s.askResync("the master asks: " + a.Reason)
	}
	s.follow(a.Paused, a.PauseAt)
	s.mu.Lock()
	pos := peerPos{db: a.DB, log: a.Log, stream: a.Stream}
	s.peerApplied = pos
	due := time.Since(s.lastPrune) > 2*time.Second && pos != s.pruned
	if due {
		s.lastPrune = time.Now()
	}
	s.mu.Unlock()
	if due && s.prune(a) {
		s.mu.Lock()
		s.pruned = pos
		s.mu.Unlock()
	}
}

// askCurrent reports whether the master's request to re-sync is about
// this standby's present database (lineage.AskCurrent).
func (s *shipper) askCurrent(a *wire.Applied) bool {
	if a.ResyncDB == "" {
		return true
	}
	ctx, cancel := context.WithTimeout(s.base, 5*time.Second)
	defer cancel()
	info, err := s.st.Info(ctx)
	if err != nil {
		return true // cannot tell: a resync is safe (R10), only costly
	}
	if lineage.AskCurrent(a.ResyncDB, info.DB) {
		return true
	}
	s.log.Info().Str("about", a.ResyncDB).Str("db", info.DB).Str("reason", a.Reason).
		Msg("the master's request to re-sync is about a database id this standby has left; ignored")
	return false
}

// prune deletes the log and the stream up to a; true when both are done.
func (s *shipper) prune(a *wire.Applied) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := s.st.Info(ctx)
	if err != nil || info.DB != a.DB {
		return false
	}
	if err := s.st.Prune(ctx, a.Log); err != nil {
		s.log.Warn().Err(err).Msg("prune the change log")
		return false
	}
	if a.Stream > 1 {
		stream, err := s.js.Stream(ctx, subject.ReplStream(s.pair, s.node))
		if err == nil {
			err = stream.Purge(ctx, jetstream.WithPurgeSequence(a.Stream))
		}
		if err != nil {
			s.log.Debug().Err(err).Msg("purge applied batches")
			return false
		}
	}
	return true
}

// syncSchema queues the schema changes made since the last look (R11) and
// reports those that cannot be replicated.
func (s *shipper) syncSchema(ctx context.Context) {
	ch, err := s.st.SyncSchema(ctx)
	if err != nil {
		s.log.Warn().Err(err).Msg("look for schema changes")
		return
	}
	for _, q := range ch.Shipped {
		s.log.Info().Str("sql", q).Msg("schema change queued for the peer")
	}
	s.rep.refused(ch.Refused, s.st.Refused())
	if ch.Resync != "" && !s.master {
		s.askResync(ch.Resync)
	}
}

// errTooLarge: a change does not fit in one message (not yet split).
var errTooLarge = errors.New("a row too large for one message")

// shipBlocked sets the state blocked, with one event per reason, while the
// log holds a change that cannot be shipped, and returns how long to wait
// before trying again (doubling up to a minute: reading and encoding the
// row again every second costs the node); it clears the state when
// shipping works again.
func (s *shipper) shipBlocked(b *lineage.Backoff, err error) time.Duration {
	if !errors.Is(err, errTooLarge) {
		if b.Reason() != "" && err == nil {
			*b = lineage.Backoff{}
			if st, _ := s.board.get(); st == "blocked" {
				s.board.set("running", "")
			}
		}
		return 0
	}
	reason := "cannot ship: " + err.Error()
	if b.Attempted(time.Now(), reason) {
		s.rep.emit(event.ReplBlocked, event.Blocked{Why: event.Because(reason)})
	}
	s.board.set("blocked", reason)
	return b.Delay()
}

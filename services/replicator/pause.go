package replicator

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
)

// pause is the pair's pause (R4): whether this node ships and applies, and
// when the decision in force was made. It is persisted in the database
// (store.Identity.SetPaused) and read by the shipper, the receiver and the
// snapshot server; a change wakes the shipper and the receiver.
//
// Reads are lock-free; changes (an operator's, or one followed from the
// peer) are serialised by mu.
type pause struct {
	st     store.Identity // set by Service.open before any change
	board  *board
	rep    *reporter
	gauge  prometheus.Gauge
	wake   chan struct{} // the shipper's
	resume chan struct{} // the receiver's

	paused atomic.Bool
	at     atomic.Int64 // Unix ns of the pause or resume in force, 0: not known
	mu     sync.Mutex   // serialises changes
}

// on reports whether replication is paused here.
func (p *pause) on() bool { return p.paused.Load() }

// decided is when the decision in force was made (Unix ns, 0: not known).
func (p *pause) decided() int64 { return p.at.Load() }

// load takes the persisted state at start.
func (p *pause) load(info store.Info) {
	p.paused.Store(info.Paused)
	if !info.PauseAt.IsZero() {
		p.at.Store(info.PauseAt.UnixNano())
	}
	if info.Paused {
		p.board.set("paused", "paused by an operator")
	}
}

// set persists a pause or resume decided at; newerThan > 0 applies it only
// if it is still newer than the one in force (the peer's, followed).
func (p *pause) set(ctx context.Context, paused bool, at time.Time, newerThan int64, why string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if newerThan > 0 && newerThan <= p.at.Load() {
		return nil
	}
	if err := p.st.SetPaused(ctx, paused, at); err != nil {
		return err
	}
	p.at.Store(at.UnixNano())
	was := p.paused.Swap(paused)
	if was == paused {
		return nil
	}
	typ, state := event.ReplResumed, "running"
	p.gauge.Set(0)
	if paused {
		typ, state = event.ReplPaused, "paused"
		p.gauge.Set(1)
	}
	p.board.set(state, why)
	p.rep.emit(typ, event.Because("R4: "+why))
	poke(p.resume)
	poke(p.wake)
	return nil
}

// SetPaused pauses or resumes replication on this node (R4), persisted. A
// decision for the pair is followed by the peer (see followPause); one for
// this node alone (onlyHere: `repl pause --node N`, the way to hold a node
// back for a `resync --discard`) keeps the time of the pair's decision in
// force, so the peer does not follow it and this node still follows the
// pair's next one.
func (s *Service) SetPaused(ctx context.Context, paused, onlyHere bool) error {
	s.sess.RLock()
	defer s.sess.RUnlock()
	if s.opened() == nil {
		return &reply.Error{Code: reply.CodeInvalidState, Message: "replication is starting"}
	}
	at := time.Now()
	if onlyHere {
		at = time.Unix(0, s.pause.decided())
	}
	if err := s.pause.set(ctx, paused, at, 0, "by an operator"); err != nil {
		return err
	}
	if paused {
		s.ship.settled()
	}
	return nil
}

// followPause adopts the peer's pause or resume when it was decided after
// the one this node follows (R4): the operator's command reached only the
// peer.
func (s *Service) followPause(paused bool, at int64) {
	s.sess.RLock()
	defer s.sess.RUnlock()
	if at == 0 || at <= s.pause.decided() || s.opened() == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.base, 5*time.Second)
	defer cancel()
	if err := s.pause.set(ctx, paused, time.Unix(0, at), at, "following "+s.peer); err != nil {
		s.log.Warn().Err(err).Bool("paused", paused).Msg("follow the peer's pause")
	}
}

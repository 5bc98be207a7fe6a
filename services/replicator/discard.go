package replicator

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/lineage"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
)

// An operator's resync --discard (R10): `tandem repl resync --pair P
// --from NODE --discard` makes the other node equal to NODE. It is the
// only way a node's data is overwritten while it holds writes its peer
// lacks, and even then nothing is lost silently: every row discarded
// (present only on the node, or different there) is recorded in
// _tandem_conflict with kind "discard" on that node, and shipped to NODE
// as a conflict record (wire op "c") that NODE records too.
//
// The node that discards (the target, either the standby or the master):
//
//  1. checks that NODE is reachable (its batch stream answers through the
//     leafnode). The target may be paused (the usual way to keep a bad
//     writer's changes from reaching NODE: pause it, discard, resume; its
//     pause is kept); NODE may not (it must apply what the target shipped,
//     and serve the snapshot);
//  2. stops shipping, and waits until NODE has applied everything it
//     shipped: so NODE never gets, after its snapshot, a change the target
//     then discards;
//  3. fetches a snapshot from NODE (either role serves one for a discard)
//     and merges it with store.Discard in one transaction: a new database
//     id, its position in NODE's changes the snapshot's;
//  4. ships again: a genesis, then the conflict records.
//
// It runs in the receiver goroutine (nothing is applied meanwhile); the
// admin request is answered when it is done. A master that discarded
// announces a new database id, so the standby then reconciles with it
// once (nothing differs, nothing is lost).

// discardWait bounds how long the target waits for NODE to apply what it
// shipped before the snapshot.
const discardWait = 15 * time.Second

// discardResult is the outcome of a discard, for the admin reply.
type discardResult struct {
	rec store.Reconciled
	err error
}

// adminResyncFrom answers resync with --from (and --discard): it checks the
// request, and on the target runs the discard in the receiver and answers
// when it is done (the handler returns at once; the reply follows).
func (s *Service) adminResyncFrom(m *nats.Msg, req api.ReplRequest) {
	out, run, err := s.checkResyncFrom(req)
	if err != nil || !run {
		if err != nil {
			_ = m.Respond(reply.Fail(err))
			return
		}
		if out.Message == "" {
			out, err = s.adminResync()
			if err != nil {
				_ = m.Respond(reply.Fail(err))
				return
			}
		}
		_ = m.Respond(reply.OK(out))
		return
	}
	go func() {
		rep, err := s.askDiscard(req.From)
		if err != nil {
			_ = m.Respond(reply.Fail(err))
			return
		}
		_ = m.Respond(reply.OK(rep))
	}()
}

// checkResyncFrom decides what this node does with a resync naming From:
// run the discard (run), answer as its source (a message), answer as a
// plain resync (neither), or refuse.
func (s *Service) checkResyncFrom(req api.ReplRequest) (api.ReplReply, bool, error) {
	self := s.cfg.Node
	switch {
	case req.From == "":
		return api.ReplReply{}, false, reply.Errorf(reply.CodeBadRequest, "--discard needs --from NODE: the node whose data is kept")
	case req.From != self && req.From != s.peer:
		return api.ReplReply{}, false, reply.Errorf(reply.CodeBadRequest, "unknown node %q: the nodes of pair %s are %s and %s", req.From, s.cfg.Pair, self, s.peer)
	case req.Node != "" && req.Node == req.From:
		return api.ReplReply{}, false, reply.Errorf(reply.CodeBadRequest, "node %s cannot resync from itself: --from names the node whose data is kept", req.From)
	case req.From == self:
		return api.ReplReply{Status: s.Status(), Skipped: true,
			Message: fmt.Sprintf("source: %s takes this node's data", s.peer)}, false, nil
	case !req.Discard && s.master():
		return api.ReplReply{}, false, reply.Errorf(reply.CodeBadRequest,
			"without --discard a resync reconciles the standby with the master: --from must name the master (%s), or add --discard to make %s equal to %s", self, self, req.From)
	case !req.Discard:
		return api.ReplReply{}, false, nil // today's resync, from the master
	case !s.ready.Load():
		return api.ReplReply{}, false, &reply.Error{Code: reply.CodeInvalidState, Message: "replication is starting"}
	}
	if err := s.peerReachable(); err != nil {
		return api.ReplReply{}, false, err
	}
	return api.ReplReply{}, true, nil
}

// peerReachable asks the peer's server for its batch stream: an answer
// proves the link and the peer's NATS are up.
func (s *Service) peerReachable() error {
	ctx, cancel := context.WithTimeout(s.base, 3*time.Second)
	defer cancel()
	js, err := jetstream.NewWithDomain(s.nc, s.peerDom)
	if err == nil {
		_, err = js.Stream(ctx, subject.ReplStream(s.cfg.Pair, s.peer))
	}
	if err != nil {
		return reply.Errorf(reply.CodeUnavailable, "the peer %s is unreachable (%v): a resync --discard needs both nodes; nothing changed", s.peer, err)
	}
	return nil
}

// askDiscard hands the discard to the receiver and waits for its outcome.
func (s *Service) askDiscard(from string) (api.ReplReply, error) {
	req := ctlReq{kind: "discard", why: "asked by an operator", discarded: make(chan discardResult, 1)}
	select {
	case s.ctl <- req:
	case <-s.base.Done():
		return api.ReplReply{}, reply.Errorf(reply.CodeUnavailable, "the replicator of %s is stopping", s.cfg.Node)
	case <-time.After(30 * time.Second):
		return api.ReplReply{}, reply.Errorf(reply.CodeUnavailable, "the replicator of %s is busy; try again", s.cfg.Node)
	}
	var res discardResult
	select {
	case res = <-req.discarded:
	case <-s.base.Done():
		return api.ReplReply{}, reply.Errorf(reply.CodeUnavailable, "the replicator of %s stopped", s.cfg.Node)
	}
	if res.err != nil {
		return api.ReplReply{}, res.err
	}
	n := 0
	for _, c := range res.rec.Discarded {
		n += c
	}
	out := api.ReplReply{Status: s.Status(), Discarded: res.rec.Discarded,
		Message: fmt.Sprintf("equal to %s: %d rows discarded here, recorded in the conflict table of both nodes", from, n)}
	if len(res.rec.Refused) > 0 {
		out.Refused = res.rec.Refused
	}
	return out, nil
}

// discardFrom runs the discard in the receiver goroutine (see above).
func (r *receiver) discardFrom(ctx context.Context) (store.Reconciled, error) {
	r.abort()
	prevState, prevReason := r.board.get()
	why := "an operator's resync --discard: taking " + r.peer + "'s data"
	r.board.set("syncing", why)
	r.log.Warn().Str("from", r.peer).Msg("discarding what differs from the peer, asked by an operator")
	r.ship.holdShipping(true)
	defer r.ship.holdShipping(false)
	rec, err := r.discardNow(ctx, why)
	if err != nil {
		r.board.set(prevState, prevReason)
		r.log.Warn().Err(err).Msg("resync --discard failed; nothing changed")
		return rec, err
	}
	p, ok, err := r.st.Position(ctx, r.peer)
	if err != nil {
		return rec, err
	}
	r.setIn(p)
	_ = r.m.Step(lineage.Discarded{Pos: toLineage(p), Have: ok})
	if err := r.carryOut(ctx, nil); err != nil && !errors.Is(err, errResync) {
		return rec, err
	}
	if r.pause.on() {
		r.board.set("paused", "by an operator")
	} else {
		r.board.set("running", "")
	}
	return rec, nil
}

func (r *receiver) discardNow(ctx context.Context, why string) (store.Reconciled, error) {
	var rec store.Reconciled
	if err := r.waitPeerApplied(ctx); err != nil {
		return rec, err
	}
	start := time.Now()
	r.rep.emit(event.ReplSnapshot, event.Snapshot{Phase: "started", From: r.peer, Why: event.Because("R10: " + why)})
	path, rep, err := r.fetch.fetch(ctx, true)
	defer r.fetch.setProgress(nil)
	if path != "" {
		defer os.Remove(path)
	}
	if err != nil {
		return rec, reply.Errorf(reply.CodeUnavailable, "%v; nothing changed", err)
	}
	before := r.st.Refused()
	rec, err = r.st.Discard(ctx, path, r.peer, rep.Stream)
	if err != nil {
		return rec, fmt.Errorf("%w; nothing changed", err)
	}
	r.noteRefusals(before, rec.Refused)
	took := time.Since(start)
	r.met.snapshotSeconds.Observe(took.Seconds())
	r.log.Info().Str("from", r.peer).Any("discarded", rec.Discarded).Dur("took", took).Msg("made equal to the peer; the discarded rows are in the conflict table")
	r.rep.emit(event.ReplSnapshot, event.Snapshot{Phase: "discarded", From: r.peer, Bytes: rep.Size, Log: rep.Log, DB: rep.DB,
		Seconds: took.Seconds(), Taken: rec.Taken, Discarded: rec.Discarded, Refused: rec.Refused,
		Why: event.Because("R10: " + why + "; every discarded row is kept in _tandem_conflict on both nodes")})
	return rec, nil
}

// waitPeerApplied waits, with shipping held, until the peer has applied
// every batch this node shipped (and none is in flight).
func (r *receiver) waitPeerApplied(ctx context.Context) error {
	// A shipment in progress ends first (holding shipping keeps the next one
	// from starting).
	if !r.ship.idle() {
		return fmt.Errorf("shipping is not held") // the caller holds it: a bug
	}
	deadline := time.Now().Add(discardWait)
	for {
		info, err := r.st.Info(ctx)
		if err != nil {
			return err
		}
		shipped, acked := r.ship.progress()
		if shipped <= info.DBStart || (acked.db == info.DB && acked.log >= shipped) {
			return nil
		}
		if time.Now().After(deadline) {
			return reply.Errorf(reply.CodeUnavailable, "%s has not applied this node's changes up to %d within %s (it applied %d): "+
				"it may be paused, blocked or cut off; nothing changed", r.peer, shipped, discardWait, acked.log)
		}
		if !clock.Sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

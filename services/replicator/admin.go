package replicator

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
)

// errHook marks an error from the BeforeApply fault hook.
var errHook = errors.New("fault hook")

// VerifyBuckets is the number of buckets per table checksum.
const VerifyBuckets = 64

// verifyRowLimit caps the rows one verify reply lists.
const verifyRowLimit = 1000

// subscribe listens for the peer's applied positions, snapshot and piece
// requests and admin verbs.
func (s *Service) subscribe() error {
	p, n := s.cfg.Pair, s.cfg.Node
	subs, err := bus.SubscribeAll(s.nc, map[string]nats.MsgHandler{
		subject.ReplApplied(p, n):  s.ship.onApplied,
		subject.ReplSnapshot(p, n): s.snap.onRequest,
		subject.ReplChunk(p, n):    s.snap.onChunk,
		subject.ReplPiece(p, n):    s.pieces.onPiece,
		subject.ReplConfig(p, n):   s.onConfig, // the notifier's read: no answer until the database is open
	}, bus.Limits{Msgs: 1024, Bytes: 64 << 20})
	if err != nil {
		return fmt.Errorf("replicator: %w", err)
	}
	s.subs = subs
	return nil
}

// subscribeAdmin subscribes the operators' verbs for the whole of Run: a
// replicator still learning its peer's name, or opening its database
// again, answers status with why.
func (s *Service) subscribeAdmin() (bus.Subscriptions, error) {
	p := s.cfg.Pair
	handlers := map[string]nats.MsgHandler{}
	for _, verb := range []string{api.VerbReplPause, api.VerbReplResume, api.VerbReplResync, api.VerbReplVerify, api.VerbReplStatus} {
		handlers[subject.ReplAdmin(p, verb)] = s.onAdmin
	}
	subs, err := bus.SubscribeAll(s.nc, handlers, bus.Limits{Msgs: 1024, Bytes: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("replicator: %w", err)
	}
	return subs, nil
}

// onAdmin answers the replication verbs (SPEC §8 reply shape).
func (s *Service) onAdmin(m *nats.Msg) {
	verb := m.Subject[strings.LastIndex(m.Subject, ".repl.")+1:]
	var req api.ReplRequest
	if err := api.Decode(m.Data, s.cfg.Pair, &req); err != nil {
		s.rep.reject("admin."+verb, m.Subject, err)
		_ = m.Respond(reply.Fail(err))
		return
	}
	if req.Node != "" && req.Node != s.cfg.Node {
		s.mu.Lock()
		peer := s.peer
		s.mu.Unlock()
		if peer != "" && req.Node != peer {
			_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeBadRequest, "unknown node %q: the nodes of pair %s are %s and %s",
				req.Node, s.cfg.Pair, min(s.cfg.Node, peer), max(s.cfg.Node, peer))))
			return
		}
		_ = m.Respond(reply.OK(api.ReplReply{Status: s.Status(), Skipped: true}))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out any
	var err error
	switch verb {
	case api.VerbReplPause, api.VerbReplResume:
		if req.Node == "" && !s.ready.Load() {
			// A pair-wide decision while this replicator starts: the
			// peer takes it, and this node follows it once its database
			// is open (followPause), as when it did not answer at all.
			out = api.ReplReply{Status: s.Status(), Skipped: true, Message: "starting: follows the pair's decision once its database is open"}
			break
		}
		err = s.SetPaused(ctx, verb == api.VerbReplPause, req.Node != "")
		out = api.ReplReply{Status: s.Status()}
	case api.VerbReplResync:
		if req.From != "" || req.Discard {
			if !s.ready.Load() { // (and s.peer may still be being learnt)
				_ = m.Respond(reply.Fail(&reply.Error{Code: reply.CodeInvalidState, Message: "replication is starting"}))
				return
			}
			s.adminResyncFrom(m, req)
			return
		}
		out, err = s.adminResync()
	case api.VerbReplVerify:
		out, err = s.Verify(ctx, req.Table, req.Buckets)
	case api.VerbReplStatus:
		out = api.ReplReply{Status: s.Status()}
	}
	if err != nil {
		_ = m.Respond(reply.Fail(err))
		return
	}
	_ = m.Respond(reply.OK(out))
}

// opened is the store of the session running (nil before, and between
// sessions). The caller holds s.sess for reading.
func (s *Service) opened() store.Store {
	if !s.ready.Load() {
		return nil
	}
	return s.st
}

func (s *Service) adminResync() (api.ReplReply, error) {
	if s.master() {
		return api.ReplReply{Status: s.Status(), Skipped: true, Message: "the master is the source of a resync"}, nil
	}
	if s.pause.on() {
		return api.ReplReply{}, reply.Errorf(reply.CodeInvalidState, "replication is paused on %s; resume first", s.cfg.Node)
	}
	s.sess.RLock()
	if s.opened() == nil {
		s.sess.RUnlock()
		return api.ReplReply{}, &reply.Error{Code: reply.CodeInvalidState, Message: "replication is starting"}
	}
	s.recv.ask(ctlReq{kind: "operator", why: "asked by an operator"})
	s.sess.RUnlock()
	return api.ReplReply{Status: s.Status(), Message: "resync started"}, nil
}

// Status is this node's replication state.
func (s *Service) Status() api.ReplStatus {
	st := api.ReplStatus{Node: s.cfg.Node, Role: string(s.cfg.Role), Paused: s.pause.on()}
	st.State, st.Reason = s.board.get()
	s.mu.Lock()
	st.In = api.ReplDirection{From: s.peer, To: s.cfg.Node}
	s.mu.Unlock()
	s.sess.RLock()
	defer s.sess.RUnlock()
	if s.opened() == nil {
		return st
	}
	var acked peerPos
	st.Shipped, acked = s.ship.progress()
	in := s.recv.status()
	st.In.DB, st.In.Applied, st.In.Pending, st.In.LagMS = in.db, in.applied, in.pending, in.lagNow(time.Now()).Milliseconds()
	if !in.at.IsZero() {
		st.In.LastApplied = in.at.UTC().Format(time.RFC3339Nano)
	}
	st.Snapshot = s.recv.fetch.progress()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if info, err := s.st.Info(ctx); err == nil {
		st.DB, st.LogHigh, st.Unpruned, st.Conflicts = info.DB, info.LogHigh, info.LogRows, info.Conflicts
		st.Unacked = unacked(info, acked)
	}
	if r := s.st.Refused(); len(r) > 0 {
		st.Refused = r
	}
	return st
}

// Verify returns the tables' checksums, or the row hashes of the given
// buckets of one table (R7).
func (s *Service) Verify(ctx context.Context, table string, buckets []int) (api.ReplVerifyReply, error) {
	out := api.ReplVerifyReply{Node: s.cfg.Node, Role: string(s.cfg.Role)}
	s.sess.RLock()
	defer s.sess.RUnlock()
	if s.opened() == nil {
		return out, &reply.Error{Code: reply.CodeInvalidState, Message: "replication is starting"}
	}
	out.Applied = s.recv.status().applied
	if r := s.st.Refused(); len(r) > 0 {
		out.Refused = r
	}
	if table != "" {
		rows, err := s.st.RowSums(ctx, table, VerifyBuckets, buckets, verifyRowLimit)
		if err != nil {
			return out, reply.Errorf(reply.CodeBadRequest, "%v", err)
		}
		for _, r := range rows {
			out.Rows = append(out.Rows, api.ReplRowSum{PK: r.PK, Hash: r.Hash})
		}
		return out, nil
	}
	sums, err := s.st.Sums(ctx, VerifyBuckets)
	if err != nil {
		return out, err
	}
	for _, t := range sums {
		out.Tables = append(out.Tables, api.ReplTableSum{Table: t.Table, Rows: t.Rows, Sum: t.Sum, Buckets: t.Buckets})
	}
	return out, nil
}

// lagNow is the lag of this direction at now: 0 when nothing of the
// peer's stream is pending (caught up), else the age of the last change
// applied — the oldest not yet applied is at most that old. It is not the
// lag of the last apply frozen in time (an idle pair has no lag).
func (in inStatus) lagNow(now time.Time) time.Duration {
	if in.pending == 0 || in.lastTS == 0 {
		return 0
	}
	return max(now.Sub(time.Unix(0, int64(in.lastTS*1e9))), 0)
}

// unacked is how many of this database's changes the peer has not yet
// acknowledged applying.
func unacked(info store.Info, acked peerPos) uint64 {
	from := info.DBStart
	if acked.db == info.DB {
		from = max(from, acked.log)
	}
	if info.LogHigh <= from {
		return 0
	}
	return info.LogHigh - from
}

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
	"github.com/tandem-ha/tandem/pkg/event"
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

// subscribe listens for the peer's applied positions, snapshot requests and
// admin verbs.
func (s *Service) subscribe() error {
	p, n := s.cfg.Pair, s.cfg.Node
	handlers := map[string]nats.MsgHandler{
		subject.ReplApplied(p, n):  s.onApplied,
		subject.ReplSnapshot(p, n): s.onSnapshotRequest,
		subject.ReplChunk(p, n):    s.onChunk,
		subject.ReplConfig(p, n):   s.onConfig,
	}
	for _, verb := range []string{api.VerbReplPause, api.VerbReplResume, api.VerbReplResync, api.VerbReplVerify, api.VerbReplStatus} {
		handlers[subject.ReplAdmin(p, verb)] = s.onAdmin
	}
	subs, err := bus.SubscribeAll(s.nc, handlers, bus.Limits{Msgs: 1024, Bytes: 64 << 20})
	if err != nil {
		return fmt.Errorf("replicator: %w", err)
	}
	s.subs = subs
	return nil
}

// onAdmin answers the replication verbs (SPEC §8 reply shape).
func (s *Service) onAdmin(m *nats.Msg) {
	verb := m.Subject[strings.LastIndex(m.Subject, ".repl.")+1:]
	var req api.ReplRequest
	if err := api.Decode(m.Data, s.cfg.Pair, &req); err != nil {
		s.reject("admin."+verb, m.Subject, err)
		_ = m.Respond(reply.Fail(err))
		return
	}
	if req.Node != "" && req.Node != s.cfg.Node {
		_ = m.Respond(reply.OK(api.ReplReply{Status: s.Status(), Skipped: true}))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out any
	var err error
	switch verb {
	case api.VerbReplPause, api.VerbReplResume:
		err = s.SetPaused(ctx, verb == api.VerbReplPause, req.Node != "")
		out = api.ReplReply{Status: s.Status()}
	case api.VerbReplResync:
		if req.From != "" || req.Discard {
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

// SetPaused pauses or resumes replication on this node (R4), persisted. A
// decision for the pair is followed by the peer (see followPause); one for
// this node alone (onlyHere: `repl pause --node N`, the way to hold a node
// back for a `resync --discard`) keeps the time of the pair's decision in
// force, so the peer does not follow it and this node still follows the
// pair's next one.
func (s *Service) SetPaused(ctx context.Context, paused, onlyHere bool) error {
	if s.opened() == nil {
		return &reply.Error{Code: reply.CodeInvalidState, Message: "replication is starting"}
	}
	at := time.Now()
	if onlyHere {
		at = time.Unix(0, s.pauseAt.Load())
	}
	return s.setPaused(ctx, paused, at, 0, "by an operator")
}

// followPause adopts the peer's pause or resume when it was decided after
// the one this node follows (R4): the operator's command reached only the
// peer.
func (s *Service) followPause(paused bool, at int64) {
	if at == 0 || at <= s.pauseAt.Load() || s.opened() == nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.base, 5*time.Second)
	defer cancel()
	if err := s.setPaused(ctx, paused, time.Unix(0, at), at, "following "+s.peer); err != nil {
		s.log.Warn().Err(err).Bool("paused", paused).Msg("follow the peer's pause")
	}
}

// setPaused persists a pause or resume decided at; newerThan > 0 applies it
// only if it is still newer than the one in force (the peer's, followed).
func (s *Service) setPaused(ctx context.Context, paused bool, at time.Time, newerThan int64, why string) error {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	if newerThan > 0 && newerThan <= s.pauseAt.Load() {
		return nil
	}
	if err := s.st.SetPaused(ctx, paused, at); err != nil {
		return err
	}
	s.pauseAt.Store(at.UnixNano())
	was := s.paused.Swap(paused)
	if was == paused {
		return nil
	}
	typ, state := event.ReplResumed, "running"
	s.met.paused.Set(0)
	if paused {
		typ, state = event.ReplPaused, "paused"
		s.met.paused.Set(1)
	}
	s.setState(state, why)
	s.emit(typ, event.Because("R4: "+why))
	poke(s.resume)
	poke(s.wake)
	return nil
}

// opened is the store once Run has opened it (nil before).
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
	if s.paused.Load() {
		return api.ReplReply{}, reply.Errorf(reply.CodeInvalidState, "replication is paused on %s; resume first", s.cfg.Node)
	}
	if s.opened() == nil {
		return api.ReplReply{}, &reply.Error{Code: reply.CodeInvalidState, Message: "replication is starting"}
	}
	s.ask(ctlReq{kind: "operator", why: "asked by an operator"})
	return api.ReplReply{Status: s.Status(), Message: "resync started"}, nil
}

// Status is this node's replication state.
func (s *Service) Status() api.ReplStatus {
	st := api.ReplStatus{Node: s.cfg.Node, Role: string(s.cfg.Role), Paused: s.paused.Load()}
	s.mu.Lock()
	st.State, st.Reason = s.state, s.reason
	st.Shipped = s.shipped
	st.In = api.ReplDirection{From: s.peer, To: s.cfg.Node, DB: s.in.db, Applied: s.in.applied, Pending: s.in.pending,
		LagMS: s.in.lagNow(time.Now()).Milliseconds()}
	acked := s.peerApplied
	if !s.in.at.IsZero() {
		st.In.LastApplied = s.in.at.UTC().Format(time.RFC3339Nano)
	}
	if s.snapProg != nil {
		p := *s.snapProg
		st.Snapshot = &p
	}
	s.mu.Unlock()
	if s.opened() != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if info, err := s.st.Info(ctx); err == nil {
			st.DB, st.LogHigh, st.Unpruned, st.Conflicts = info.DB, info.LogHigh, info.LogRows, info.Conflicts
			st.Unacked = unacked(info, acked)
		}
		if r := s.st.Refused(); len(r) > 0 {
			st.Refused = r
		}
	}
	return st
}

// Verify returns the tables' checksums, or the row hashes of the given
// buckets of one table (R7).
func (s *Service) Verify(ctx context.Context, table string, buckets []int) (api.ReplVerifyReply, error) {
	out := api.ReplVerifyReply{Node: s.cfg.Node, Role: string(s.cfg.Role)}
	if s.opened() == nil {
		return out, &reply.Error{Code: reply.CodeInvalidState, Message: "replication is starting"}
	}
	s.mu.Lock()
	out.Applied = s.in.applied
	s.mu.Unlock()
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

package replicator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// snapMaking is a snapshot being made for the peer and the requests that
// wait for it.
type snapMaking struct {
	discard bool
	waiters []*nats.Msg
}

// servedSnap is a snapshot file the master serves.
type servedSnap struct {
	path    string
	reply   wire.SnapshotReply
	created time.Time
}

// snapServer serves snapshots of this node's database to the peer: the
// master's for a standby's resync, either node's for a resync --discard.
// NATS handlers (onRequest, onChunk) and the goroutines making snapshots
// share its state under mu; end stops it.
type snapServer struct {
	pair, node, peer string
	master           bool
	dir              string
	st               store.Reconciler
	js               jetstream.JetStream
	paused           func() bool
	drop             func() bool // fault hook: DropSnapshotRequest
	rep              *reporter
	log              zerolog.Logger
	base             context.Context // ends when Run ends

	mu     sync.Mutex // guards the fields below
	snaps  map[string]*servedSnap
	making *snapMaking // the snapshot being made for the peer, if any
	closed bool        // Run is ending: no snapshot is started
	wg     sync.WaitGroup
}

// onRequest makes a snapshot for the peer: VACUUM INTO, checksum,
// reply.
func (s *snapServer) onRequest(m *nats.Msg) {
	var req wire.SnapshotRequest
	err := event.DecodeStrict(m.Data, 4096, &req)
	if err == nil && (req.V != wire.Version || req.Pair != s.pair || req.Node != s.peer) {
		err = fmt.Errorf("snapshot request v%d pair %q from %q", req.V, req.Pair, req.Node)
	}
	if err != nil {
		s.rep.reject("snapshot", m.Subject, err)
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeBadRequest, "%v", err)))
		return
	}
	if !s.master && !req.Discard {
		_ = m.Respond(reply.Fail(&reply.Error{Code: reply.CodeNotMaster, Message: "snapshots come from the master", Node: s.peer}))
		return
	}
	if s.paused() {
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeInvalidState, "replication is paused on %s; resume first", s.node)))
		return
	}
	if s.drop != nil && s.drop() {
		return
	}
	s.serve(m, req.Discard)
}

// serveSnapshot answers m with a snapshot: a request that comes while one
// of its kind is being made waits for that one (the standby asks again
// when an answer is late); otherwise a goroutine makes one, so that the
// handler stays free to hear those requests.
func (s *snapServer) serve(m *nats.Msg, discard bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeUnavailable, "the replicator of %s is stopping", s.node)))
	case s.making != nil && s.making.discard == discard:
		if len(s.making.waiters) == maxSnapWaiters {
			s.making.waiters = s.making.waiters[1:] // the oldest asker has given up long ago
		}
		s.making.waiters = append(s.making.waiters, m)
	case s.making != nil:
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeInvalidState, "%s is making another kind of snapshot; ask again", s.node)))
	default:
		s.making = &snapMaking{discard: discard, waiters: []*nats.Msg{m}}
		s.wg.Go(func() { s.makeForWaiters(discard) })
	}
}

// makeForWaiters makes a snapshot and answers every request waiting for it.
func (s *snapServer) makeForWaiters(discard bool) {
	rep, err := s.make(discard)
	answer := reply.OK(rep)
	if err != nil {
		s.log.Error().Err(err).Msg("snapshot for the standby")
		answer = reply.Fail(err)
	}
	s.mu.Lock()
	waiters := s.making.waiters
	s.making = nil
	s.mu.Unlock()
	for _, w := range waiters {
		_ = w.Respond(answer)
	}
}

// close stops snapshots from starting; wait then waits for those being
// made (their context, base, is cancelled in between).
func (s *snapServer) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

func (s *snapServer) wait() { s.wg.Wait() }

// make makes a snapshot for the standby. The standby's batches go
// on being applied meanwhile: it merges the snapshot by version and sends
// back what the master lacks (R10), so nothing it shipped is overwritten
// and nothing needs fencing (a fenced standby whose transfer then failed
// was never heard again).
func (s *snapServer) make(discard bool) (wire.SnapshotReply, error) {
	ctx, cancel := context.WithTimeout(s.base, snapMakeWait)
	defer cancel()
	s.clean(false)
	last, err := s.lastStreamSeq(ctx)
	if err != nil {
		return wire.SnapshotReply{}, err
	}
	id := nuid.Next()
	path := filepath.Join(s.dir, "snapshot-"+id+".db")
	start := time.Now()
	snap, err := s.st.Snapshot(ctx, path)
	if err != nil {
		os.Remove(path)
		return wire.SnapshotReply{}, err
	}
	sum, size, err := fileSum(path)
	if err != nil {
		os.Remove(path)
		return wire.SnapshotReply{}, err
	}
	rep := wire.SnapshotReply{ID: id, Size: size, ChunkSize: chunkSize, Chunks: int((size + chunkSize - 1) / chunkSize),
		SHA256: sum, DB: snap.DB, Log: snap.Log, Stream: last}
	s.mu.Lock()
	s.snaps[id] = &servedSnap{path: path, reply: rep, created: time.Now()}
	s.mu.Unlock()
	why := "R1: the standby asked for a snapshot"
	if discard {
		why = "R10: " + s.peer + " takes this node's data, discarding what differs there (an operator's resync --discard)"
	}
	s.log.Info().Int64("bytes", size).Dur("took", time.Since(start)).Uint64("log", snap.Log).Bool("discard", discard).Msg("snapshot made for the peer")
	s.rep.emit(event.ReplSnapshot, event.Snapshot{Phase: "made", Bytes: size, Log: snap.Log, DB: snap.DB,
		Seconds: time.Since(start).Seconds(), Why: event.Because(why)})
	return rep, nil
}

// lastStreamSeq is the last sequence of this node's batch stream.
func (s *snapServer) lastStreamSeq(ctx context.Context) (uint64, error) {
	st, err := s.js.Stream(ctx, subject.ReplStream(s.pair, s.node))
	if err != nil {
		return 0, fmt.Errorf("the batch stream: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("the batch stream: %w", err)
	}
	return info.State.LastSeq, nil
}

func fileSum(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// onChunk serves one chunk of a snapshot.
func (s *snapServer) onChunk(m *nats.Msg) {
	var req wire.ChunkRequest
	err := event.DecodeStrict(m.Data, 4096, &req)
	if err == nil && (req.V != wire.Version || req.Pair != s.pair) {
		err = fmt.Errorf("chunk request v%d pair %q", req.V, req.Pair)
	}
	s.mu.Lock()
	sn := s.snaps[req.ID]
	s.mu.Unlock()
	if err == nil && (sn == nil || req.Index < 0 || req.Index >= sn.reply.Chunks) {
		err = fmt.Errorf("no chunk %d of snapshot %q", req.Index, req.ID)
	}
	if err != nil {
		s.rep.reject("chunk", m.Subject, err)
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeBadRequest, "%v", err)))
		return
	}
	buf, err := readChunk(sn.path, req.Index)
	if err != nil {
		_ = m.Respond(reply.Fail(err))
		return
	}
	sum := sha256.Sum256(buf)
	out := nats.NewMsg(m.Reply)
	out.Data = buf
	out.Header.Set(wire.ChunkSumHeader, hex.EncodeToString(sum[:]))
	_ = m.RespondMsg(out)
	if req.Index == sn.reply.Chunks-1 {
		s.log.Debug().Str("id", req.ID).Msg("last chunk of a snapshot served")
	}
}

func readChunk(path string, i int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, chunkSize)
	n, err := f.ReadAt(buf, int64(i)*chunkSize)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// cleanSnapshots removes served snapshots older than snapKeep (all with all).
func (s *snapServer) clean(all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sn := range s.snaps {
		if all || time.Since(sn.created) > snapKeep {
			os.Remove(sn.path)
			delete(s.snaps, id)
		}
	}
}

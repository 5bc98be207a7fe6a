package replicator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/lineage"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// Snapshot transfer.
const (
	chunkSize    = 512 << 10
	snapKeep     = 10 * time.Minute // a served snapshot file is removed after this
	snapMakeWait = 10 * time.Minute // the longest a standby waits for the master's VACUUM INTO
	// snapAsk is how long a standby waits for an answer before asking for
	// the snapshot again: a request or its reply lost with a cut link is
	// never answered (the master joins a repeated request to the snapshot
	// it is making, so asking again costs no second snapshot).
	snapAsk   = 5 * time.Second
	chunkWait = 10 * time.Second
	// maxSnapWaiters bounds the requests answered by one snapshot.
	maxSnapWaiters = 256
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

// onSnapshotRequest makes a snapshot for the peer: VACUUM INTO, checksum,
// reply.
func (s *Service) onSnapshotRequest(m *nats.Msg) {
	var req wire.SnapshotRequest
	err := event.DecodeStrict(m.Data, 4096, &req)
	if err == nil && (req.V != wire.Version || req.Pair != s.cfg.Pair || req.Node != s.peer) {
		err = fmt.Errorf("snapshot request v%d pair %q from %q", req.V, req.Pair, req.Node)
	}
	if err != nil {
		s.rep.reject("snapshot", m.Subject, err)
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeBadRequest, "%v", err)))
		return
	}
	if !s.master() && !req.Discard {
		_ = m.Respond(reply.Fail(&reply.Error{Code: reply.CodeNotMaster, Message: "snapshots come from the master", Node: s.peer}))
		return
	}
	if s.pause.on() {
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeInvalidState, "replication is paused on %s; resume first", s.cfg.Node)))
		return
	}
	if s.dropSnap != nil && s.dropSnap() {
		return
	}
	s.serveSnapshot(m, req.Discard)
}

// serveSnapshot answers m with a snapshot: a request that comes while one
// of its kind is being made waits for that one (the standby asks again
// when an answer is late); otherwise a goroutine makes one, so that the
// handler stays free to hear those requests.
func (s *Service) serveSnapshot(m *nats.Msg, discard bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.snapClosed:
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeUnavailable, "the replicator of %s is stopping", s.cfg.Node)))
	case s.making != nil && s.making.discard == discard:
		if len(s.making.waiters) == maxSnapWaiters {
			s.making.waiters = s.making.waiters[1:] // the oldest asker has given up long ago
		}
		s.making.waiters = append(s.making.waiters, m)
	case s.making != nil:
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeInvalidState, "%s is making another kind of snapshot; ask again", s.cfg.Node)))
	default:
		s.making = &snapMaking{discard: discard, waiters: []*nats.Msg{m}}
		s.snapWG.Go(func() { s.makeForWaiters(discard) })
	}
}

// makeForWaiters makes a snapshot and answers every request waiting for it.
func (s *Service) makeForWaiters(discard bool) {
	rep, err := s.makeSnapshot(discard)
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

// endSnapshots stops snapshots from starting and waits for those being
// made (their context, s.base, is cancelled first).
func (s *Service) endSnapshots() {
	s.mu.Lock()
	s.snapClosed = true
	s.mu.Unlock()
	s.cancelBase()
	s.snapWG.Wait()
}

// makeSnapshot makes a snapshot for the standby. The standby's batches go
// on being applied meanwhile: it merges the snapshot by version and sends
// back what the master lacks (R10), so nothing it shipped is overwritten
// and nothing needs fencing (a fenced standby whose transfer then failed
// was never heard again).
func (s *Service) makeSnapshot(discard bool) (wire.SnapshotReply, error) {
	ctx, cancel := context.WithTimeout(s.base, snapMakeWait)
	defer cancel()
	s.cleanSnapshots(false)
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
func (s *Service) lastStreamSeq(ctx context.Context) (uint64, error) {
	st, err := s.js.Stream(ctx, subject.ReplStream(s.cfg.Pair, s.cfg.Node))
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
func (s *Service) onChunk(m *nats.Msg) {
	var req wire.ChunkRequest
	err := event.DecodeStrict(m.Data, 4096, &req)
	if err == nil && (req.V != wire.Version || req.Pair != s.cfg.Pair) {
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
func (s *Service) cleanSnapshots(all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, sn := range s.snaps {
		if all || time.Since(sn.created) > snapKeep {
			os.Remove(sn.path)
			delete(s.snaps, id)
		}
	}
}

// reconcile merges a snapshot of the master's database into this
// standby's, row by row by version (R1, R10), and steps the outcome into
// the machine. It runs in the receiver goroutine. Its error is fatal only
// when the outcome cannot be carried out (a fault hook).
func (s *Service) reconcile(ctx context.Context, r *receiver, why string) error {
	s.log.Info().Str("reason", why).Msg("re-syncing from the master")
	err := s.resync(ctx, why)
	if ctx.Err() != nil {
		return nil
	}
	in := lineage.Reconciled{Now: time.Now(), Err: err}
	if err == nil {
		var p store.Position
		p, in.Have, in.Err = s.st.Position(ctx, s.peer)
		in.Pos = toLineage(p)
		if in.Err == nil {
			s.setIn(p)
		}
	}
	if err := r.m.Step(in); err != nil {
		return err
	}
	if in.Err == nil {
		poke(s.wake)
	} else {
		s.log.Warn().Err(in.Err).Str("why", why).Msg("resync failed")
	}
	if err := s.carryOut(ctx, r, nil); err != nil && !errors.Is(err, errResync) {
		return err
	}
	return nil
}

// resync fetches the master's snapshot and merges it (store.Restore).
func (s *Service) resync(ctx context.Context, why string) error {
	start := time.Now()
	s.rep.emit(event.ReplSnapshot, event.Snapshot{Phase: "started", Why: event.Because("R1: " + why)})
	path, rep, err := s.fetchSnapshot(ctx, false)
	defer s.setProgress(nil)
	if path != "" {
		defer os.Remove(path)
	}
	if err != nil {
		return err
	}
	before := s.st.Refused()
	rec, err := s.st.Restore(ctx, path, s.peer, rep.Stream)
	if err != nil {
		return err
	}
	for _, c := range rec.Conflicts {
		s.reportConflict(c)
	}
	s.noteRefusals(before, rec.Refused)
	took := time.Since(start)
	s.met.snapshotSeconds.Observe(took.Seconds())
	s.log.Info().Int64("bytes", rep.Size).Dur("took", took).Uint64("log", rep.Log).Msg("re-synced from the master's snapshot")
	s.rep.emit(event.ReplSnapshot, event.Snapshot{Phase: "restored", Bytes: rep.Size, Log: rep.Log, DB: rep.DB,
		Seconds: took.Seconds(), Taken: rec.Taken, Kept: rec.Kept, Conflicts: len(rec.Conflicts),
		Why: event.Because("R10: " + why)})
	return nil
}

// noteRefusals reports the tables a reconcile refused for an incompatible
// schema that were not refused before, and logs those picked up again.
func (s *Service) noteRefusals(before, refused map[string]string) {
	newly := map[string]string{}
	for tbl, why := range refused {
		if before[tbl] != why {
			newly[tbl] = why
		}
	}
	for tbl := range before {
		if _, still := s.st.Refused()[tbl]; !still {
			s.log.Info().Str("table", tbl).Msg("table picked up again: its schema now matches the peer's")
		}
	}
	s.rep.refused(newly, s.st.Refused())
}

// fetchSnapshot asks the master for a snapshot and fetches it chunk by
// chunk, checking each chunk and the whole file.
func (s *Service) fetchSnapshot(ctx context.Context, discard bool) (string, wire.SnapshotReply, error) {
	rep, err := s.askSnapshot(ctx, discard)
	if err != nil {
		return "", rep, fmt.Errorf("ask %s for a snapshot: %w", s.peer, err)
	}
	path := filepath.Join(s.dir, "restore-"+rep.ID+".db")
	f, err := os.Create(path)
	if err != nil {
		return "", rep, err
	}
	defer f.Close()
	whole := sha256.New()
	w := io.MultiWriter(f, whole)
	for i := 0; i < rep.Chunks; i++ {
		buf, err := s.fetchChunk(ctx, rep.ID, i)
		if err != nil {
			return path, rep, err
		}
		if _, err := w.Write(buf); err != nil {
			return path, rep, err
		}
		p := float64(i+1) / float64(rep.Chunks)
		s.setProgress(&p)
		if (i+1)%max(rep.Chunks/10, 1) == 0 {
			s.log.Info().Int("chunk", i+1).Int("chunks", rep.Chunks).Msg("snapshot transfer")
		}
	}
	if got := hex.EncodeToString(whole.Sum(nil)); got != rep.SHA256 {
		return path, rep, fmt.Errorf("snapshot checksum %s, the master's is %s", got, rep.SHA256)
	}
	return path, rep, f.Sync()
}

// askSnapshot asks the peer for a snapshot, and again every snapAsk while
// no answer comes, for at most snapMakeWait.
func (s *Service) askSnapshot(ctx context.Context, discard bool) (wire.SnapshotReply, error) {
	req := wire.SnapshotRequest{V: wire.Version, Pair: s.cfg.Pair, Node: s.cfg.Node, Discard: discard}
	ctx, cancel := context.WithTimeout(ctx, snapMakeWait)
	defer cancel()
	for asked := 1; ; asked++ {
		var rep wire.SnapshotReply
		rctx, cancelAsk := context.WithTimeout(ctx, snapAsk)
		err := reply.Request(rctx, s.nc, subject.ReplSnapshot(s.cfg.Pair, s.peer), req, &rep)
		cancelAsk()
		var re *reply.Error
		if err == nil || ctx.Err() != nil || !errors.As(err, &re) || re.Code != reply.CodeTimeout {
			return rep, err
		}
		s.log.Debug().Int("asked", asked).Msg("no answer to the snapshot request yet; asking again")
	}
}

func (s *Service) fetchChunk(ctx context.Context, id string, i int) ([]byte, error) {
	data, _ := json.Marshal(wire.ChunkRequest{V: wire.Version, Pair: s.cfg.Pair, ID: id, Index: i})
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, chunkWait)
		m, err := s.nc.RequestWithContext(rctx, subject.ReplChunk(s.cfg.Pair, s.peer), data)
		cancel()
		if err == nil {
			if m.Header.Get(wire.ChunkSumHeader) == "" {
				return nil, reply.Decode(m.Data, nil)
			}
			sum := sha256.Sum256(m.Data)
			if hex.EncodeToString(sum[:]) == m.Header.Get(wire.ChunkSumHeader) {
				return m.Data, nil
			}
			err = fmt.Errorf("chunk %d: checksum mismatch", i)
		}
		last = err
		if !clock.Sleep(ctx, 200*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("fetch chunk %d of %s: %w", i, id, last)
}

func (s *Service) setProgress(p *float64) {
	s.mu.Lock()
	s.snapProg = p
	s.mu.Unlock()
	if p != nil {
		s.met.snapshotProgress.Set(*p)
	}
}

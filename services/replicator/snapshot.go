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

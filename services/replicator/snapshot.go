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
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

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
func (r *receiver) reconcile(ctx context.Context, why string) error {
	r.log.Info().Str("reason", why).Msg("re-syncing from the master")
	err := r.resync(ctx, why)
	if ctx.Err() != nil {
		return nil
	}
	in := lineage.Reconciled{Now: time.Now(), Err: err}
	if err == nil {
		var p store.Position
		p, in.Have, in.Err = r.st.Position(ctx, r.peer)
		in.Pos = toLineage(p)
		if in.Err == nil {
			r.setIn(p)
		}
	}
	if err := r.m.Step(in); err != nil {
		return err
	}
	if in.Err == nil {
		poke(r.wake)
	} else {
		r.log.Warn().Err(in.Err).Str("why", why).Msg("resync failed")
	}
	if err := r.carryOut(ctx, nil); err != nil && !errors.Is(err, errResync) {
		return err
	}
	return nil
}

// resync fetches the master's snapshot and merges it (store.Restore).
func (r *receiver) resync(ctx context.Context, why string) error {
	start := time.Now()
	r.rep.emit(event.ReplSnapshot, event.Snapshot{Phase: "started", Why: event.Because("R1: " + why)})
	path, rep, err := r.fetch.fetch(ctx, false)
	defer r.fetch.setProgress(nil)
	if path != "" {
		defer os.Remove(path)
	}
	if err != nil {
		return err
	}
	before := r.st.Refused()
	rec, err := r.st.Restore(ctx, path, r.peer, rep.Stream)
	if err != nil {
		return err
	}
	for _, c := range rec.Conflicts {
		r.reportConflict(c)
	}
	r.noteRefusals(before, rec.Refused)
	took := time.Since(start)
	r.met.snapshotSeconds.Observe(took.Seconds())
	r.log.Info().Int64("bytes", rep.Size).Dur("took", took).Uint64("log", rep.Log).Msg("re-synced from the master's snapshot")
	r.rep.emit(event.ReplSnapshot, event.Snapshot{Phase: "restored", Bytes: rep.Size, Log: rep.Log, DB: rep.DB,
		Seconds: took.Seconds(), Taken: rec.Taken, Kept: rec.Kept, Conflicts: len(rec.Conflicts),
		Why: event.Because("R10: " + why)})
	return nil
}

// noteRefusals reports the tables a reconcile refused for an incompatible
// schema that were not refused before, and logs those picked up again.
func (r *receiver) noteRefusals(before, refused map[string]string) {
	newly := map[string]string{}
	for tbl, why := range refused {
		if before[tbl] != why {
			newly[tbl] = why
		}
	}
	for tbl := range before {
		if _, still := r.st.Refused()[tbl]; !still {
			r.log.Info().Str("table", tbl).Msg("table picked up again: its schema now matches the peer's")
		}
	}
	r.rep.refused(newly, r.st.Refused())
}

// snapFetch fetches the peer's snapshots (the master's for a resync,
// either node's for a discard) into the replicator's directory, and shows
// the transfer's progress. The receiver goroutine fetches; status reads
// the progress under mu.
type snapFetch struct {
	pair, node, peer string
	nc               *nats.Conn
	dir              string
	log              zerolog.Logger
	met              *metrics

	mu   sync.Mutex // guards prog
	prog *float64
}

// progress is the running transfer's progress (nil: none).
func (f *snapFetch) progress() *float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.prog == nil {
		return nil
	}
	p := *f.prog
	return &p
}

// fetch asks the master for a snapshot and fetches it chunk by
// chunk, checking each chunk and the whole file.
func (f *snapFetch) fetch(ctx context.Context, discard bool) (string, wire.SnapshotReply, error) {
	rep, err := f.ask(ctx, discard)
	if err != nil {
		return "", rep, fmt.Errorf("ask %s for a snapshot: %w", f.peer, err)
	}
	path := filepath.Join(f.dir, "restore-"+rep.ID+".db")
	file, err := os.Create(path)
	if err != nil {
		return "", rep, err
	}
	defer file.Close()
	whole := sha256.New()
	w := io.MultiWriter(file, whole)
	for i := 0; i < rep.Chunks; i++ {
		buf, err := f.chunk(ctx, rep.ID, i)
		if err != nil {
			return path, rep, err
		}
		if _, err := w.Write(buf); err != nil {
			return path, rep, err
		}
		p := float64(i+1) / float64(rep.Chunks)
		f.setProgress(&p)
		if (i+1)%max(rep.Chunks/10, 1) == 0 {
			f.log.Info().Int("chunk", i+1).Int("chunks", rep.Chunks).Msg("snapshot transfer")
		}
	}
	if got := hex.EncodeToString(whole.Sum(nil)); got != rep.SHA256 {
		return path, rep, fmt.Errorf("snapshot checksum %s, the master's is %s", got, rep.SHA256)
	}
	return path, rep, file.Sync()
}

// ask asks the peer for a snapshot, and again every snapAsk while
// no answer comes, for at most snapMakeWait.
func (f *snapFetch) ask(ctx context.Context, discard bool) (wire.SnapshotReply, error) {
	req := wire.SnapshotRequest{V: wire.Version, Pair: f.pair, Node: f.node, Discard: discard}
	ctx, cancel := context.WithTimeout(ctx, snapMakeWait)
	defer cancel()
	for asked := 1; ; asked++ {
		var rep wire.SnapshotReply
		rctx, cancelAsk := context.WithTimeout(ctx, snapAsk)
		err := reply.Request(rctx, f.nc, subject.ReplSnapshot(f.pair, f.peer), req, &rep)
		cancelAsk()
		var re *reply.Error
		if err == nil || ctx.Err() != nil || !errors.As(err, &re) || re.Code != reply.CodeTimeout {
			return rep, err
		}
		f.log.Debug().Int("asked", asked).Msg("no answer to the snapshot request yet; asking again")
	}
}

func (f *snapFetch) chunk(ctx context.Context, id string, i int) ([]byte, error) {
	data, _ := json.Marshal(wire.ChunkRequest{V: wire.Version, Pair: f.pair, ID: id, Index: i})
	buf, err := requestSummed(ctx, f.nc, subject.ReplChunk(f.pair, f.peer), data, -1)
	if err != nil {
		return nil, fmt.Errorf("fetch chunk %d of %s: %w", i, id, err)
	}
	return buf, nil
}

// errRefused wraps the peer's refusal of a request for bytes
// (requestSummed).
var errRefused = errors.New("refused")

// requestSummed asks subj (data) for bytes that come with their SHA-256
// in the wire.ChunkSumHeader header, want bytes when want is not negative:
// up to 5 times, each within chunkWait, while no answer comes or the
// answer is damaged. An answer without the header is the peer's refusal,
// returned at once wrapped in errRefused.
func requestSummed(ctx context.Context, nc *nats.Conn, subj string, data []byte, want int) ([]byte, error) {
	var last error
	for attempt := 0; attempt < 5; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, chunkWait)
		m, err := nc.RequestWithContext(rctx, subj, data)
		cancel()
		if err == nil {
			if m.Header.Get(wire.ChunkSumHeader) == "" {
				if err := reply.Decode(m.Data, nil); err != nil {
					return nil, fmt.Errorf("%w: %w", errRefused, err)
				}
				return nil, fmt.Errorf("%w: an answer without its bytes", errRefused)
			}
			sum := sha256.Sum256(m.Data)
			if hex.EncodeToString(sum[:]) == m.Header.Get(wire.ChunkSumHeader) && (want < 0 || len(m.Data) == want) {
				return m.Data, nil
			}
			err = fmt.Errorf("checksum or length mismatch (%d bytes)", len(m.Data))
		}
		last = err
		if !clock.Sleep(ctx, 200*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	return nil, last
}

func (f *snapFetch) setProgress(p *float64) {
	f.mu.Lock()
	f.prog = p
	f.mu.Unlock()
	if p != nil {
		f.met.snapshotProgress.Set(*p)
	}
}

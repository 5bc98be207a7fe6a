package replicator

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// A row too large to be read whole from the change log (a 50 MiB blob is
// 100 MiB of literal) does not pass through the batch stream: its pieces
// travel there without their chunks (wire.EachPieceRef), and the receiver
// asks the source for each chunk when it applies the piece. The log holds
// the row unchanged until the peer has applied it. Through the stream, the
// master's JetStream kept every block it wrote or delivered in memory for
// 10 s after its last use: the whole row's literal, and the master's
// resident memory grew 250–300 MiB for a 50 MiB row (R12: about twice).
// One chunk at a time is on the link, never megabytes ahead of the
// heartbeats.

// pieceLinger is how long the piece server keeps the slice it read last
// after the last request for it.
const pieceLinger = 5 * time.Second

// pieceServer answers the peer's requests for the chunks of this node's
// large rows (subject.ReplPiece). It reads the row a slice of
// wire.PiecesPerSlice pieces at a time, as the shipper once did, and keeps
// the last slice for the requests that follow (they come in order): the
// requests of one row cost one read of it. The NATS handler (onPiece) and
// the timer that drops the slice share it under mu.
type pieceServer struct {
	pair string
	st   interface {
		ReadPiece(ctx context.Context, r wire.PieceRequest, off, n int) (string, error)
	}
	rep  *reporter
	base context.Context // ends when the session ends

	mu    sync.Mutex
	key   wire.PieceRequest // the slice held: its row, Piece its first piece
	slice string
	drop  *time.Timer
}

// onPiece answers one request: the chunk with its SHA-256, or an error.
func (s *pieceServer) onPiece(m *nats.Msg) {
	var req wire.PieceRequest
	err := event.DecodeStrict(m.Data, 4096, &req)
	if err == nil {
		err = req.Validate(s.pair)
	}
	if err != nil {
		s.rep.reject("piece", m.Subject, err)
		_ = m.Respond(reply.Fail(reply.Errorf(reply.CodeBadRequest, "%v", err)))
		return
	}
	chunk, err := s.chunk(req)
	if err != nil {
		if errors.Is(err, store.ErrNoPiece) {
			err = reply.Errorf(reply.CodeInvalidState, "%v", err)
		}
		_ = m.Respond(reply.Fail(err))
		return
	}
	sum := sha256.Sum256([]byte(chunk))
	out := nats.NewMsg(m.Reply)
	out.Data = []byte(chunk)
	out.Header.Set(wire.ChunkSumHeader, hex.EncodeToString(sum[:]))
	_ = m.RespondMsg(out)
}

// chunk is the chunk req asks for, from the slice held or a new one.
func (s *pieceServer) chunk(req wire.PieceRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := req
	key.Piece, key.Fetch = req.Piece/wire.PiecesPerSlice*wire.PiecesPerSlice, 0
	if key != s.key || s.slice == "" {
		s.key, s.slice = wire.PieceRequest{}, ""
		ctx, cancel := context.WithTimeout(s.base, 30*time.Second)
		slice, err := s.st.ReadPiece(ctx, req, key.Piece*wire.PieceSize, wire.PiecesPerSlice*wire.PieceSize)
		cancel()
		if err != nil {
			return "", err
		}
		s.key, s.slice = key, slice
	}
	if s.drop == nil {
		s.drop = time.AfterFunc(pieceLinger, s.forget)
	} else {
		s.drop.Reset(pieceLinger)
	}
	off := (req.Piece - key.Piece) * wire.PieceSize
	if off+req.Fetch > len(s.slice) || (req.Fetch != wire.PieceSize && off+req.Fetch != len(s.slice)) {
		return "", reply.Errorf(reply.CodeInvalidState, "piece %d of change %d: %d bytes asked, the row has %d there",
			req.Piece, req.Seq, req.Fetch, max(len(s.slice)-off, 0))
	}
	return s.slice[off : off+req.Fetch], nil
}

// forget drops the slice held.
func (s *pieceServer) forget() {
	s.mu.Lock()
	s.key, s.slice = wire.PieceRequest{}, ""
	s.mu.Unlock()
}

// close drops the slice held, at the session's end.
func (s *pieceServer) close() {
	s.mu.Lock()
	if s.drop != nil {
		s.drop.Stop()
	}
	s.key, s.slice = wire.PieceRequest{}, ""
	s.mu.Unlock()
}

// fetchPieces fills in the chunks of b's pieces that travel without them
// (Fetch), one at a time, in order, from the peer's piece server.
func (r *receiver) fetchPieces(ctx context.Context, b *wire.Batch) error {
	for i := range b.Changes {
		c := &b.Changes[i]
		if c.Fetch == 0 {
			continue
		}
		chunk, err := r.fetchPiece(ctx, wire.PieceOf(r.pair, b.DB, *c))
		if err != nil {
			return err
		}
		c.Chunk, c.Fetch = chunk, 0
	}
	return nil
}

// fetchPiece asks the peer for one chunk (requestSummed).
func (r *receiver) fetchPiece(ctx context.Context, req wire.PieceRequest) (string, error) {
	data, _ := json.Marshal(req)
	b, err := requestSummed(ctx, r.nc, subject.ReplPiece(r.pair, r.peer), data, req.Fetch)
	if err != nil {
		return "", fmt.Errorf("fetch piece %d of change %d from %s: %w", req.Piece, req.Seq, r.peer, err)
	}
	return string(b), nil
}

// pieceFailed drops the group whose piece could not be fetched: a refusal
// (the peer's log no longer holds the row) fails the group (the machine
// reports it and backs off, state blocked); anything else (no answer: the
// link or the peer is down) reads the group again from the position, as a
// consumer restart does.
func (r *receiver) pieceFailed(err error) error {
	if errors.Is(err, errRefused) {
		return r.groupFailed(err)
	}
	r.log.Warn().Err(err).Msg("cannot fetch a piece of a large row; reading the group again")
	r.abort()
	return nil
}

// Package storefake is an in-memory store for the replicator's unit tests:
// the log, the apply and the reconcile of package store, on maps, with the
// same version and conflict rules (package conflict). It implements the
// concepts the replication logic drives — LogReader, Applier, Reconciler,
// Identity — and the parts of Verifier that compare data (Sums, Conflicts);
// it has no SQL, so no schema and no ReadTable. The application writes
// through Put and Delete. Snapshots live in a Files map shared by the fakes
// of one test, keyed by path.
package storefake

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/services/replicator/internal/conflict"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// The fake implements the concepts the replication logic drives.
var (
	_ store.LogReader  = (*Store)(nil)
	_ store.Applier    = (*Store)(nil)
	_ store.Reconciler = (*Store)(nil)
	_ store.Identity   = (*Store)(nil)
	_ store.Apply      = (*apply)(nil)
)

// Row is one row: its image (opaque to the fake: the wire's row JSON), its
// version pair and its last op ("d": a deletion kept for its version).
type Row struct {
	Image string
	Ver   conflict.Version
	Op    string
}

// Files holds snapshot "files" by path.
type Files struct {
	mu    sync.Mutex
	snaps map[string]*state
}

// NewFiles returns an empty file system.
func NewFiles() *Files { return &Files{snaps: map[string]*state{}} }

// Store is an in-memory store. It is safe for concurrent use.
type Store struct {
	mu    sync.Mutex // guards st
	st    *state
	side  store.Side
	files *Files
	now   func() time.Time
	ids   func() string
}

// state is everything a database file holds.
type state struct {
	id        string
	dbStart   uint64
	logHigh   uint64
	log       []wire.Change
	rows      map[string]map[string]Row // table → pk → row
	pos       map[string]store.Position
	paused    bool
	pauseAt   time.Time
	shipDB    string // the id SetShipped recorded, and how far
	shipTo    uint64
	conflicts []store.Conflict
}

func (s *state) clone() *state {
	c := *s
	c.log = slices.Clone(s.log)
	c.rows = map[string]map[string]Row{}
	for t, rs := range s.rows {
		c.rows[t] = maps.Clone(rs)
	}
	c.pos = maps.Clone(s.pos)
	c.conflicts = slices.Clone(s.conflicts)
	return &c
}

// Options configure a fake.
type Options struct {
	Side  store.Side
	Files *Files
	// Now is the clock (row versions never fall below it in milliseconds,
	// as in the SQLite store); nil means time.Now.
	Now func() time.Time
	// NewID makes database ids; nil means a counter.
	NewID func() string
}

var idSeq struct {
	sync.Mutex
	n int
}

// New returns an empty database.
func New(o Options) *Store {
	s := &Store{side: o.Side, files: o.Files, now: o.Now, ids: o.NewID}
	if s.files == nil {
		s.files = NewFiles()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ids == nil {
		s.ids = func() string {
			idSeq.Lock()
			defer idSeq.Unlock()
			idSeq.n++
			return fmt.Sprintf("db%d", idSeq.n)
		}
	}
	s.st = &state{id: s.ids(), rows: map[string]map[string]Row{}, pos: map[string]store.Position{}}
	return s
}

// Copy is a copy of the database as a file copy would be (a backup).
func (s *Store) Copy() *Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &Store{st: s.st.clone(), side: s.side, files: s.files, now: s.now, ids: s.ids}
}

// Put writes a row as the application would: captured in the log with a
// raised version.
func (s *Store) Put(table, pk, image string) { s.write(table, pk, image, "u") }

// Delete deletes a row as the application would.
func (s *Store) Delete(table, pk string) { s.write(table, pk, "", wire.OpDelete) }

func (s *Store) write(table, pk, image, op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rs := s.st.rows[table]
	if rs == nil {
		rs = map[string]Row{}
		s.st.rows[table] = rs
	}
	old, ok := rs[pk]
	if op != wire.OpDelete && (!ok || old.Op == wire.OpDelete) {
		op = wire.OpInsert
	}
	if op == wire.OpDelete && (!ok || old.Op == wire.OpDelete) {
		return
	}
	v := s.bump(old.Ver)
	rs[pk] = Row{Image: image, Ver: v, Op: op}
	s.queue(wire.Change{Table: table, Op: op, PK: pk, Row: rowJSON(image), M: v.M, S: v.S})
}

// bump raises the local counter of v, never below the clock in ms.
func (s *Store) bump(v conflict.Version) conflict.Version {
	floor := uint64(s.now().UnixMilli())
	if s.side == store.Master {
		v.M = max(v.M+1, floor)
	} else {
		v.S = max(v.S+1, floor)
	}
	return v
}

func (s *Store) queue(c wire.Change) {
	s.st.logHigh++
	c.Seq = s.st.logHigh
	c.TS = float64(s.now().UnixNano()) / 1e9
	s.st.log = append(s.st.log, c)
}

func rowJSON(image string) []byte {
	if image == "" {
		return nil
	}
	return []byte(image)
}

// Rows is a copy of table's live rows: pk → image.
func (s *Store) Rows(table string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for pk, r := range s.st.rows[table] {
		if r.Op != wire.OpDelete {
			out[pk] = r.Image
		}
	}
	return out
}

// Tables lists the tables that ever had a row.
func (s *Store) Tables() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.st.rows))
}

// Info implements store.LogReader.
func (s *Store) Info(context.Context) (store.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in := store.Info{DB: s.st.id, DBStart: s.st.dbStart, Side: s.side, Paused: s.st.paused, PauseAt: s.st.pauseAt, LogHigh: s.st.logHigh,
		LogRows: int64(len(s.st.log)), Tables: slices.Sorted(maps.Keys(s.st.rows)), Conflicts: int64(len(s.st.conflicts))}
	if s.st.shipDB == s.st.id {
		in.Shipped, in.ShippedKnown = s.st.shipTo, true
	}
	return in, nil
}

// SetShipped implements store.LogReader.
func (s *Store) SetShipped(_ context.Context, db string, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.shipDB, s.st.shipTo = db, seq
	return nil
}

// ReadLog implements store.LogReader.
func (s *Store) ReadLog(_ context.Context, after uint64, fn func(wire.Change) error) (uint64, error) {
	s.mu.Lock()
	log := slices.Clone(s.st.log)
	s.mu.Unlock()
	to := after
	for _, c := range log {
		if c.Seq <= after {
			continue
		}
		if err := fn(c); err != nil {
			return to, err
		}
		to = c.Seq
	}
	return to, nil
}

// ReadPiece implements store.LogReader.
func (s *Store) ReadPiece(_ context.Context, r wire.PieceRequest, off, n int) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.st.log {
		if c.Seq == r.Seq && c.M == r.M && c.S == r.S && s.st.id == r.DB {
			row := string(c.Row)
			return row[min(off, len(row)):min(off+n, len(row))], nil
		}
	}
	return "", store.ErrNoPiece
}

// Changed implements store.LogReader: always true (the fake is cheap).
func (s *Store) Changed(context.Context) (bool, error) { return true, nil }

// Prune implements store.LogReader.
func (s *Store) Prune(_ context.Context, upTo uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.log = slices.DeleteFunc(s.st.log, func(c wire.Change) bool { return c.Seq <= upTo })
	return nil
}

// Position implements store.Applier.
func (s *Store) Position(_ context.Context, source string) (store.Position, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.st.pos[source]
	return p, ok, nil
}

// SetPosition implements store.Applier.
func (s *Store) SetPosition(_ context.Context, source string, p store.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.pos[source] = p
	return nil
}

// NewID implements store.Identity: the database's batches start after its
// log's end.
func (s *Store) NewID(context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.id, s.st.dbStart = s.ids(), s.st.logHigh
	return s.st.id, nil
}

// SetPaused implements store.Identity.
func (s *Store) SetPaused(_ context.Context, paused bool, at time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.paused, s.st.pauseAt = paused, at
	return nil
}

// WriteFailover implements store.Identity (not kept: no table).
func (s *Store) WriteFailover(context.Context, string, uint64, time.Time) error { return nil }

// Conflicts lists the recorded losing versions.
func (s *Store) Conflicts(context.Context) ([]store.Conflict, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.st.conflicts), nil
}

// Sums is every table's checksum (one bucket), over the live rows' keys
// and images: equal sums mean equal data.
func (s *Store) Sums(_ context.Context, _ int) ([]store.TableSum, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.TableSum
	for _, t := range slices.Sorted(maps.Keys(s.st.rows)) {
		h := fnv.New64a()
		var n int64
		for _, pk := range slices.Sorted(maps.Keys(s.st.rows[t])) {
			r := s.st.rows[t][pk]
			if r.Op == wire.OpDelete {
				continue
			}
			n++
			fmt.Fprintf(h, "%q=%q;", pk, r.Image)
		}
		out = append(out, store.TableSum{Table: t, Rows: n, Sum: fmt.Sprintf("%016x", h.Sum64())})
	}
	return out, nil
}

// Close does nothing.
func (s *Store) Close() error { return nil }

// ErrNoSnapshot: Restore was given a path no Snapshot wrote.
var ErrNoSnapshot = errors.New("no such snapshot")

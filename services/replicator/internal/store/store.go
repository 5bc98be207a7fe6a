// Package store is the replicator's storage seam: the Store interface the
// replication logic uses, and its SQLite adapter. A PostgreSQL adapter can
// follow without touching the logic; storetest holds the contract tests
// every adapter runs.
//
// # What a store keeps, in the application's own database
//
// Tandem's tables are prefixed _tandem_ and never collide with the
// application's:
//
//	_tandem_meta      key → value: the database id, the side, paused
//	_tandem_log       the change log: one row per captured row change
//	_tandem_ver       each row's version pair (conflict.Version) and last op
//	_tandem_apply     the echo marker: holds a row only inside an apply
//	_tandem_pos       per source node: its database id, the last log
//	                  sequence and stream sequence applied from it
//	_tandem_conflict  every losing version (R3), on both nodes
//	_tandem_failover  the failover status (R8), one row per node, replicated
//
// # Capture (R6)
//
// For every replicated table the store installs three triggers (after
// insert, update, delete) that, in the writer's own transaction, raise the
// row's local version counter and append the new row image with its version
// to the log. Any writer is captured, also the sqlite3 shell, also while
// the replicator is not running. The triggers do nothing while _tandem_apply
// holds a row: the apply transaction inserts one first and deletes it last,
// so applied changes are not captured again (no echo). Other connections
// never see that row (it is never committed). An update of a key column is
// captured as a delete of the old key and an upsert of the new one.
//
// Values are captured with quote(), so reals and blobs travel exactly (see
// package wire). A table without a primary key is refused alone: it gets no
// triggers, Refused names it, and every other table is replicated.
//
// # Apply (R3, R9)
//
// Apply runs in one write transaction per group: the marker row, every
// change decided by conflict.Decide against the row's local version, the
// losers written to _tandem_conflict, the source's new position in
// _tandem_pos, the marker deleted, commit. Rows are written with INSERT … ON
// CONFLICT DO UPDATE, never INSERT OR REPLACE (which deletes first, firing
// delete triggers and cascades). A change to a table that is not
// replicated here, or naming a column the table does not have, fails the
// whole group: nothing is applied.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/tandem-ha/tandem/services/replicator/internal/conflict"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// Errors callers branch on.
var (
	// ErrNoPrimaryKey: a replicated table has no primary key.
	ErrNoPrimaryKey = errors.New("table has no primary key")
	// ErrUnknownTable: a change names a table that is not replicated here.
	ErrUnknownTable = errors.New("unknown table")
	// ErrUnknownColumn: a change names a column its table does not have.
	ErrUnknownColumn = errors.New("unknown column")
)

// Side is which counter of the version pair local changes raise.
type Side string

// Sides.
const (
	Master  Side = "master"
	Standby Side = "standby"
)

// Info is the store's state.
type Info struct {
	DB      string // the database id
	DBStart uint64 // the log sequence the database id's batches start after
	Side    Side
	Paused  bool
	PauseAt time.Time // when the pause or resume in force was decided (zero: not known)
	// Shipped is the last log sequence this database id's shipper
	// recorded as shipped (SetShipped); ShippedKnown is false when none is
	// recorded for DB (a database made before the record existed).
	Shipped      uint64
	ShippedKnown bool
	LogHigh      uint64 // highest log sequence ever assigned
	LogRows      int64  // rows in the log (not yet pruned)
	Tables       []string
	Conflicts    int64
}

// Position is how far a source has been applied.
type Position struct {
	DB     string  // the source's database id
	Log    uint64  // last log sequence applied
	Stream uint64  // last stream sequence applied (0: not known, after a snapshot)
	TS     float64 // commit time of the last applied change on the source (Unix s)
	At     time.Time
}

// Conflict is one losing version, as recorded in _tandem_conflict.
type Conflict struct {
	Table      string
	PK         string
	Kind       string // winner op / loser op, e.g. "update/update"
	Winner     string // node whose version won
	Loser      string // node whose version lost
	LoserOp    string
	LoserRow   string // JSON object column → literal; empty for a delete
	LoserVer   conflict.Version
	WinnerVer  conflict.Version
	RecordedAt time.Time
}

// Result sums up one applied group.
type Result struct {
	Applied   int
	Stale     int
	Skipped   int // at or below the position (already in a snapshot)
	Conflicts []Conflict
	// Recorded counts the peer's conflict records (op "c") among Conflicts.
	Recorded int
	LastTS   float64
	// Resync says why the group asks for a reconcile with the peer (a
	// schema change of the peer while a table is refused for its schema),
	// or "".
	Resync string
}

// Snapshot describes a snapshot file.
type Snapshot struct {
	DB  string // the source database id
	Log uint64 // the source log position the snapshot contains
}

// TableSum is a table's checksum in buckets by key hash (R7).
type TableSum struct {
	Table   string   `json:"table"`
	Rows    int64    `json:"rows"`
	Sum     string   `json:"sum"`
	Buckets []uint64 `json:"buckets"`
}

// RowSum is one row's hash.
type RowSum struct {
	PK   string `json:"pk"`
	Hash string `json:"hash"`
}

// The store's interfaces are small, one per concept, so that each user
// names what it needs and a fake implements only what a test uses. Store
// is all of them, what the replicator opens.

// LogReader is the shipping side's view: the database's lineage and its
// change log.
type LogReader interface {
	// Info reads the store's state.
	Info(ctx context.Context) (Info, error)
	// ReadLog calls fn for every change after seq, in order, inside one
	// read transaction, and returns the highest log sequence it saw (the
	// end of the group). A row larger than wire.PieceSize comes as its
	// pieces (wire.EachPiece), one call each; a row so large that it is
	// read in slices comes as pieces without their chunks
	// (wire.EachPieceRef), which ReadPiece reads. fn may stop early by
	// returning an error.
	ReadLog(ctx context.Context, after uint64, fn func(wire.Change) error) (uint64, error)
	// ReadPiece reads bytes [off, off+n) (fewer at the end) of the row of
	// the log entry r names, in one read transaction; ErrNoPiece when the
	// log no longer holds it (another database id, pruned, or a change of
	// another version).
	ReadPiece(ctx context.Context, r wire.PieceRequest, off, n int) (string, error)
	// Changed reports whether another connection has committed since the
	// last call (cheap; for polling).
	Changed(ctx context.Context) (bool, error)
	// Prune deletes log rows up to seq.
	Prune(ctx context.Context, upTo uint64) error
	// SetShipped records that database id db shipped its log up to seq.
	SetShipped(ctx context.Context, db string, seq uint64) error
}

// Applier is the receiving side's view: positions and applying groups.
type Applier interface {
	// Position is how far source has been applied.
	Position(ctx context.Context, source string) (Position, bool, error)
	// SetPosition records a position without applying anything (a genesis).
	SetPosition(ctx context.Context, source string, p Position) error
	// Begin starts applying a group from source (whose side is given).
	Begin(ctx context.Context, source string, fromMaster bool) (Apply, error)
}

// Reconciler makes and merges snapshots (R1, R10).
type Reconciler interface {
	// Snapshot writes a consistent copy of the database to path.
	Snapshot(ctx context.Context, path string) (Snapshot, error)
	// Restore merges the snapshot at path (from source, the master) into
	// the replicated tables row by row by version, in one transaction
	// (R10): rows the snapshot lacks or has older are kept and queued for
	// the master, concurrent ones go the master's way with the loser kept.
	// The database gets a new id and source's position becomes the
	// snapshot's, at stream sequence stream of source's batches.
	Restore(ctx context.Context, path, source string, stream uint64) (Reconciled, error)
}

// Discarder makes this database equal to a peer's snapshot on an
// operator's explicit command (tandem repl resync --from NODE --discard).
type Discarder interface {
	// Discard makes the replicated tables equal to the snapshot at path
	// (from source, either node), on an operator's explicit command (R10):
	// rows present only here, or different here, are replaced by the
	// snapshot's, and each one discarded is recorded in _tandem_conflict
	// (kind "discard") and queued as a conflict record (op "c") for source
	// to record too. Tables the snapshot lacks are offered to source as by
	// Restore, and tables whose schema is incompatible are left alone
	// (Reconciled.Refused). Positions and the database id as Restore.
	Discard(ctx context.Context, path, source string, stream uint64) (Reconciled, error)
}

// Identity controls the database's lineage and the persisted flags.
type Identity interface {
	// NewID gives the database a new id and returns it.
	NewID(ctx context.Context) (string, error)
	// SetPaused persists the paused flag and when it was decided.
	SetPaused(ctx context.Context, paused bool, at time.Time) error
	// WriteFailover records that node became active in epoch at at (R8);
	// an older epoch than the one recorded for node is ignored.
	WriteFailover(ctx context.Context, node string, epoch uint64, at time.Time) error
}

// Schema follows the application's schema (R11).
type Schema interface {
	// SyncSchema looks for schema changes since the last call (cheap when
	// there are none) and queues those that replicate (R11).
	SyncSchema(ctx context.Context) (SchemaChange, error)
	// Refused lists the application tables that cannot be replicated
	// (no primary key), with the reason.
	Refused() map[string]string
}

// Verifier reads what verify, the conflict report and the configuration
// reader need (R7).
type Verifier interface {
	// Sums computes every replicated table's checksum in nb buckets.
	Sums(ctx context.Context, nb int) ([]TableSum, error)
	// RowSums lists the row hashes of table in the given buckets.
	RowSums(ctx context.Context, table string, nb int, buckets []int, limit int) ([]RowSum, error)
	// Conflicts lists the recorded losing versions.
	Conflicts(ctx context.Context) ([]Conflict, error)
	// ReadTable calls fn with the values of cols (as text; nil for NULL) of
	// every row of the application table name, ordered by cols, in one read
	// transaction. found is false when there is no such table. A column the
	// table does not have is an error.
	ReadTable(ctx context.Context, name string, cols []string, fn func(vals []*string) error) (found bool, err error)
}

// Store is the replication logic's view of a database: every concept.
type Store interface {
	LogReader
	Applier
	Reconciler
	Discarder
	Identity
	Schema
	Verifier
	// Close closes the store.
	Close() error
}

// Apply is a group being applied; Commit or Rollback ends it.
type Apply interface {
	// Apply applies one part's changes with a sequence above after.
	Apply(ctx context.Context, b *wire.Batch, after uint64) error
	// Commit records the new position of the source and commits.
	Commit(ctx context.Context, p Position) (Result, error)
	// Rollback abandons the group.
	Rollback() error
}

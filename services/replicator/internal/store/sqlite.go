package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite" // the pure-Go SQLite driver
	sqlite3 "modernc.org/sqlite/lib"
)

// The SQLite adapter implements every concept.
var (
	_ Store      = (*SQLite)(nil)
	_ LogReader  = (*SQLite)(nil)
	_ Applier    = (*SQLite)(nil)
	_ Reconciler = (*SQLite)(nil)
	_ Discarder  = (*SQLite)(nil)
	_ Identity   = (*SQLite)(nil)
	_ Schema     = (*SQLite)(nil)
	_ Verifier   = (*SQLite)(nil)
	_ Apply      = (*sqliteApply)(nil)
)

// SQLite is the Store of an SQLite database file.
//
// It keeps two handles on the file: w, one connection for every write
// (IMMEDIATE transactions, so a writer waits for the lock instead of failing
// on upgrade), and r, a pool for reads; poll is one read connection pinned
// for PRAGMA data_version (see Changed). busy_timeout makes each wait for
// the application's writers. The file is put in WAL mode (readers never block the
// writer); the application's connections keep working as before.
type SQLite struct {
	path string
	side Side
	w, r *sql.DB
	f    *sql.DB // the failover status writer: waits at most failoverBusy

	only []string // database.tables; empty: every application table

	mu      sync.Mutex // guards tables, refused, mismatch and the poll state below
	tables  map[string]*table
	refused map[string]string // table → why it cannot be replicated
	// mismatch holds the tables refused because their schema differs from
	// the peer's (found by a reconcile; persisted in _tandem_meta under
	// mismatchKey, so that a restart does not replicate them again).
	mismatch map[string]string
	schema   schemaState // the schema the tables were planned on
	poll     *sql.Conn
	dv       int64         // data_version at the last query
	stamp    fileStamp     // the files' stamp taken before that query
	asked    time.Time     // when data_version was last queried
	asks     int64         // data_version queries so far (tests read it)
	recheck  time.Duration // query data_version at least this often
	sizes    rowSizes      // when a row is hashed in slices (tests make them small)
}

var _ Store = (*SQLite)(nil)

// table is a replicated table's shape.
type table struct {
	name string
	cols []string // in table order
	pk   []string // key columns, in key order
	has  map[string]bool
}

// busyTimeout is how long a statement waits for another writer's lock;
// failoverBusy the same for the failover status, which is retried instead.
const (
	busyTimeout  = 10000 // ms
	failoverBusy = 1000  // ms
)

func dsn(path string, immediate bool) string { return dsnBusy(path, immediate, busyTimeout) }

func dsnBusy(path string, immediate bool, busy int) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busy))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	if immediate {
		q.Set("_txlock", "immediate")
	}
	return "file:" + path + "?" + q.Encode()
}

// IsBusy reports whether err is SQLite's "database is locked" (SQLITE_BUSY
// or SQLITE_LOCKED, with any extended code): another connection held a lock
// that the statement could not wait out.
func IsBusy(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// ErrNoTable is wrapped by OpenSQLite's error when a table listed in
// database.tables does not exist (yet: the application may create it later).
var ErrNoTable = errors.New("does not exist")

// OpenSQLite opens the database at path (creating it if needed), creates
// Tandem's tables, and installs the capture triggers on tables (all
// application tables when empty) for side. It refuses a table without a
// primary key or a listed table that does not exist.
func OpenSQLite(ctx context.Context, path string, side Side, tables []string) (*SQLite, error) {
	if side != Master && side != Standby {
		return nil, fmt.Errorf("store side %q", side)
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	f, err := sql.Open("sqlite", dsnBusy(path, true, failoverBusy))
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	f.SetMaxOpenConns(1)
	s := &SQLite{path: path, side: side, w: w, r: r, f: f, only: tables, recheck: recheckEvery,
		sizes: rowSizes{large: largeRow, slice: sliceSize}}
	if err := s.init(ctx, tables); err != nil {
		s.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) init(ctx context.Context, tables []string) error {
	if err := s.exec(ctx, schema...); err != nil {
		return fmt.Errorf("create tandem tables: %w", err)
	}
	if _, err := s.ensureID(ctx); err != nil {
		return err
	}
	if err := s.loadMismatch(ctx); err != nil {
		return err
	}
	return s.install(ctx, tables)
}

var schema = []string{
	`CREATE TABLE IF NOT EXISTS _tandem_meta(k TEXT PRIMARY KEY, v TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS _tandem_log(seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL,
		op TEXT NOT NULL, pk TEXT NOT NULL, row TEXT, m INTEGER NOT NULL, s INTEGER NOT NULL, ts REAL NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS _tandem_ver(tbl TEXT NOT NULL, pk TEXT NOT NULL, m INTEGER NOT NULL,
		s INTEGER NOT NULL, op TEXT NOT NULL, PRIMARY KEY(tbl, pk)) WITHOUT ROWID`,
	`CREATE TABLE IF NOT EXISTS _tandem_apply(x INTEGER)`,
	`CREATE TABLE IF NOT EXISTS _tandem_pos(node TEXT PRIMARY KEY, db TEXT NOT NULL, log INTEGER NOT NULL,
		stream INTEGER NOT NULL, ts REAL NOT NULL, at TEXT NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS _tandem_conflict(id INTEGER PRIMARY KEY, tbl TEXT NOT NULL, pk TEXT NOT NULL,
		kind TEXT NOT NULL, winner TEXT NOT NULL, loser TEXT NOT NULL, loser_op TEXT NOT NULL, loser_row TEXT,
		loser_m INTEGER NOT NULL, loser_s INTEGER NOT NULL, winner_m INTEGER NOT NULL, winner_s INTEGER NOT NULL,
		at TEXT NOT NULL, UNIQUE(tbl, pk, loser_m, loser_s))`,
	`CREATE TABLE IF NOT EXISTS _tandem_failover(node TEXT PRIMARY KEY, epoch INTEGER NOT NULL, at TEXT NOT NULL)`,
	// The pair's failover status: the node active in the highest epoch.
	`CREATE VIEW IF NOT EXISTS _tandem_failover_status AS
		SELECT node AS active, epoch, at FROM _tandem_failover ORDER BY epoch DESC, node LIMIT 1`,
}

// FailoverTable is Tandem's own replicated table (R8).
const FailoverTable = "_tandem_failover"

func (s *SQLite) exec(ctx context.Context, stmts ...string) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	return tx.Commit()
}

func firstLine(q string) string {
	q, _, _ = strings.Cut(strings.TrimSpace(q), "\n")
	return q
}

// ensureID gives a database without an id one.
func (s *SQLite) ensureID(ctx context.Context) (string, error) {
	id, err := s.meta(ctx, "db")
	if err != nil || id != "" {
		return id, err
	}
	return s.NewID(ctx)
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// NewID implements Store.
// The new id's batches start after the log's current end.
func (s *SQLite) NewID(ctx context.Context) (string, error) {
	id := newID()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback() //nolint:errcheck
	high, err := s.logHigh(ctx, tx)
	if err != nil {
		return "", err
	}
	if err := s.setMeta(ctx, tx, "db", id); err != nil {
		return "", err
	}
	if err := s.setMeta(ctx, tx, "db_start", fmt.Sprint(high)); err != nil {
		return "", err
	}
	return id, tx.Commit()
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (s *SQLite) setMeta(ctx context.Context, x execer, k, v string) error {
	_, err := x.ExecContext(ctx, `INSERT INTO _tandem_meta(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, k, v)
	return err
}

func (s *SQLite) meta(ctx context.Context, k string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT v FROM _tandem_meta WHERE k = ?`, k).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// install reads the tables' shapes and (re)creates their triggers.
func (s *SQLite) install(ctx context.Context, names []string) error {
	p, err := s.planWith(ctx, s.r, names)
	if err != nil {
		return err
	}
	if err := s.exec(ctx, p.stmts...); err != nil {
		return fmt.Errorf("install capture triggers: %w", err)
	}
	sc, err := schemaNow(ctx, s.r, p)
	if err != nil {
		return err
	}
	s.setTables(p)
	s.mu.Lock()
	s.schema = sc
	s.mu.Unlock()
	return nil
}

func (s *SQLite) setTables(p tablePlan) {
	s.mu.Lock()
	s.tables, s.refused = p.tables, p.refused
	s.mu.Unlock()
}

// tablePlan is what plan found: the tables to replicate, the statements
// that install their triggers, and the tables refused with the reason.
type tablePlan struct {
	tables  map[string]*table
	stmts   []string
	refused map[string]string
}

// plan reads the shapes of the tables to replicate and returns the
// statements that install their triggers. A table that cannot be
// replicated (no primary key) is refused alone: the others go on (R11).
// Its old triggers, if any, are dropped.
func (s *SQLite) planWith(ctx context.Context, q rowQuerier, names []string) (tablePlan, error) {
	p := tablePlan{tables: map[string]*table{}, refused: map[string]string{}}
	all, err := userTables(ctx, q)
	if err != nil {
		return p, err
	}
	if len(names) == 0 {
		names = all
	}
	s.mu.Lock()
	mismatch := maps.Clone(s.mismatch)
	s.mu.Unlock()
	for _, n := range append(slices.Clone(names), FailoverTable) {
		if n != FailoverTable && !slices.Contains(all, n) {
			return p, fmt.Errorf("database.tables: table %q %w", n, ErrNoTable)
		}
		if why, ok := mismatch[n]; ok && n != FailoverTable {
			p.refused[n] = why
			p.stmts = append(p.stmts, dropTriggers(n)...)
			continue
		}
		t, err := shape(ctx, q, n)
		if errors.Is(err, ErrNoPrimaryKey) && n != FailoverTable {
			p.refused[n] = err.Error()
			p.stmts = append(p.stmts, dropTriggers(n)...)
			continue
		}
		if err != nil {
			return p, err
		}
		p.tables[n] = t
		p.stmts = append(p.stmts, triggers(t, s.side)...)
	}
	p.stmts = append(p.stmts, `INSERT INTO _tandem_meta(k, v) VALUES('side', '`+string(s.side)+`') ON CONFLICT(k) DO UPDATE SET v = excluded.v`)
	return p, nil
}

// Refused lists the tables that cannot be replicated, with the reason.
func (s *SQLite) Refused() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.refused)
}

// userTables lists the application's tables (not SQLite's, not Tandem's).
func userTables(ctx context.Context, q rowQuerier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table'
		AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name NOT LIKE '\_tandem\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// shape reads a table's columns and primary key.
func shape(ctx context.Context, q rowQuerier, name string) (*table, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	t := &table{name: name, has: map[string]bool{}}
	pk := map[int]string{}
	for rows.Next() {
		var col string
		var k int
		if err := rows.Scan(&col, &k); err != nil {
			return nil, err
		}
		t.cols = append(t.cols, col)
		t.has[col] = true
		if k > 0 {
			pk[k] = col
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := 1; i <= len(pk); i++ {
		t.pk = append(t.pk, pk[i])
	}
	if len(t.pk) == 0 {
		return nil, fmt.Errorf("table %q cannot be replicated: %w (declare one; rows must be identifiable on both nodes)", name, ErrNoPrimaryKey)
	}
	return t, nil
}

// ident quotes an SQL identifier.
func ident(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// lit quotes an SQL string literal.
func lit(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// keyExpr is the row key as the version table stores it: the key columns'
// quote() joined by commas.
func keyExpr(t *table, ref string) string {
	parts := make([]string, len(t.pk))
	for i, c := range t.pk {
		parts[i] = valueExpr(ref + "." + ident(c))
	}
	return strings.Join(parts, "||','||")
}

// valueExpr is the SQL literal of a column value, as package wire reads
// it: quote()'s, except where quote() loses the value — text holding a NUL
// byte (quote() stops at it) travels as CAST(X'…' AS TEXT), and the
// infinities (which some SQLite versions quote as Inf) as ±9.0e+999, and
// -0.0 (which quote() writes as 0.0; atan2 tells the sign) as -0.0 (R12).
func valueExpr(x string) string {
	return `CASE typeof(` + x + `) WHEN 'text' THEN CASE WHEN instr(CAST(` + x + ` AS BLOB), X'00') > 0
		THEN 'CAST(X''' || hex(` + x + `) || ''' AS TEXT)' ELSE quote(` + x + `) END
		WHEN 'real' THEN CASE WHEN ` + x + ` > 1.7976931348623157e308 THEN '9.0e+999'
		WHEN ` + x + ` < -1.7976931348623157e308 THEN '-9.0e+999'
		WHEN ` + x + ` = 0 AND atan2(` + x + `, -1.0) < 0 THEN '-0.0' ELSE quote(` + x + `) END
		ELSE quote(` + x + `) END`
}

// rowExpr is the row image: a JSON object of column → quote(value).
func rowExpr(t *table, ref string) string {
	parts := make([]string, 0, 2*len(t.cols))
	for _, c := range t.cols {
		parts = append(parts, lit(c), valueExpr(ref+"."+ident(c)))
	}
	return "json_object(" + strings.Join(parts, ", ") + ")"
}

// nowExpr is the commit time in Unix seconds (works in every SQLite).
const nowExpr = `(julianday('now') - 2440587.5) * 86400.0`

// tickExpr is the commit time in Unix milliseconds: the floor of a row's
// local version counter (see versionExprs).
const tickExpr = `CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)`

// versionExprs are the SQL that raises a row's local counter for side, and
// the version pair of a row seen for the first time. A counter goes up by
// one at each change and never below the wall clock in milliseconds (a
// hybrid logical clock): a database restored from a backup goes on with
// counters above every one it made before it was copied, so its new
// changes are never mistaken for old ones the peer has already seen (R10).
func versionExprs(side Side) (bump, first string) {
	if side == Standby {
		return "s = max(s + 1, " + tickExpr + ")", "0, " + tickExpr
	}
	return "m = max(m + 1, " + tickExpr + ")", tickExpr + ", 0"
}

// triggers are the capture triggers of t for side. They are created in
// schema main by name, so that an attached database (a snapshot being
// restored) holding triggers of the same names is never touched.
func triggers(t *table, side Side) []string {
	bump, first := versionExprs(side)
	tn := lit(t.name)
	ver := func(key, op, where string) string {
		return fmt.Sprintf(`INSERT INTO _tandem_ver(tbl, pk, m, s, op) SELECT %s, %s, %s, '%s' WHERE %s
			ON CONFLICT(tbl, pk) DO UPDATE SET %s, op = '%s';`, tn, key, first, op, where, bump, op)
	}
	log := func(key, op, row, where string) string {
		return fmt.Sprintf(`INSERT INTO _tandem_log(tbl, op, pk, row, m, s, ts)
			SELECT %s, '%s', pk, %s, m, s, %s FROM _tandem_ver WHERE tbl = %s AND pk = %s AND %s;`,
			tn, op, row, nowExpr, tn, key, where)
	}
	kn, ko := keyExpr(t, "NEW"), keyExpr(t, "OLD")
	rn := rowExpr(t, "NEW")
	name := func(kind string) string { return triggerName(kind, t.name) }
	when := `WHEN NOT EXISTS (SELECT 1 FROM _tandem_apply)`
	moved := ko + " IS NOT " + kn
	return append(dropTriggers(t.name),
		fmt.Sprintf("CREATE TRIGGER %s AFTER INSERT ON %s %s BEGIN %s %s END",
			name("ai"), ident(t.name), when, ver(kn, "i", "1"), log(kn, "i", rn, "1")),
		fmt.Sprintf("CREATE TRIGGER %s AFTER UPDATE ON %s %s BEGIN %s %s %s %s END",
			name("au"), ident(t.name), when,
			ver(ko, "d", moved), log(ko, "d", "NULL", moved),
			ver(kn, "u", "1"), log(kn, "u", rn, "1")),
		fmt.Sprintf("CREATE TRIGGER %s AFTER DELETE ON %s %s BEGIN %s %s END",
			name("ad"), ident(t.name), when, ver(ko, "d", "1"), log(ko, "d", "NULL", "1")),
	)
}

func triggerName(kind, tbl string) string { return "main." + ident("_tandem_"+kind+"_"+tbl) }

// dropTriggers removes the capture triggers of table tbl.
func dropTriggers(tbl string) []string {
	return []string{
		`DROP TRIGGER IF EXISTS ` + triggerName("ai", tbl),
		`DROP TRIGGER IF EXISTS ` + triggerName("au", tbl),
		`DROP TRIGGER IF EXISTS ` + triggerName("ad", tbl),
	}
}

// Close implements Store.
func (s *SQLite) Close() error {
	s.mu.Lock()
	if s.poll != nil {
		s.poll.Close()
		s.poll = nil
	}
	s.mu.Unlock()
	return errors.Join(s.w.Close(), s.r.Close(), s.f.Close())
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

func (s *SQLite) table(name string) (*table, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tables[name]
	return t, ok
}

func (s *SQLite) tableNames() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.tables))
	for n := range s.tables {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

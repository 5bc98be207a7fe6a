package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/services/replicator/internal/conflict"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// sqliteApply is one group in its write transaction.
type sqliteApply struct {
	s          *SQLite
	conn       *sql.Conn // tx's: for incremental blob I/O (writeLarge)
	tx         *sql.Tx
	source     string
	fromMaster bool
	stmts      map[string]*sql.Stmt
	hook       func(seq uint64) error
	res        Result
	done       bool
	plan       *tablePlan   // the tables after a schema change in this group
	piece      *wire.Change // a row arriving in pieces, joined so far
	joiner     *wire.Joiner
	large      *wire.Change // the last row joined from pieces, and its row
	largeRow   *wire.Joined
	parsed     struct { // the last change's row, parsed (columns)
		of   *wire.Change
		cols []string
		vals []any
		err  error
	}
}

// join adds a piece of a row; it returns the whole change once the last
// piece is in, else nil. Its row is in a.largeRow (wire.Joiner: a blob
// is held once, as its bytes), not in Row.
func (a *sqliteApply) join(c *wire.Change) (*wire.Change, error) {
	if c.Piece == 0 {
		p := *c
		a.piece, a.joiner = &p, wire.NewJoiner(c.Pieces*wire.PieceSize)
	} else {
		if a.piece == nil || a.piece.Seq != c.Seq || c.Piece != a.piece.Piece+1 || c.Pieces != a.piece.Pieces {
			return nil, fmt.Errorf("piece %d of %d of change %d out of order", c.Piece, c.Pieces, c.Seq)
		}
		a.piece.Piece = c.Piece
	}
	if err := a.joiner.Write(c.Chunk); err != nil {
		return nil, fmt.Errorf("change %d: %w", c.Seq, err)
	}
	if c.Piece < c.Pieces-1 {
		return nil, nil
	}
	row, err := a.joiner.Joined()
	if err != nil {
		return nil, fmt.Errorf("change %d: %w", c.Seq, err)
	}
	whole := *a.piece
	whole.Row, whole.Chunk, whole.Piece, whole.Pieces = nil, "", 0, 0
	if whole.Op == wire.OpConflict {
		whole.Row = row.JSON() // a conflict record is decoded from its text
	} else {
		a.large, a.largeRow = &whole, row
	}
	a.piece, a.joiner = nil, nil
	return &whole, nil // its row is checked with every other (check)
}

// columnNames are the columns of c's row, checked.
func (a *sqliteApply) columnNames(c *wire.Change) ([]string, error) {
	if c == a.large {
		return a.largeRow.Check()
	}
	cols, _, err := a.columns(c)
	return cols, err
}

// columns parses c's row once for check and write; a row joined from
// pieces holds its blobs decoded already.
func (a *sqliteApply) columns(c *wire.Change) ([]string, []any, error) {
	if c == a.large {
		return a.largeRow.Columns()
	}
	if a.parsed.of != c {
		a.parsed.of = c
		a.parsed.cols, a.parsed.vals, a.parsed.err = c.Columns()
	}
	return a.parsed.cols, a.parsed.vals, a.parsed.err
}

// rowText is c's row as it was sent (a row joined from pieces, rebuilt:
// only a conflict's loser needs it).
func (a *sqliteApply) rowText(c *wire.Change) string {
	if c == a.large {
		return string(a.largeRow.JSON())
	}
	return string(c.Row)
}

// table is a replicated table as this group sees it: after a schema change
// of the group, with its new shape.
func (a *sqliteApply) table(name string) (*table, bool) {
	if a.plan != nil {
		t, ok := a.plan.tables[name]
		return t, ok
	}
	return a.s.table(name)
}

// Begin implements Store.
func (s *SQLite) Begin(ctx context.Context, source string, fromMaster bool) (Apply, error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin apply: %w", err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("begin apply: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO _tandem_apply(x) VALUES(1)`); err != nil {
		tx.Rollback() //nolint:errcheck
		conn.Close()
		return nil, fmt.Errorf("set echo marker: %w", err)
	}
	return &sqliteApply{s: s, conn: conn, tx: tx, source: source, fromMaster: fromMaster, stmts: map[string]*sql.Stmt{}}, nil
}

func (a *sqliteApply) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := a.stmts[q]; ok {
		return st, nil
	}
	st, err := a.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	a.stmts[q] = st
	return st, nil
}

func (a *sqliteApply) exec(ctx context.Context, q string, args ...any) error {
	st, err := a.stmt(ctx, q)
	if err == nil {
		_, err = st.ExecContext(ctx, args...)
	}
	return err
}

// Apply implements Apply. Each change is checked before it is written (a
// schema change earlier in the group may add the table or column a later
// change names); any error fails the whole group, which then changes
// nothing.
func (a *sqliteApply) Apply(ctx context.Context, b *wire.Batch, after uint64) error {
	if a.done {
		return errors.New("apply: group already ended")
	}
	for i := range b.Changes {
		c := &b.Changes[i]
		if c.Seq <= after {
			a.res.Skipped++
			continue
		}
		if c.Pieces > 0 {
			whole, err := a.join(c)
			if err != nil || whole == nil {
				if err != nil {
					return err
				}
				continue
			}
			c = whole
		}
		if a.hook != nil {
			if err := a.hook(c.Seq); err != nil {
				return err
			}
		}
		var err error
		switch {
		case c.Op == wire.OpSchema:
			err = a.applySchema(ctx, c)
		case c.Op == wire.OpConflict:
			err = a.recordShipped(ctx, c)
		case a.refused(c.Table):
			a.res.Skipped++ // refused alone here (R11): the peer's changes to it wait
			continue
		default:
			err = a.check(c)
		}
		if err == nil && c.Op != wire.OpSchema && c.Op != wire.OpConflict {
			_, err = a.change(ctx, c)
		}
		a.parsed.of, a.parsed.vals, a.large, a.largeRow = nil, nil, nil, nil // a large value is not kept past its change
		if err != nil {
			return fmt.Errorf("apply change %d (%s %s %s): %w", c.Seq, c.Op, c.Table, c.PK, err)
		}
		a.res.LastTS = c.TS
	}
	return nil
}

// refused reports whether tbl is refused here (and not created or
// reshaped by this group).
func (a *sqliteApply) refused(tbl string) bool {
	if _, ok := a.table(tbl); ok {
		return false
	}
	if a.plan != nil {
		return a.plan.refused[tbl] != ""
	}
	return a.s.Refused()[tbl] != ""
}

// check refuses a change to a table that is not replicated here or with a
// column the table does not have.
func (a *sqliteApply) check(c *wire.Change) error {
	t, ok := a.table(c.Table)
	if !ok {
		return fmt.Errorf("change %d: %w %q", c.Seq, ErrUnknownTable, c.Table)
	}
	pk, err := wire.ParseList(c.PK)
	if err != nil || len(pk) != len(t.pk) {
		return fmt.Errorf("change %d: key %q does not fit table %q (%d key columns)", c.Seq, c.PK, c.Table, len(t.pk))
	}
	if c.Op == wire.OpDelete {
		return nil
	}
	cols, err := a.columnNames(c)
	if err != nil {
		return fmt.Errorf("change %d: %w", c.Seq, err)
	}
	for _, col := range cols {
		if !t.has[col] {
			return fmt.Errorf("change %d: %w %q in table %q", c.Seq, ErrUnknownColumn, col, c.Table)
		}
	}
	return nil
}

// change decides one change against the local version, carries it out, and
// returns the decision.
func (a *sqliteApply) change(ctx context.Context, c *wire.Change) (conflict.Outcome, error) {
	t, _ := a.table(c.Table)
	local, localOp, err := a.version(ctx, c.Table, c.PK)
	if err != nil {
		return 0, err
	}
	in := conflict.Version{M: c.M, S: c.S}
	out, after := conflict.Decide(local, in, a.fromMaster)
	switch out {
	case conflict.Stale:
		a.res.Stale++
		return out, nil
	case conflict.TakeIncoming:
		loser, err := a.rowImage(ctx, t, c.PK)
		if err != nil {
			return out, err
		}
		if err := a.conflict(ctx, c, c.Op, localOp, loser, in, local); err != nil {
			return out, err
		}
	case conflict.KeepLocal:
		if err := a.conflict(ctx, c, localOp, c.Op, a.rowText(c), local, in); err != nil {
			return out, err
		}
		return out, a.setVersion(ctx, c.Table, c.PK, after, localOp)
	}
	if err := a.write(ctx, t, c); err != nil {
		return out, err
	}
	a.res.Applied++
	return out, a.setVersion(ctx, c.Table, c.PK, after, c.Op)
}

func (a *sqliteApply) version(ctx context.Context, tbl, pk string) (conflict.Version, string, error) {
	st, err := a.stmt(ctx, `SELECT m, s, op FROM _tandem_ver WHERE tbl = ? AND pk = ?`)
	if err != nil {
		return conflict.Version{}, "", err
	}
	var v conflict.Version
	var op string
	err = st.QueryRowContext(ctx, tbl, pk).Scan(&v.M, &v.S, &op)
	if errors.Is(err, sql.ErrNoRows) {
		return conflict.Version{}, "", nil
	}
	return v, op, err
}

func (a *sqliteApply) setVersion(ctx context.Context, tbl, pk string, v conflict.Version, op string) error {
	return a.exec(ctx, `INSERT INTO _tandem_ver(tbl, pk, m, s, op) VALUES(?, ?, ?, ?, ?)
		ON CONFLICT(tbl, pk) DO UPDATE SET m = excluded.m, s = excluded.s, op = excluded.op`,
		tbl, pk, int64(v.M), int64(v.S), op)
}

// rowImage is the local row as the triggers capture it ("" when absent).
func (a *sqliteApply) rowImage(ctx context.Context, t *table, pk string) (string, error) {
	st, err := a.stmt(ctx, `SELECT `+rowExpr(t, ident(t.name))+` FROM `+ident(t.name)+` WHERE `+keyExpr(t, ident(t.name))+` = ?`)
	if err != nil {
		return "", err
	}
	var row string
	err = st.QueryRowContext(ctx, pk).Scan(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return row, err
}

// conflict records the losing version. The loser is always the standby's.
func (a *sqliteApply) conflict(ctx context.Context, c *wire.Change, winOp, loseOp, loserRow string, win, lose conflict.Version) error {
	if loseOp == "" {
		loseOp = wire.OpInsert
	}
	if winOp == "" {
		winOp = wire.OpInsert
	}
	r := wire.ConflictRecord{Kind: conflict.Kind(winOp, loseOp), Winner: string(Master), Loser: string(Standby), LoserOp: loseOp,
		WinnerM: win.M, WinnerS: win.S, At: time.Now().UTC().Format(time.RFC3339Nano)}
	if loseOp != wire.OpDelete {
		r.LoserRow = loserRow
	}
	return a.record(ctx, c.Table, c.PK, r, lose)
}

// record writes a losing version into _tandem_conflict (once: the same
// loser recorded again is ignored) and adds it to the result.
func (a *sqliteApply) record(ctx context.Context, tbl, pk string, r wire.ConflictRecord, lose conflict.Version) error {
	var row any
	if r.LoserRow != "" {
		row = r.LoserRow
	}
	err := a.exec(ctx, `INSERT INTO _tandem_conflict(tbl, pk, kind, winner, loser, loser_op, loser_row,
		loser_m, loser_s, winner_m, winner_s, at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`,
		tbl, pk, r.Kind, r.Winner, r.Loser, r.LoserOp, row, int64(lose.M), int64(lose.S), int64(r.WinnerM), int64(r.WinnerS), r.At)
	if err != nil {
		return fmt.Errorf("record conflict: %w", err)
	}
	at, _ := time.Parse(time.RFC3339Nano, r.At)
	a.res.Conflicts = append(a.res.Conflicts, Conflict{Table: tbl, PK: pk, Kind: r.Kind, Winner: r.Winner, Loser: r.Loser,
		LoserOp: r.LoserOp, LoserRow: r.LoserRow, LoserVer: lose, WinnerVer: conflict.Version{M: r.WinnerM, S: r.WinnerS}, RecordedAt: at})
	return nil
}

// recordShipped records a peer's conflict record (op "c").
func (a *sqliteApply) recordShipped(ctx context.Context, c *wire.Change) error {
	r, err := c.DecodeConflict()
	if err != nil {
		return err
	}
	a.res.Recorded++
	return a.record(ctx, c.Table, c.PK, r, conflict.Version{M: c.M, S: c.S})
}

// write carries out an insert or update (upsert) or a delete.
func (a *sqliteApply) write(ctx context.Context, t *table, c *wire.Change) error {
	pk, err := wire.ParseList(c.PK)
	if err != nil {
		return err
	}
	if c.Op == wire.OpDelete {
		where := make([]string, len(t.pk))
		for i, k := range t.pk {
			where[i] = ident(k) + " IS ?"
		}
		return a.exec(ctx, `DELETE FROM `+ident(t.name)+` WHERE `+strings.Join(where, " AND "), pk...)
	}
	cols, vals, err := a.columns(c)
	if err != nil {
		return err
	}
	if done, err := a.writeLarge(ctx, t, cols, vals, pk); done || err != nil {
		return err
	}
	return a.exec(ctx, upsertSQL(t, cols), vals...)
}

// writeLarge writes a row holding a blob larger than blobSlice without
// handing the blob to SQLite whole: the row is written with a zeroblob of
// its size in its place, then the blob is written into it in slices
// (writeBlob). Bound whole, the blob is copied twice (into SQLite's heap,
// then into the record) in copies that are not preemptible: on a starved
// machine they held the whole process still for seconds (a false failover).
// It returns false, having written nothing, where incremental blob I/O
// cannot be used: no large blob, a table without a rowid, a driver without
// blob I/O; then the caller writes the row whole.
func (a *sqliteApply) writeLarge(ctx context.Context, t *table, cols []string, vals []any, pk []any) (bool, error) {
	var big []int
	for i, v := range vals {
		if b, ok := v.([]byte); ok && len(b) > blobSlice {
			big = append(big, i)
		}
	}
	rowid := "" // a name of the rowid no column takes
	for _, n := range []string{"rowid", "_rowid_", "oid"} {
		if !slices.ContainsFunc(t.cols, func(c string) bool { return strings.EqualFold(c, n) }) {
			rowid = n
			break
		}
	}
	if len(big) == 0 || rowid == "" {
		return false, nil
	}
	where := make([]string, len(t.pk))
	for i, k := range t.pk {
		where[i] = ident(k) + " IS ?"
	}
	find, err := a.stmt(ctx, `SELECT `+rowid+` FROM `+ident(t.name)+` WHERE `+strings.Join(where, " AND "))
	if err != nil {
		return false, nil //nolint:nilerr // WITHOUT ROWID: written whole
	}
	args := slices.Clone(vals)
	for _, i := range big {
		args[i] = len(vals[i].([]byte))
	}
	if err := a.exec(ctx, upsertSQL(t, cols, big...), args...); err != nil {
		return true, err
	}
	var id int64
	if err := find.QueryRowContext(ctx, pk...).Scan(&id); err != nil {
		return true, fmt.Errorf("find the row written: %w", err)
	}
	for _, i := range big {
		err := a.conn.Raw(func(dc any) error { return writeBlob(dc, t.name, cols[i], id, vals[i].([]byte)) })
		if errors.Is(err, errNoBlobIO) {
			return true, a.exec(ctx, upsertSQL(t, cols), vals...) // over the zeroblobs
		}
		if err != nil {
			return true, err
		}
	}
	return true, nil
}

// upsertSQL inserts cols, updating the non-key ones on a key conflict. The
// parameters of the columns at zero are sizes: those columns get a
// zeroblob of that size.
func upsertSQL(t *table, cols []string, zero ...int) string {
	q := make([]string, len(cols))
	quoted := make([]string, len(cols))
	var set []string
	isKey := map[string]bool{}
	for _, k := range t.pk {
		isKey[k] = true
	}
	for i, c := range cols {
		q[i], quoted[i] = "?", ident(c)
		if slices.Contains(zero, i) {
			q[i] = "zeroblob(?)"
		}
		if !isKey[c] {
			set = append(set, ident(c)+" = excluded."+ident(c))
		}
	}
	keys := make([]string, len(t.pk))
	for i, k := range t.pk {
		keys[i] = ident(k)
	}
	action := "DO NOTHING"
	if len(set) > 0 {
		action = "DO UPDATE SET " + strings.Join(set, ", ")
	}
	return fmt.Sprintf(`INSERT INTO %s(%s) VALUES(%s) ON CONFLICT(%s) %s`, ident(t.name),
		strings.Join(quoted, ", "), strings.Join(q, ", "), strings.Join(keys, ", "), action)
}

// SetBeforeChange sets a function called before each change is applied;
// its error aborts Apply (fault injection for tests).
func (a *sqliteApply) SetBeforeChange(f func(seq uint64) error) { a.hook = f }

// Commit implements Apply.
func (a *sqliteApply) Commit(ctx context.Context, p Position) (Result, error) {
	if a.done {
		return a.res, errors.New("apply: group already ended")
	}
	defer a.end()
	if a.piece != nil {
		return a.res, fmt.Errorf("the group ends inside change %d (piece %d of %d)", a.piece.Seq, a.piece.Piece, a.piece.Pieces)
	}
	if p.TS == 0 {
		p.TS = a.res.LastTS
	}
	if err := setPosition(ctx, a.tx, a.source, p); err != nil {
		return a.res, err
	}
	if _, err := a.tx.ExecContext(ctx, `DELETE FROM _tandem_apply`); err != nil {
		return a.res, fmt.Errorf("clear echo marker: %w", err)
	}
	if a.plan == nil {
		if err := a.tx.Commit(); err != nil {
			return a.res, fmt.Errorf("commit apply: %w", err)
		}
		return a.res, nil
	}
	// A schema change: the new plan and schema are published with the
	// commit, so that SyncSchema never sees one without the other.
	sc, err := schemaNow(ctx, a.tx, *a.plan)
	if err != nil {
		return a.res, err
	}
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	if err := a.tx.Commit(); err != nil {
		return a.res, fmt.Errorf("commit apply: %w", err)
	}
	a.s.tables, a.s.refused, a.s.schema = a.plan.tables, a.plan.refused, sc
	return a.res, nil
}

// Rollback implements Apply.
func (a *sqliteApply) Rollback() error {
	if a.done {
		return nil
	}
	a.end()
	return nil
}

// end closes the statements and rolls back what was not committed.
func (a *sqliteApply) end() {
	a.done = true
	for _, st := range a.stmts {
		st.Close()
	}
	_ = a.tx.Rollback() // sql.ErrTxDone after a commit
	a.conn.Close()
}

package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/services/replicator/internal/conflict"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// Reconciled is what merging a snapshot into this database did.
type Reconciled struct {
	Snapshot
	Taken     int        // rows (or deletions) taken from the snapshot
	Kept      int        // rows (or deletions) of this database the snapshot lacked, kept and queued for the peer
	Conflicts []Conflict // concurrent versions: the snapshot's (the master's) won
	// Refused names the tables left alone because their schema differs
	// from the snapshot's, with the difference (see sqlite_mismatch.go).
	Refused map[string]string
	// Discarded counts, per table, the rows of this database an operator
	// discarded (Discard): present only here, or different here.
	Discarded map[string]int
}

// reconcile merges the attached snapshot into this database, row by row by
// version (R10): a node's data is never overwritten by a snapshot that
// lacks writes it holds. For every row whose version or contents differ,
// the snapshot's row is applied as a change from the master would be
// (conflict.Decide):
//
//   - the snapshot's version covers this one: the snapshot's row is taken;
//   - this version covers the snapshot's: this row is kept, and queued in
//     the log so that the master gets it;
//   - concurrent: the master's row wins (R3); the loser is recorded here
//     and queued, so that the master records it too.
//
// An empty database therefore takes the snapshot whole (R1), and a
// standby whose master was rebuilt or restored from a backup keeps what
// the master lacks and sends it back. Rows written before capture was
// installed get a version first (adopt). The old log is dropped: what the
// master lacks is queued again from the rows themselves. The database gets
// a new id, whose batches start after the old log's end; source's position
// becomes the snapshot's (its log, and stream, the last message of the
// source's stream before the snapshot was made).
func (s *SQLite) reconcile(ctx context.Context, c *sql.Conn, snap Snapshot, source string, stream uint64, discard bool) (Reconciled, error) {
	rec := Reconciled{Snapshot: snap}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return rec, err
	}
	defer tx.Rollback() //nolint:errcheck
	if _, err := tx.ExecContext(ctx, `INSERT INTO main._tandem_apply(x) VALUES(1)`); err != nil {
		return rec, fmt.Errorf("set echo marker: %w", err)
	}
	a := &sqliteApply{s: s, tx: tx, source: source, fromMaster: true, stmts: map[string]*sql.Stmt{}}
	defer a.closeStmts()
	// The conflict records this node holds and the snapshot lacks go to the
	// source too: after a reconcile both tables hold every record, so a
	// loser survives the loss of either database (R5).
	queue, err := recordsToOffer(ctx, tx)
	if err != nil {
		return rec, err
	}
	rec.Refused = map[string]string{}
	// The merge sees the tables as read here (a table refused before, or
	// given the peer's columns, is not in s.tables as it is now).
	a.plan = &tablePlan{tables: map[string]*table{}}
	for _, name := range s.reconcileNames() {
		t, ok, err := s.compareTable(ctx, tx, name, &rec)
		if err != nil || !ok {
			if err != nil {
				return rec, err
			}
			continue
		}
		if t != nil {
			a.plan.tables[name] = t
		} else {
			// A table only this node has: offered to the master whole.
			t, _ = s.table(name)
			q, err := a.offerTable(ctx, t)
			if err != nil {
				return rec, fmt.Errorf("table %s: %w", name, err)
			}
			rec.Kept += len(q)
			queue = append(queue, q...)
			continue
		}
		if _, err := tx.ExecContext(ctx, adoptSQL(t, "main", s.side)); err != nil {
			return rec, fmt.Errorf("version the rows of %s written before capture: %w", name, err)
		}
		n, err := takeNew(ctx, tx, t, t.cols)
		if err != nil {
			return rec, fmt.Errorf("table %s: %w", name, err)
		}
		rec.Taken += n
		merge := a.reconcileTable
		if discard {
			merge = a.discardTable
		}
		q, err := merge(ctx, t, &rec)
		if err != nil {
			return rec, fmt.Errorf("table %s: %w", name, err)
		}
		queue = append(queue, q...)
	}
	if s.side == Standby {
		if err := saveMismatch(ctx, tx, rec.Refused); err != nil {
			return rec, err
		}
	}
	if !discard { // the discarded rows are reported per table (Discarded)
		rec.Conflicts = a.res.Conflicts
	}
	if err := finishReconcile(ctx, tx, queue); err != nil {
		return rec, err
	}
	high, err := s.logHigh(ctx, tx)
	if err != nil {
		return rec, err
	}
	start := high - uint64(len(queue))
	if err := s.setMeta(ctx, tx, "db", newID()); err != nil {
		return rec, err
	}
	if err := s.setMeta(ctx, tx, "db_start", fmt.Sprint(start)); err != nil {
		return rec, err
	}
	if err := setPosition(ctx, tx, source, Position{DB: snap.DB, Log: snap.Log, Stream: stream}); err != nil {
		return rec, err
	}
	return rec, tx.Commit()
}

// reconcileNames are the tables a reconcile looks at: the replicated ones
// and those refused for a schema that differed (it may match now).
func (s *SQLite) reconcileNames() []string {
	names := s.tableNames()
	for n := range s.Mismatched() {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// compareTable compares the shape of table name here and in the
// snapshot. It returns the table to merge; nil (and ok) for a replicated
// table the snapshot lacks; not ok for a table to leave alone — refused
// (recorded in rec.Refused) because rows cannot cross, or refused before
// and still without a counterpart.
func (s *SQLite) compareTable(ctx context.Context, tx *sql.Tx, name string, rec *Reconciled) (*table, bool, error) {
	there, err := columnsOf(ctx, tx, "snap", name)
	if err != nil {
		return nil, false, err
	}
	_, replicated := s.table(name)
	if len(there) == 0 {
		if !replicated {
			rec.Refused[name] = s.Mismatched()[name]
		}
		return nil, replicated, nil
	}
	here, err := columnsOf(ctx, tx, "main", name)
	if err != nil {
		return nil, false, err
	}
	if len(here) == 0 {
		return nil, false, nil // dropped here since it was refused
	}
	if why := schemaMismatch(here, there); why != "" {
		rec.Refused[name] = fmt.Sprintf("table %q differs from the peer's: %s; fix the schema: it is compared again after a schema change here or one the peer ships, or on tandem repl resync", name, why)
		return nil, false, nil
	}
	t, err := shape(ctx, tx, name)
	return t, err == nil, err
}

// recordsToOffer are this database's conflict records the attached
// snapshot lacks, as changes (op "c") for the snapshot's node.
func recordsToOffer(ctx context.Context, tx *sql.Tx) ([]wire.Change, error) {
	rows, err := tx.QueryContext(ctx, `SELECT tbl, pk, kind, winner, loser, loser_op, coalesce(loser_row, ''),
		loser_m, loser_s, winner_m, winner_s, at FROM main._tandem_conflict c
		WHERE NOT EXISTS (SELECT 1 FROM snap._tandem_conflict o
			WHERE o.tbl = c.tbl AND o.pk = c.pk AND o.loser_m = c.loser_m AND o.loser_s = c.loser_s)
		ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("conflict records to offer: %w", err)
	}
	defer rows.Close()
	var out []wire.Change
	for rows.Next() {
		var r wire.ConflictRecord
		var tbl, pk string
		var lm, ls, wm, ws int64
		if err := rows.Scan(&tbl, &pk, &r.Kind, &r.Winner, &r.Loser, &r.LoserOp, &r.LoserRow, &lm, &ls, &wm, &ws, &r.At); err != nil {
			return nil, err
		}
		r.WinnerM, r.WinnerS = uint64(wm), uint64(ws)
		out = append(out, wire.Change{Table: tbl, Op: wire.OpConflict, PK: pk, Row: r.Row(), M: uint64(lm), S: uint64(ls)})
	}
	return out, rows.Err()
}

// finishReconcile drops the old log, queues the changes the master lacks,
// takes the snapshot's conflict records, and forgets every position.
func finishReconcile(ctx context.Context, tx *sql.Tx, changes []wire.Change) error {
	stmts := []string{
		`INSERT INTO main._tandem_conflict(tbl, pk, kind, winner, loser, loser_op, loser_row, loser_m, loser_s, winner_m, winner_s, at)
			SELECT tbl, pk, kind, winner, loser, loser_op, loser_row, loser_m, loser_s, winner_m, winner_s, at
			FROM snap._tandem_conflict WHERE true ON CONFLICT DO NOTHING`,
		`DELETE FROM main._tandem_log`,
		`DELETE FROM main._tandem_pos`,
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	if err := queueChanges(ctx, tx, changes); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `DELETE FROM main._tandem_apply`)
	return err
}

// queueChanges appends changes to the log, to be shipped like captured ones.
func queueChanges(ctx context.Context, tx *sql.Tx, changes []wire.Change) error {
	for _, ch := range changes {
		var row any
		if ch.Op != wire.OpDelete {
			row = string(ch.Row)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO main._tandem_log(tbl, op, pk, row, m, s, ts) VALUES(?, ?, ?, ?, ?, ?, `+nowExpr+`)`,
			ch.Table, ch.Op, ch.PK, row, int64(ch.M), int64(ch.S)); err != nil {
			return fmt.Errorf("queue %s %s: %w", ch.Table, ch.PK, err)
		}
	}
	return nil
}

// reconcileTable merges one table and returns the changes to queue.
func (a *sqliteApply) reconcileTable(ctx context.Context, t *table, rec *Reconciled) ([]wire.Change, error) {
	diffs, err := differing(ctx, a.tx, t)
	if err != nil {
		return nil, err
	}
	var queue []wire.Change
	for _, d := range diffs {
		in := d.change(t.name, d.snap, wire.OpUpdate)
		if d.local.img == d.snap.img && d.local.present() == d.snap.present() {
			// The same contents under other versions: take the master's.
			if err := a.setVersion(ctx, t.name, d.pk, d.snap.version(), in.Op); err != nil {
				return nil, err
			}
			continue
		}
		out, err := a.change(ctx, &in)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", in.Op, d.pk, err)
		}
		switch out {
		case conflict.Apply, conflict.TakeIncoming:
			rec.Taken++
		}
		if out == conflict.Stale || out == conflict.TakeIncoming {
			queue = append(queue, d.change(t.name, d.local, wire.OpUpdate))
			if out == conflict.Stale {
				rec.Kept++
			}
		}
	}
	return queue, nil
}

// discardTable makes one table equal to the snapshot's and returns the
// conflict records of the rows it discarded (present only here, or holding
// a change here the snapshot lacks), to queue for the peer.
func (a *sqliteApply) discardTable(ctx context.Context, t *table, rec *Reconciled) ([]wire.Change, error) {
	diffs, err := differing(ctx, a.tx, t)
	if err != nil {
		return nil, err
	}
	winner, loser := string(Master), string(Standby)
	if a.s.side == Master {
		winner, loser = loser, winner
	}
	at := time.Now().UTC().Format(time.RFC3339Nano)
	var queue []wire.Change
	for _, d := range diffs {
		lose, win := d.local.version(), d.snap.version()
		// Discarded: a row here holding a change the snapshot lacks. A row
		// the snapshot has newer (this node was behind) is simply taken.
		if d.local.present() && d.local.img != d.snap.img && !win.Covers(lose) {
			r := wire.ConflictRecord{Kind: "discard", Winner: winner, Loser: loser, LoserOp: wire.OpUpdate,
				LoserRow: d.local.img, WinnerM: win.M, WinnerS: win.S, At: at}
			if err := a.record(ctx, t.name, d.pk, r, lose); err != nil {
				return nil, err
			}
			queue = append(queue, wire.Change{Table: t.name, Op: wire.OpConflict, PK: d.pk, Row: r.Row(), M: lose.M, S: lose.S})
			if rec.Discarded == nil {
				rec.Discarded = map[string]int{}
			}
			rec.Discarded[t.name]++
		}
		in := d.change(t.name, d.snap, wire.OpUpdate)
		if err := a.write(ctx, t, &in); err != nil {
			return nil, fmt.Errorf("%s %s: %w", in.Op, d.pk, err)
		}
		if !d.snap.m.Valid {
			if err := a.exec(ctx, `DELETE FROM _tandem_ver WHERE tbl = ? AND pk = ?`, t.name, d.pk); err != nil {
				return nil, err
			}
			continue
		}
		if err := a.setVersion(ctx, t.name, d.pk, d.snap.version(), in.Op); err != nil {
			return nil, err
		}
		rec.Taken++
	}
	return queue, nil
}

func (a *sqliteApply) closeStmts() {
	for _, st := range a.stmts {
		st.Close()
	}
	a.stmts = map[string]*sql.Stmt{}
}

// side is one node's state of a row: its image (JSON of literals, "" when
// the row is absent) and its version (nil when never versioned).
type side struct {
	img  string
	m, s sql.NullInt64
}

func (x side) present() bool { return x.img != "" }

func (x side) version() conflict.Version {
	if !x.m.Valid {
		if x.present() {
			return conflict.Version{M: 1} // a row of an old snapshot without versions
		}
		return conflict.Version{}
	}
	return conflict.Version{M: uint64(x.m.Int64), S: uint64(x.s.Int64)}
}

// diff is a row whose versions differ between the two sides.
type diff struct {
	pk          string
	local, snap side
}

// change is the row's state on one side as a change: an upsert of its
// image, or a delete.
func (d diff) change(tbl string, x side, upsert string) wire.Change {
	v := x.version()
	c := wire.Change{Table: tbl, PK: d.pk, Op: wire.OpDelete, M: v.M, S: v.S}
	if x.present() {
		c.Op, c.Row = upsert, json.RawMessage(x.img)
	}
	return c
}

// differing lists the rows of t whose versions differ between main and
// the attached snapshot, with both sides' images. Every row has a version
// on both sides (rows written before capture are adopted first, here and
// by the master before its snapshot), and a change of contents always
// changes the version, so comparing the version tables finds every
// difference without reading the rows: two index-ordered scans of the
// version tables, then each differing row by its key.
func differing(ctx context.Context, tx *sql.Tx, t *table) ([]diff, error) {
	rows, err := tx.QueryContext(ctx, `
		SELECT sv.pk, v.m, v.s, sv.m, sv.s FROM snap._tandem_ver sv
			LEFT JOIN main._tandem_ver v ON v.tbl = sv.tbl AND v.pk = sv.pk
			WHERE sv.tbl = ?1 AND (v.m IS NOT sv.m OR v.s IS NOT sv.s)
		UNION ALL
		SELECT v.pk, v.m, v.s, NULL, NULL FROM main._tandem_ver v
			WHERE v.tbl = ?1 AND NOT EXISTS (SELECT 1 FROM snap._tandem_ver sv WHERE sv.tbl = ?1 AND sv.pk = v.pk)
		ORDER BY 1`, t.name)
	if err != nil {
		return nil, fmt.Errorf("compare with the snapshot: %w", err)
	}
	var out []diff
	for rows.Next() {
		var d diff
		if err := rows.Scan(&d.pk, &d.local.m, &d.local.s, &d.snap.m, &d.snap.s); err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		var err error
		if out[i].local.img, err = image(ctx, tx, t, "main", out[i].pk); err != nil {
			return nil, err
		}
		if out[i].snap.img, err = image(ctx, tx, t, "snap", out[i].pk); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// image is the row of t with key pk in schema, as the triggers capture it
// ("" when there is none), looked up by its key columns.
func image(ctx context.Context, tx *sql.Tx, t *table, schema, pk string) (string, error) {
	vals, err := wire.ParseList(pk)
	if err != nil || len(vals) != len(t.pk) {
		return "", fmt.Errorf("key %q of %s: %v", pk, t.name, err)
	}
	where := make([]string, len(t.pk))
	for i, k := range t.pk {
		where[i] = ident(k) + " IS ?"
	}
	ref := schema + "." + ident(t.name)
	var img string
	err = tx.QueryRowContext(ctx, `SELECT `+rowExpr(t, ref)+` FROM `+ref+` WHERE `+strings.Join(where, " AND "), vals...).Scan(&img)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return img, err
}

// adoptSQL gives every row of t in schema that has no version yet (written
// before capture was installed) a first version of side.
func adoptSQL(t *table, schema string, sd Side) string {
	_, first := versionExprs(sd)
	ref := schema + "." + ident(t.name)
	return `INSERT INTO ` + schema + `._tandem_ver(tbl, pk, m, s, op) SELECT ` + lit(t.name) + `, ` + keyExpr(t, ref) +
		`, ` + first + `, 'i' FROM ` + ref + ` WHERE true ON CONFLICT(tbl, pk) DO NOTHING`
}

// adoptAll versions every row written before capture was installed.
func (s *SQLite) adoptAll(ctx context.Context) error {
	var stmts []string
	for _, name := range s.tableNames() {
		t, _ := s.table(name)
		stmts = append(stmts, adoptSQL(t, "main", s.side))
	}
	return s.exec(ctx, stmts...)
}

// columnDiff says how the column sets differ ("" when equal).
func columnDiff(here, there []string) string {
	var only, missing []string
	for _, c := range there {
		if !slices.Contains(here, c) {
			missing = append(missing, c)
		}
	}
	for _, c := range here {
		if !slices.Contains(there, c) {
			only = append(only, c)
		}
	}
	var parts []string
	if len(missing) > 0 {
		parts = append(parts, "the master's has column(s) "+strings.Join(missing, ", ")+" this one lacks")
	}
	if len(only) > 0 {
		parts = append(parts, "this one has column(s) "+strings.Join(only, ", ")+" the master's lacks")
	}
	return strings.Join(parts, "; ")
}

// offerTable queues a table the master lacks: its schema (the table and its
// indexes, as schema changes) and then every row with its version.
func (a *sqliteApply) offerTable(ctx context.Context, t *table) ([]wire.Change, error) {
	if _, err := a.tx.ExecContext(ctx, adoptSQL(t, "main", a.s.side)); err != nil {
		return nil, err
	}
	stmts, err := tableDDL(ctx, a.tx, t.name)
	if err != nil {
		return nil, err
	}
	out := schemaChanges(a.s.side, stmts)
	ref := "main." + ident(t.name)
	k := keyExpr(t, ref)
	rows, err := a.tx.QueryContext(ctx, `SELECT `+k+`, `+rowExpr(t, ref)+`,
		(SELECT m FROM main._tandem_ver WHERE tbl = ?1 AND pk = `+k+`), (SELECT s FROM main._tandem_ver WHERE tbl = ?1 AND pk = `+k+`)
		FROM `+ref, t.name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		c := wire.Change{Table: t.name, Op: wire.OpUpdate}
		var img string
		var m, sv int64
		if err := rows.Scan(&c.PK, &img, &m, &sv); err != nil {
			return nil, err
		}
		c.Row, c.M, c.S = json.RawMessage(img), uint64(m), uint64(sv)
		out = append(out, c)
	}
	return out, rows.Err()
}

// tableDDL is the CREATE statement of a table and of its indexes.
func tableDDL(ctx context.Context, q rowQuerier, name string) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT sql FROM main.sqlite_schema WHERE tbl_name = ? AND sql IS NOT NULL
		AND type IN ('table', 'index') ORDER BY type = 'index', rowid`, name)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, rows.Err()
}

// takeNew copies, in bulk, the snapshot's rows and versions of keys this
// database has never seen (no row, no version: Decide would apply them):
// the whole table on a first start, so that an empty standby takes its
// snapshot at the speed of INSERT … SELECT. What is left differs, and goes
// row by row.
func takeNew(ctx context.Context, tx *sql.Tx, t *table, cols []string) (int, error) {
	list := make([]string, len(cols))
	for i, c := range cols {
		list[i] = ident(c)
	}
	l := strings.Join(list, ", ")
	sl := "snap." + ident(t.name)
	res, err := tx.ExecContext(ctx, `INSERT INTO main.`+ident(t.name)+`(`+l+`) SELECT `+l+` FROM `+sl+`
		WHERE NOT EXISTS (SELECT 1 FROM main._tandem_ver v WHERE v.tbl = ?1 AND v.pk = `+keyExpr(t, sl)+`)`, t.name)
	if err != nil {
		return 0, fmt.Errorf("take the new rows: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, `INSERT INTO main._tandem_ver(tbl, pk, m, s, op) SELECT tbl, pk, m, s, op FROM snap._tandem_ver sv
		WHERE sv.tbl = ?1 AND NOT EXISTS (SELECT 1 FROM main._tandem_ver v WHERE v.tbl = ?1 AND v.pk = sv.pk)`, t.name); err != nil {
		return 0, fmt.Errorf("take the new versions: %w", err)
	}
	return int(n), nil
}

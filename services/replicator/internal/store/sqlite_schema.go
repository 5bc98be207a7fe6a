package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// Schema changes (R11). SQLite has no DDL triggers, so the shipper asks
// SyncSchema before each look at the log; it compares PRAGMA schema_version
// with the last one seen and, when it moved, the tables' shapes and indexes
// with the ones replicated. What can be replicated goes into the change log
// as a schema change (op "s", the statement as its row), in one transaction
// with the new capture triggers, ahead of the rows it concerns:
//
//   - a new table (when database.tables is empty: every table), with its
//     indexes, and its rows (written before its triggers existed: they are
//     captured now by a no-op update);
//   - a column added with ALTER TABLE … ADD COLUMN, and the rows whose new
//     column already holds a value other than its default (written between
//     the ALTER and now, under the old triggers, which did not see it);
//   - a new index.
//
// The peer applies a schema change idempotently (IF NOT EXISTS; a column it
// already has is skipped) in the group's transaction, and installs its own
// triggers there, so that the rows after it apply and it captures the new
// columns too; its own SyncSchema then finds nothing new, and nothing echoes
// back. A change that cannot be replicated safely (a dropped or renamed
// column or table, a changed key) refuses that table alone with the reason
// (Refused).

// SchemaChange is what one SyncSchema found.
type SchemaChange struct {
	Shipped []string          // the statements queued for the peer
	Refused map[string]string // tables newly refused, with the reason
	// Resync says why the schema should be compared with the peer's again
	// (it changed while a table is refused for an incompatible schema).
	Resync string
}

// schemaState is what the last plan saw of the schema. Guarded by SQLite.mu.
type schemaState struct {
	version int64             // PRAGMA schema_version
	indexes map[string]string // index name → its SQL, on replicated tables
}

// schemaChanges are the statements as schema changes made on side, to
// queue for the peer: each row is the statement as a text literal.
func schemaChanges(sd Side, stmts []string) []wire.Change {
	tick := uint64(time.Now().UnixMilli())
	out := make([]wire.Change, len(stmts))
	for i, q := range stmts {
		out[i] = wire.Change{Table: wire.SchemaTable, Op: wire.OpSchema, PK: "'schema'",
			Row: fmt.Appendf(nil, `{"sql":%q}`, wire.Literal(q)), M: tick}
		if sd == Standby {
			out[i].M, out[i].S = 0, tick
		}
	}
	return out
}

// SyncSchema implements Store.
func (s *SQLite) SyncSchema(ctx context.Context) (SchemaChange, error) {
	var out SchemaChange
	v, err := schemaVersion(ctx, s.r)
	if err != nil {
		return out, err
	}
	s.mu.Lock()
	same := v == s.schema.version
	s.mu.Unlock()
	if same {
		return out, nil
	}
	// With the write lock held no apply commits; an apply's schema change
	// and the plan it made are published together (under mu), so what is
	// compared here is either before it or after it, never between.
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return out, err
	}
	defer tx.Rollback() //nolint:errcheck
	if v, err = schemaVersion(ctx, tx); err != nil {
		return out, err
	}
	s.mu.Lock()
	same = v == s.schema.version
	old, oldIdx := maps.Clone(s.tables), maps.Clone(s.schema.indexes)
	s.mu.Unlock()
	if same {
		return out, nil
	}
	p, err := s.planWith(ctx, tx, s.only)
	if err != nil {
		return out, err
	}
	idx, err := indexes(ctx, tx, p.tables)
	if err != nil {
		return out, err
	}
	if m := s.Mismatched(); len(m) > 0 {
		out.Resync = fmt.Sprintf("the schema changed here while table(s) %s are refused for an incompatible schema", strings.Join(slices.Sorted(maps.Keys(m)), ", "))
	}
	var ddl, recapture []string
	out.Refused = map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(p.tables)) {
		t := p.tables[name]
		was, ok := old[name]
		if !ok {
			q, err := tableSQL(ctx, tx, name)
			if err != nil {
				return out, err
			}
			ddl = append(ddl, q)
			recapture = append(recapture, `UPDATE main.`+ident(name)+` SET `+ident(t.pk[0])+` = `+ident(t.pk[0]))
			continue
		}
		add, why, err := addedColumns(ctx, tx, was, t)
		if err != nil {
			return out, err
		}
		if why != "" {
			out.Refused[name] = why
			delete(p.tables, name)
			p.refused[name] = why
			p.stmts = append(p.stmts, dropTriggers(name)...)
			continue
		}
		for _, c := range add {
			ddl = append(ddl, c.ddl)
			recapture = append(recapture, `UPDATE main.`+ident(name)+` SET `+ident(c.name)+` = `+ident(c.name)+
				` WHERE `+ident(c.name)+` IS NOT (`+c.dflt+`)`)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(idx)) {
		if _, ok := oldIdx[name]; !ok {
			ddl = append(ddl, idx[name])
		}
	}
	for name := range old {
		if _, ok := p.tables[name]; !ok && p.refused[name] == "" && name != FailoverTable {
			why := fmt.Sprintf("table %q was dropped or renamed here: a change that is not replicated; do the same on the peer", name)
			out.Refused[name], p.refused[name] = why, why
		}
	}
	if err := s.queueSchema(ctx, tx, p, ddl, recapture); err != nil {
		return out, err
	}
	v, err = schemaVersion(ctx, tx)
	if err != nil {
		return out, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := tx.Commit(); err != nil {
		return out, err
	}
	s.tables, s.refused = p.tables, p.refused
	s.schema = schemaState{version: v, indexes: idx}
	out.Shipped = ddl
	return out, nil
}

// queueSchema installs the triggers, queues the statements, and captures
// the rows the old triggers missed, in that order.
func (s *SQLite) queueSchema(ctx context.Context, tx *sql.Tx, p tablePlan, ddl, recapture []string) error {
	for _, q := range p.stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	if err := queueChanges(ctx, tx, schemaChanges(s.side, ddl)); err != nil {
		return err
	}
	for _, q := range recapture {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("capture the rows of %s: %w", firstLine(q), err)
		}
	}
	return nil
}

func schemaVersion(ctx context.Context, q querier) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&v)
	return v, err
}

// tableSQL is the CREATE TABLE statement of name, as the application wrote it.
func tableSQL(ctx context.Context, q querier, name string) (string, error) {
	var s string
	err := q.QueryRowContext(ctx, `SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = ?`, name).Scan(&s)
	return s, err
}

// indexes are the named indexes (not those SQLite makes for constraints)
// of the given tables.
func indexes(ctx context.Context, q rowQuerier, tables map[string]*table) (map[string]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, tbl_name, sql FROM main.sqlite_schema WHERE type = 'index' AND sql IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var name, tbl, q string
		if err := rows.Scan(&name, &tbl, &q); err != nil {
			return nil, err
		}
		if _, ok := tables[tbl]; ok {
			out[name] = q
		}
	}
	return out, rows.Err()
}

// column is a column added to a table.
type column struct {
	name, ddl, dflt string
}

// addedColumns compares a table's shape with the one replicated: columns
// added at the end are returned with their ADD COLUMN statement; any other
// difference is a reason to refuse the table.
func addedColumns(ctx context.Context, tx *sql.Tx, was, now *table) ([]column, string, error) {
	if !slices.Equal(was.pk, now.pk) {
		return nil, fmt.Sprintf("table %q: its primary key changed from (%s) to (%s): not replicated", now.name,
			strings.Join(was.pk, ", "), strings.Join(now.pk, ", ")), nil
	}
	if len(now.cols) < len(was.cols) || !slices.Equal(was.cols, now.cols[:len(was.cols)]) {
		return nil, fmt.Sprintf("table %q: columns (%s) became (%s): only ADD COLUMN is replicated", now.name,
			strings.Join(was.cols, ", "), strings.Join(now.cols, ", ")), nil
	}
	var out []column
	for _, name := range now.cols[len(was.cols):] {
		var typ string
		var notNull int
		var dflt sql.NullString
		err := tx.QueryRowContext(ctx, `SELECT type, "notnull", dflt_value FROM pragma_table_info(?) WHERE name = ?`, now.name, name).
			Scan(&typ, &notNull, &dflt)
		if err != nil {
			return nil, "", err
		}
		q := `ALTER TABLE ` + ident(now.name) + ` ADD COLUMN ` + ident(name)
		if typ != "" {
			q += " " + typ
		}
		d := "NULL"
		if dflt.Valid {
			d = dflt.String
			q += " DEFAULT " + d
		}
		if notNull != 0 {
			q += " NOT NULL"
		}
		out = append(out, column{name: name, ddl: q, dflt: d})
	}
	return out, "", nil
}

// Statements a peer may send, and how each is made idempotent.
var (
	createRE = regexp.MustCompile(`(?is)^\s*CREATE\s+(UNIQUE\s+)?(TABLE|INDEX)\s+(IF\s+NOT\s+EXISTS\s+)?`)
	alterRE  = regexp.MustCompile(`(?is)^ALTER TABLE ("(?:[^"]|"")+") ADD COLUMN ("(?:[^"]|"")+")`)
)

// errSchema is wrapped by a schema change that cannot be applied.
var errSchema = errors.New("schema change refused")

// applySchema carries out a peer's schema change in the apply transaction
// and installs the triggers of what it created or changed. While tables
// are refused for an incompatible schema, the peer's schema change may be
// the operator's fix, or may not fit the refused table here: it is tried
// inside a savepoint, skipped if it fails, and the group asks for a
// reconcile, which compares the schemas again.
func (a *sqliteApply) applySchema(ctx context.Context, c *wire.Change) error {
	m := a.s.Mismatched()
	if len(m) == 0 {
		return a.applySchemaNow(ctx, c)
	}
	a.res.Resync = fmt.Sprintf("the peer changed its schema while table(s) %s are refused for an incompatible schema", strings.Join(slices.Sorted(maps.Keys(m)), ", "))
	if _, err := a.tx.ExecContext(ctx, `SAVEPOINT tandem_schema`); err != nil {
		return err
	}
	if err := a.applySchemaNow(ctx, c); err != nil {
		if _, rerr := a.tx.ExecContext(ctx, `ROLLBACK TO tandem_schema`); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	_, err := a.tx.ExecContext(ctx, `RELEASE tandem_schema`)
	return err
}

func (a *sqliteApply) applySchemaNow(ctx context.Context, c *wire.Change) error {
	_, vals, err := c.Columns()
	q, ok := "", false
	if err == nil && len(vals) == 1 {
		q, ok = vals[0].(string)
	}
	if !ok {
		return fmt.Errorf("%w: a schema change carries one statement as sql", errSchema)
	}
	switch {
	case alterRE.MatchString(q):
		m := alterRE.FindStringSubmatch(q)
		tbl, col := unident(m[1]), unident(m[2])
		var n int
		if err := a.tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, tbl, col).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return a.reshape(ctx)
		}
	case createRE.MatchString(q):
		m := createRE.FindStringSubmatchIndex(q)
		if m[6] < 0 { // no IF NOT EXISTS yet
			q = q[:m[5]] + " IF NOT EXISTS" + q[m[5]:]
		}
	default:
		return fmt.Errorf("%w: %q is not CREATE TABLE, CREATE INDEX or ALTER TABLE … ADD COLUMN", errSchema, firstLine(q))
	}
	if _, err := a.tx.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("%w: %s: %w", errSchema, firstLine(q), err)
	}
	return a.reshape(ctx)
}

// reshape re-plans the tables inside the apply transaction and installs
// their triggers; the plan takes effect when the group commits.
func (a *sqliteApply) reshape(ctx context.Context) error {
	p, err := a.s.planWith(ctx, a.tx, a.s.only)
	if err != nil {
		return err
	}
	for _, q := range p.stmts {
		if _, err := a.tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	a.plan = &p
	return nil
}

// schemaNow reads the schema version and indexes of plan p through q.
func schemaNow(ctx context.Context, q interface {
	querier
	rowQuerier
}, p tablePlan) (schemaState, error) {
	v, err := schemaVersion(ctx, q)
	if err != nil {
		return schemaState{}, err
	}
	idx, err := indexes(ctx, q, p.tables)
	return schemaState{version: v, indexes: idx}, err
}

// unident reverses ident.
func unident(s string) string {
	return strings.ReplaceAll(strings.TrimSuffix(strings.TrimPrefix(s, `"`), `"`), `""`, `"`)
}

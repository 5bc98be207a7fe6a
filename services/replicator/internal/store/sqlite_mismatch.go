package store

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Incompatible schemas (R1, R11). Columns the peer's table has and this
// one lacks are added first, when that is the only difference (see
// addMissingColumns). When a reconcile then finds a table whose
// schema differs from the snapshot's (the peer's) in a way rows cannot
// cross — another primary key, a column one side lacks, a column whose
// type affinity differs — that table alone is refused: it is left as it
// is, gets no capture triggers, and the peer's changes to it are skipped;
// every other table is reconciled and replicates. The refusal is kept in
// _tandem_meta (key "refused:<table>"), so a restart does not replicate the
// table again, and Refused names it with the difference.
//
// It is lifted by the next reconcile that finds the schemas compatible:
// the replicator asks for one when this database's schema changes (the
// operator fixed it here), when the peer ships a schema change, and on
// `tandem repl resync`. The table is then merged row by row like any other.

// mismatchKey is the _tandem_meta key prefix of a refused table.
const mismatchKey = "refused:"

// loadMismatch reads the tables refused for an incompatible schema.
func (s *SQLite) loadMismatch(ctx context.Context) error {
	rows, err := s.r.QueryContext(ctx, `SELECT substr(k, ?), v FROM _tandem_meta WHERE substr(k, 1, ?) = ?`,
		len(mismatchKey)+1, len(mismatchKey), mismatchKey)
	if err != nil {
		return err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var tbl, why string
		if err := rows.Scan(&tbl, &why); err != nil {
			return err
		}
		m[tbl] = why
	}
	s.mu.Lock()
	s.mismatch = m
	s.mu.Unlock()
	return rows.Err()
}

// saveMismatch replaces the refused tables in tx: their refusal is
// recorded, their triggers dropped and their row versions forgotten (the
// rows are versioned afresh when the table is picked up again).
func saveMismatch(ctx context.Context, tx *sql.Tx, m map[string]string) error {
	stmts := []string{`DELETE FROM main._tandem_meta WHERE substr(k, 1, ` + fmt.Sprint(len(mismatchKey)) + `) = ` + lit(mismatchKey)}
	for _, tbl := range slices.Sorted(maps.Keys(m)) {
		stmts = append(stmts, `INSERT INTO main._tandem_meta(k, v) VALUES(`+lit(mismatchKey+tbl)+`, `+lit(m[tbl])+`)`,
			`DELETE FROM main._tandem_ver WHERE tbl = `+lit(tbl))
		stmts = append(stmts, dropTriggers(tbl)...)
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	return nil
}

// Mismatched lists the tables refused because their schema differs from
// the peer's.
func (s *SQLite) Mismatched() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.mismatch)
}

// colInfo is one column as pragma_table_info describes it.
type colInfo struct {
	name, typ string
	pk        int
	notNull   bool
	dflt      sql.NullString
}

func columnsOf(ctx context.Context, q rowQuerier, schema, name string) ([]colInfo, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, type, pk, "notnull", dflt_value FROM pragma_table_info(?, ?) ORDER BY cid`, name, schema)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []colInfo
	for rows.Next() {
		var c colInfo
		if err := rows.Scan(&c.name, &c.typ, &c.pk, &c.notNull, &c.dflt); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// keyOf lists the key columns in key order.
func keyOf(cols []colInfo) []string {
	var ks []colInfo
	for _, c := range cols {
		if c.pk > 0 {
			ks = append(ks, c)
		}
	}
	slices.SortFunc(ks, func(a, b colInfo) int { return a.pk - b.pk })
	out := make([]string, len(ks))
	for i, c := range ks {
		out[i] = c.name
	}
	return out
}

// schemaMismatch says why rows of the table cannot cross between here
// and there ("" when they can): another primary key, columns one side
// lacks, or a column whose type affinity differs (SQLite would store the
// same value differently, so the nodes would not stay identical).
func schemaMismatch(here, there []colInfo) string {
	var parts []string
	if kh, kt := keyOf(here), keyOf(there); !slices.Equal(kh, kt) {
		parts = append(parts, fmt.Sprintf("primary key (%s) here, (%s) on the peer", strings.Join(kh, ", "), strings.Join(kt, ", ")))
	}
	names := func(cs []colInfo) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.name
		}
		return out
	}
	if d := columnDiff(names(here), names(there)); d != "" {
		parts = append(parts, d)
	}
	for _, h := range here {
		for _, t := range there {
			if h.name == t.name && affinity(h.typ) != affinity(t.typ) {
				parts = append(parts, fmt.Sprintf("column %s is %s here (%s affinity), %s on the peer (%s affinity)",
					h.name, orNone(h.typ), affinity(h.typ), orNone(t.typ), affinity(t.typ)))
			}
		}
	}
	return strings.Join(parts, "; ")
}

func orNone(typ string) string {
	if typ == "" {
		return "untyped"
	}
	return typ
}

// affinity is the type affinity SQLite gives a declared column type
// (https://sqlite.org/datatype3.html §3.1).
func affinity(typ string) string {
	t := strings.ToUpper(typ)
	switch {
	case strings.Contains(t, "INT"):
		return "INTEGER"
	case strings.Contains(t, "CHAR"), strings.Contains(t, "CLOB"), strings.Contains(t, "TEXT"):
		return "TEXT"
	case t == "", strings.Contains(t, "BLOB"):
		return "BLOB"
	case strings.Contains(t, "REAL"), strings.Contains(t, "FLOA"), strings.Contains(t, "DOUB"):
		return "REAL"
	}
	return "NUMERIC"
}

// addMissingColumns adds to this database's tables the columns the
// snapshot's (the peer's) have and they lack, when that is all that differs
// (same key, the shared columns of the same affinity): ALTER TABLE … ADD
// COLUMN with the peer's type, default and NOT NULL, one savepoint per
// table. A column SQLite cannot add (say NOT NULL without a default) leaves
// the table as it was, and the reconcile refuses it with the difference.
func (s *SQLite) addMissingColumns(ctx context.Context, c *sql.Conn) error {
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	added := false
	for _, name := range s.reconcileNames() {
		here, err := columnsOf(ctx, tx, "main", name)
		if err != nil {
			return err
		}
		there, err := columnsOf(ctx, tx, "snap", name)
		if err != nil {
			return err
		}
		stmts, ok := addColumns(name, here, there)
		if !ok || len(stmts) == 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `SAVEPOINT tandem_add`); err != nil {
			return err
		}
		var failed error
		for _, q := range stmts {
			if _, failed = tx.ExecContext(ctx, q); failed != nil {
				break
			}
		}
		if failed != nil {
			if _, err := tx.ExecContext(ctx, `ROLLBACK TO tandem_add`); err != nil {
				return err
			}
		} else {
			added = true
		}
		if _, err := tx.ExecContext(ctx, `RELEASE tandem_add`); err != nil {
			return err
		}
	}
	if !added {
		return nil
	}
	return tx.Commit()
}

// addColumns are the statements that give table name here the columns it
// lacks of there; not ok when anything else differs.
func addColumns(name string, here, there []colInfo) ([]string, bool) {
	if len(here) == 0 || len(there) == 0 || !slices.Equal(keyOf(here), keyOf(there)) {
		return nil, false
	}
	has := map[string]colInfo{}
	for _, c := range there {
		has[c.name] = c
	}
	for _, h := range here {
		t, ok := has[h.name]
		if !ok || affinity(t.typ) != affinity(h.typ) {
			return nil, false
		}
		delete(has, h.name)
	}
	var out []string
	for _, t := range there {
		if _, missing := has[t.name]; !missing {
			continue
		}
		q := `ALTER TABLE main.` + ident(name) + ` ADD COLUMN ` + ident(t.name)
		if t.typ != "" {
			q += " " + t.typ
		}
		if t.dflt.Valid {
			q += " DEFAULT " + t.dflt.String
		}
		if t.notNull {
			q += " NOT NULL"
		}
		out = append(out, q)
	}
	return out, true
}

// installOn plans the tables again and installs their triggers through c
// (a connection that may hold the snapshot attached), then publishes the
// plan and the schema it was made on.
func (s *SQLite) installOn(ctx context.Context, c *sql.Conn) error {
	p, err := s.planWith(ctx, c, s.only)
	if err != nil {
		return err
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	for _, q := range p.stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", firstLine(q), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	sc, err := schemaNow(ctx, c, p)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.tables, s.refused, s.schema = p.tables, p.refused, sc
	s.mu.Unlock()
	return nil
}

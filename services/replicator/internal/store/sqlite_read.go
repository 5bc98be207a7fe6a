package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// ReadTable reads cols of every row of table name (see Store.ReadTable).
func (s *SQLite) ReadTable(ctx context.Context, name string, cols []string, fn func(vals []*string) error) (bool, error) {
	if len(cols) == 0 {
		return false, errors.New("read table: no columns")
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, err
	}
	defer tx.Rollback() //nolint:errcheck // read only
	var one int
	err = tx.QueryRowContext(ctx, `SELECT 1 FROM sqlite_schema WHERE type IN ('table', 'view') AND name = ?`, name).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read table %s: %w", name, err)
	}
	if err := hasColumns(ctx, tx, name, cols); err != nil {
		return true, err
	}
	quoted := make([]string, len(cols))
	for i, c := range cols {
		quoted[i] = ident(c)
	}
	list := strings.Join(quoted, ", ")
	rows, err := tx.QueryContext(ctx, "SELECT "+list+" FROM "+ident(name)+" ORDER BY "+list)
	if err != nil {
		return true, fmt.Errorf("read table %s: %w", name, err)
	}
	defer rows.Close()
	vals := make([]sql.NullString, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	out := make([]*string, len(cols))
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return true, fmt.Errorf("read table %s: %w", name, err)
		}
		for i := range vals {
			out[i] = nil
			if vals[i].Valid {
				v := vals[i].String
				out[i] = &v
			}
		}
		if err := fn(out); err != nil {
			return true, err
		}
	}
	if err := rows.Err(); err != nil {
		return true, fmt.Errorf("read table %s: %w", name, err)
	}
	return true, nil
}

// hasColumns checks that table name has cols: SQLite would read a quoted
// name that is no column as a string literal.
func hasColumns(ctx context.Context, tx *sql.Tx, name string, cols []string) error {
	rows, err := tx.QueryContext(ctx, `SELECT name FROM pragma_table_info(?)`, name)
	if err != nil {
		return fmt.Errorf("read table %s: %w", name, err)
	}
	defer rows.Close()
	has := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return fmt.Errorf("read table %s: %w", name, err)
		}
		has[strings.ToLower(c)] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read table %s: %w", name, err)
	}
	for _, c := range cols {
		if !has[strings.ToLower(c)] {
			return fmt.Errorf("read table %s: column %q: %w", name, c, ErrUnknownColumn)
		}
	}
	return nil
}

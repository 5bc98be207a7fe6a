package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
)

// Snapshot implements Store with VACUUM INTO: SQLite writes a consistent,
// compacted copy of the database as of one read transaction. The copy holds
// the log and its sqlite_sequence, so the log position the snapshot
// contains is read from the copy itself: it cannot disagree with the data.
func (s *SQLite) Snapshot(ctx context.Context, path string) (Snapshot, error) {
	if err := s.adoptAll(ctx); err != nil {
		return Snapshot{}, fmt.Errorf("version the rows written before capture: %w", err)
	}
	if _, err := s.r.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		return Snapshot{}, fmt.Errorf("vacuum into %s: %w", path, err)
	}
	return ReadSnapshot(ctx, path)
}

// ReadSnapshot reads the database id and log position of a snapshot file.
func ReadSnapshot(ctx context.Context, path string) (Snapshot, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return Snapshot{}, err
	}
	defer db.Close()
	var snap Snapshot
	if err := db.QueryRowContext(ctx, `SELECT v FROM _tandem_meta WHERE k = 'db'`).Scan(&snap.DB); err != nil {
		return snap, fmt.Errorf("snapshot %s has no database id: %w", path, err)
	}
	var n int64
	err = db.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = '_tandem_log'`).Scan(&n)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return snap, err
	}
	snap.Log = uint64(n)
	return snap, nil
}

// Restore implements Store. The snapshot is attached read-only; tables
// and indexes this database lacks are created; then reconcile merges it in
// one write transaction (see sqlite_reconcile.go).
func (s *SQLite) Restore(ctx context.Context, path, source string, stream uint64) (Reconciled, error) {
	return s.restore(ctx, path, source, stream, false)
}

// Discard implements Store: Restore, discarding what differs here.
func (s *SQLite) Discard(ctx context.Context, path, source string, stream uint64) (Reconciled, error) {
	return s.restore(ctx, path, source, stream, true)
}

func (s *SQLite) restore(ctx context.Context, path, source string, stream uint64, discard bool) (Reconciled, error) {
	snap, err := ReadSnapshot(ctx, path)
	if err != nil {
		return Reconciled{Snapshot: snap}, err
	}
	c, err := s.w.Conn(ctx)
	if err != nil {
		return Reconciled{Snapshot: snap}, err
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, `ATTACH DATABASE ? AS snap`, "file:"+path+"?mode=ro"); err != nil {
		return Reconciled{Snapshot: snap}, fmt.Errorf("attach snapshot: %w", err)
	}
	defer c.ExecContext(context.Background(), `DETACH DATABASE snap`) //nolint:errcheck
	if err := s.createMissing(ctx, c); err != nil {
		return Reconciled{Snapshot: snap}, fmt.Errorf("restore snapshot: %w", err)
	}
	if err := s.addMissingColumns(ctx, c); err != nil {
		return Reconciled{Snapshot: snap}, fmt.Errorf("restore snapshot: add the peer's columns: %w", err)
	}
	rec, err := s.reconcile(ctx, c, snap, source, stream, discard)
	if err != nil {
		return rec, fmt.Errorf("reconcile with the snapshot: %w", err)
	}
	if s.side == Standby {
		s.mu.Lock()
		s.mismatch = maps.Clone(rec.Refused)
		s.mu.Unlock()
	}
	if err := s.installOn(ctx, c); err != nil {
		return rec, fmt.Errorf("install the triggers after the reconcile: %w", err)
	}
	return rec, nil
}

// createMissing creates the snapshot's application tables (and their
// indexes) that this database lacks, when every table is replicated, and
// installs their triggers.
func (s *SQLite) createMissing(ctx context.Context, c *sql.Conn) error {
	if len(s.only) > 0 {
		return nil
	}
	rows, err := c.QueryContext(ctx, `SELECT s.sql FROM snap.sqlite_schema s WHERE s.sql IS NOT NULL
		AND s.tbl_name NOT LIKE 'sqlite\_%' ESCAPE '\' AND s.tbl_name NOT LIKE '\_tandem\_%' ESCAPE '\'
		AND s.type IN ('table', 'index')
		AND NOT EXISTS (SELECT 1 FROM main.sqlite_schema m WHERE m.type = 'table' AND m.name = s.tbl_name)
		ORDER BY s.type = 'index', s.rowid`)
	if err != nil {
		return err
	}
	var stmts []string
	for rows.Next() {
		var q string
		if err := rows.Scan(&q); err != nil {
			rows.Close()
			return err
		}
		stmts = append(stmts, q)
	}
	rows.Close()
	if len(stmts) == 0 {
		return rows.Err()
	}
	tx, err := c.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create %s: %w", firstLine(q), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return s.installOn(ctx, c)
}

// Sums implements Store: every row is hashed (table, key, and its columns
// by name, as quote() writes them, so column order does not matter); the
// hashes are XORed into nb buckets by key hash.
func (s *SQLite) Sums(ctx context.Context, nb int) ([]TableSum, error) {
	if nb < 1 || nb > 4096 {
		return nil, fmt.Errorf("bucket count %d: want 1–4096", nb)
	}
	tx, done, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var out []TableSum
	for _, name := range s.tableNames() {
		ts := TableSum{Table: name, Buckets: make([]uint64, nb)}
		err := s.eachRowSum(ctx, tx, name, nb, func(_ string, b int, h uint64) error {
			ts.Buckets[b] ^= h
			ts.Rows++
			return nil
		})
		if err != nil {
			return nil, err
		}
		sum := sha256.New()
		for _, b := range ts.Buckets {
			_ = binary.Write(sum, binary.BigEndian, b)
		}
		ts.Sum = hex.EncodeToString(sum.Sum(nil)[:16])
		out = append(out, ts)
	}
	return out, nil
}

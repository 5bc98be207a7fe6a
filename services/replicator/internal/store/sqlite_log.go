package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// Info implements Store.
func (s *SQLite) Info(ctx context.Context) (Info, error) {
	in := Info{Side: s.side, Tables: s.tableNames()}
	var err error
	if in.DB, err = s.meta(ctx, "db"); err != nil {
		return in, err
	}
	p, err := s.meta(ctx, "paused")
	if err != nil {
		return in, err
	}
	in.Paused = p == "1"
	at, err := s.meta(ctx, "paused_at")
	if err != nil {
		return in, err
	}
	if ns, err := strconv.ParseInt(at, 10, 64); err == nil && ns > 0 {
		in.PauseAt = time.Unix(0, ns)
	}
	shipped, err := s.meta(ctx, "shipped")
	if err != nil {
		return in, err
	}
	if db, seq, ok := strings.Cut(shipped, ":"); ok && db == in.DB {
		in.Shipped, err = strconv.ParseUint(seq, 10, 64)
		in.ShippedKnown = err == nil
	}
	var ok bool
	if in.DBStart, ok, err = s.dbStart(ctx); err != nil {
		return in, err
	}
	if in.LogHigh, err = s.logHigh(ctx, s.r); err != nil {
		return in, err
	}
	if !ok {
		in.DBStart = in.LogHigh // a database made before the start was recorded
	}
	err = s.r.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM _tandem_log), (SELECT count(*) FROM _tandem_conflict)`).
		Scan(&in.LogRows, &in.Conflicts)
	return in, err
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// logHigh is the highest log sequence ever assigned (AUTOINCREMENT keeps it
// in sqlite_sequence even when the log is pruned).
func (s *SQLite) logHigh(ctx context.Context, q querier) (uint64, error) {
	var n int64
	err := q.QueryRowContext(ctx, `SELECT seq FROM sqlite_sequence WHERE name = '_tandem_log'`).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(n), err
}

// ReadLog implements Store.
func (s *SQLite) ReadLog(ctx context.Context, after uint64, fn func(wire.Change) error) (uint64, error) {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return 0, err
	}
	defer tx.Rollback() //nolint:errcheck
	high, err := s.logHigh(ctx, tx)
	if err != nil {
		return 0, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, tbl, op, pk, CASE WHEN coalesce(octet_length(row), 0) <= ? THEN coalesce(row, '') END,
		coalesce(octet_length(row), 0), m, s, ts FROM _tandem_log WHERE seq > ? ORDER BY seq`, largeRow, int64(after))
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var c wire.Change
		var row sql.NullString
		var size int
		if err := rows.Scan(&c.Seq, &c.Table, &c.Op, &c.PK, &row, &size, &c.M, &c.S, &c.TS); err != nil {
			return 0, err
		}
		if row.Valid {
			err = wire.EachPiece(c, row.String, fn)
		} else {
			err = wire.EachPieceRef(c, size, fn) // read by the peer: ReadPiece
		}
		if err != nil {
			return 0, err
		}
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	return max(high, after), nil
}

// ErrNoPiece: the log no longer holds the row a piece was asked of (its
// database id changed, or the entry was pruned or is another change).
var ErrNoPiece = errors.New("the change log no longer holds that row")

// ReadPiece implements LogReader.
func (s *SQLite) ReadPiece(ctx context.Context, r wire.PieceRequest, off, n int) (string, error) {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return "", err
	}
	defer tx.Rollback() //nolint:errcheck
	var db string
	var m, sv uint64
	var ts float64
	err = tx.QueryRowContext(ctx, `SELECT coalesce((SELECT v FROM _tandem_meta WHERE k = 'db'), ''), m, s, ts FROM _tandem_log WHERE seq = ?`, int64(r.Seq)).
		Scan(&db, &m, &sv, &ts)
	// ts is the float the log holds, which ReadLog read and the request
	// carries back exactly.
	if errors.Is(err, sql.ErrNoRows) || (err == nil && (db != r.DB || m != r.M || sv != r.S || ts != r.TS)) {
		return "", fmt.Errorf("%w: change %d of database %s", ErrNoPiece, r.Seq, r.DB)
	}
	if err != nil {
		return "", err
	}
	return logSlices(ctx, conn, tx, r.Seq)(off, n)
}

// logSlices reads the row of log entry seq in slices: a large row (a
// 50 MiB blob is 100 MiB of literal) is never held whole. It reads them
// with incremental blob I/O on tx's connection conn (readBlob), or, where
// the driver does not allow it, with substr(), which loads the whole
// value into SQLite's heap for each slice.
func logSlices(ctx context.Context, conn *sql.Conn, tx *sql.Tx, seq uint64) func(off, n int) (string, error) {
	return func(off, n int) (string, error) {
		var b []byte
		err := conn.Raw(func(dc any) error {
			var err error
			b, err = readBlob(dc, "_tandem_log", "row", int64(seq), off, n)
			return err
		})
		if errors.Is(err, errNoBlobIO) {
			err = tx.QueryRowContext(ctx, `SELECT substr(CAST(row AS BLOB), ?, ?) FROM _tandem_log WHERE seq = ?`, off+1, n, int64(seq)).Scan(&b)
		}
		if err != nil || len(b) == 0 {
			return "", err
		}
		return unsafe.String(&b[0], len(b)), nil // b is not used again: no copy
	}
}

// Prune implements Store.
func (s *SQLite) Prune(ctx context.Context, upTo uint64) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM _tandem_log WHERE seq <= ?`, int64(upTo))
	return err
}

// Position implements Store.
func (s *SQLite) Position(ctx context.Context, source string) (Position, bool, error) {
	var p Position
	var at string
	err := s.r.QueryRowContext(ctx, `SELECT db, log, stream, ts, at FROM _tandem_pos WHERE node = ?`, source).
		Scan(&p.DB, &p.Log, &p.Stream, &p.TS, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return p, false, nil
	}
	if err != nil {
		return p, false, err
	}
	p.At, _ = time.Parse(time.RFC3339Nano, at)
	return p, true, nil
}

// SetPosition implements Store.
func (s *SQLite) SetPosition(ctx context.Context, source string, p Position) error {
	return setPosition(ctx, s.w, source, p)
}

func setPosition(ctx context.Context, x execer, source string, p Position) error {
	if p.At.IsZero() {
		p.At = time.Now()
	}
	_, err := x.ExecContext(ctx, `INSERT INTO _tandem_pos(node, db, log, stream, ts, at) VALUES(?, ?, ?, ?, ?, ?)
		ON CONFLICT(node) DO UPDATE SET db = excluded.db, log = excluded.log, stream = excluded.stream, ts = excluded.ts, at = excluded.at`,
		source, p.DB, int64(p.Log), int64(p.Stream), p.TS, p.At.UTC().Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("record position of %s: %w", source, err)
	}
	return nil
}

// SetPaused implements Store.
func (s *SQLite) SetPaused(ctx context.Context, paused bool, at time.Time) error {
	v := "0"
	if paused {
		v = "1"
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck
	if err := s.setMeta(ctx, tx, "paused", v); err != nil {
		return err
	}
	if err := s.setMeta(ctx, tx, "paused_at", strconv.FormatInt(at.UnixNano(), 10)); err != nil {
		return err
	}
	return tx.Commit()
}

// SetShipped implements Store.
func (s *SQLite) SetShipped(ctx context.Context, db string, seq uint64) error {
	return s.setMeta(ctx, s.w, "shipped", db+":"+strconv.FormatUint(seq, 10))
}

// WriteFailover implements Store. The row is written as an ordinary change
// (captured, so replication carries it to the peer).
func (s *SQLite) WriteFailover(ctx context.Context, node string, epoch uint64, at time.Time) error {
	_, err := s.f.ExecContext(ctx, `INSERT INTO _tandem_failover(node, epoch, at) VALUES(?, ?, ?)
		ON CONFLICT(node) DO UPDATE SET epoch = excluded.epoch, at = excluded.at WHERE excluded.epoch > epoch`,
		node, int64(epoch), at.UTC().Format(time.RFC3339Nano))
	return err
}

// Conflicts implements Store.
func (s *SQLite) Conflicts(ctx context.Context) ([]Conflict, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT tbl, pk, kind, winner, loser, loser_op, coalesce(loser_row, ''),
		loser_m, loser_s, winner_m, winner_s, at FROM _tandem_conflict ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Conflict
	for rows.Next() {
		var c Conflict
		var at string
		if err := rows.Scan(&c.Table, &c.PK, &c.Kind, &c.Winner, &c.Loser, &c.LoserOp, &c.LoserRow,
			&c.LoserVer.M, &c.LoserVer.S, &c.WinnerVer.M, &c.WinnerVer.S, &at); err != nil {
			return nil, err
		}
		c.RecordedAt, _ = time.Parse(time.RFC3339Nano, at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// dbStart is the log sequence the current database id's batches start
// after; ok is false when it was never recorded (a database made by an
// older Tandem).
func (s *SQLite) dbStart(ctx context.Context) (n uint64, ok bool, err error) {
	v, err := s.meta(ctx, "db_start")
	if err != nil || v == "" {
		return 0, false, err
	}
	if _, err := fmt.Sscan(v, &n); err != nil {
		return 0, false, fmt.Errorf("meta db_start %q: %w", v, err)
	}
	return n, true, nil
}

package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"

	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// A row's sum is the SHA-256 of its table, key and image (the JSON object
// of column → literal the triggers capture, columns sorted by name). A row
// whose values are larger than largeRow is hashed without building its
// image: the image of a 50 MiB blob is 100 MiB of hex, which SQLite's
// quote(), json_object() and the driver's copy would each hold whole. Its
// columns are read one by one and a large value in slices of sliceSize,
// written to the hash as the same bytes (R7, R12: memory stays bounded).
const (
	largeRow  = 1 << 20
	sliceSize = 4 << 20
)

// rowSizes are largeRow and sliceSize, or smaller ones a test sets.
type rowSizes struct{ large, slice int }

func (s *SQLite) rowSizes() rowSizes {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sizes
}

// RowSums implements Store.
func (s *SQLite) RowSums(ctx context.Context, name string, nb int, buckets []int, limit int) ([]RowSum, error) {
	if _, ok := s.table(name); !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownTable, name)
	}
	tx, done, err := s.readTx(ctx)
	if err != nil {
		return nil, err
	}
	defer done()
	var out []RowSum
	err = s.eachRowSum(ctx, tx, name, nb, func(pk string, b int, h uint64) error {
		if slices.Contains(buckets, b) && len(out) < limit {
			out = append(out, RowSum{PK: pk, Hash: fmt.Sprintf("%016x", h)})
		}
		return nil
	})
	return out, err
}

type rowQuerier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// rowTxQuerier reads rows, and one row again while it reads them.
type rowTxQuerier interface {
	rowQuerier
	querier
}

// connTx is a read transaction on a connection of its own, whose driver
// connection reads blobs by incremental I/O (readBlob).
type connTx struct {
	*sql.Tx
	conn *sql.Conn
}

// readTx begins a read transaction on a connection of its own; done ends
// both.
func (s *SQLite) readTx(ctx context.Context) (*connTx, func(), error) {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return &connTx{Tx: tx, conn: conn}, func() { _ = tx.Rollback(); conn.Close() }, nil
}

// readBlob reads n bytes at off of the blob in column col of row rowid of
// table tbl (errNoBlobIO where the driver does not allow it).
func (c *connTx) readBlob(tbl, col string, rowid int64, off, n int) ([]byte, error) {
	var b []byte
	err := c.conn.Raw(func(dc any) error {
		var err error
		b, err = readBlob(dc, tbl, col, rowid, off, n)
		return err
	})
	return b, err
}

// eachRowSum passes fn each row's key, bucket (of nb) and hash.
func (s *SQLite) eachRowSum(ctx context.Context, q rowTxQuerier, name string, nb int, fn func(pk string, bucket int, h uint64) error) error {
	t, _ := s.table(name)
	sorted := &table{name: t.name, pk: t.pk, cols: slices.Sorted(slices.Values(t.cols))}
	ref := ident(name)
	sz := s.rowSizes()
	rows, err := q.QueryContext(ctx, `SELECT `+keyExpr(t, ref)+`, CASE WHEN `+sizeExpr(sorted, ref)+` <= ?
		THEN `+rowExpr(sorted, ref)+` END FROM `+ref, sz.large)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	defer rows.Close()
	for rows.Next() {
		var pk string
		var row sql.NullString
		if err := rows.Scan(&pk, &row); err != nil {
			return err
		}
		h := newRowHash(name, pk)
		if row.Valid {
			hashString(h, row.String)
		} else if err := hashLargeRow(ctx, q, sorted, pk, sz.slice, h); err != nil {
			return fmt.Errorf("read %s row %s: %w", name, trimKey(pk), err)
		}
		f := fnv.New64a()
		f.Write([]byte(pk))
		if err := fn(pk, int(f.Sum64()%uint64(nb)), binary.BigEndian.Uint64(h.Sum(nil)[:8])); err != nil {
			return err
		}
	}
	return rows.Err()
}

// sizeExpr is the size in bytes of a row's values, read without loading
// them (octet_length).
func sizeExpr(t *table, ref string) string {
	parts := make([]string, len(t.cols))
	for i, c := range t.cols {
		parts[i] = "coalesce(octet_length(" + ref + "." + ident(c) + "), 0)"
	}
	return "(" + strings.Join(parts, " + ") + ")"
}

func newRowHash(table, pk string) hash.Hash {
	h := sha256.New()
	hashString(h, table+"\x00"+pk+"\x00")
	return h
}

// hashString writes s to h; a string over 64 KiB goes through one 64 KiB
// buffer (a large row is not copied whole).
func hashString(h hash.Hash, s string) {
	if len(s) <= 64<<10 {
		h.Write([]byte(s))
		return
	}
	buf := make([]byte, 64<<10)
	for len(s) > 0 {
		n := copy(buf, s)
		h.Write(buf[:n])
		s = s[n:]
	}
}

func trimKey(pk string) string {
	if len(pk) > 64 {
		return pk[:64] + "…"
	}
	return pk
}

// hashLargeRow writes to h the image of the row of t with key pk (columns
// sorted) as json_object would write it: each value up to slice bytes as
// its JSON string, each larger one in slices of slice bytes (or characters).
func hashLargeRow(ctx context.Context, q rowTxQuerier, t *table, pk string, slice int, h hash.Hash) error {
	where, args, err := keyWhere(t, pk)
	if err != nil {
		return err
	}
	ref := ident(t.name)
	sel := make([]string, 0, 3*len(t.cols))
	for _, c := range t.cols {
		x := ref + "." + ident(c)
		sel = append(sel, `CASE WHEN coalesce(octet_length(`+x+`), 0) <= `+fmt.Sprint(slice)+
			` THEN json_quote(`+valueExpr(x)+`) END`, `typeof(`+x+`)`, `octet_length(`+x+`)`)
	}
	vals := make([]sql.NullString, len(sel))
	dest := make([]any, len(sel))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := q.QueryRowContext(ctx, `SELECT `+strings.Join(sel, ", ")+` FROM `+ref+` WHERE `+where, args...).Scan(dest...); err != nil {
		return err
	}
	h.Write([]byte("{"))
	for i, c := range t.cols {
		if i > 0 {
			h.Write([]byte(","))
		}
		h.Write([]byte(jsonKey(c)))
		if v := vals[3*i]; v.Valid {
			hashString(h, v.String)
			continue
		}
		v := largeValue{x: ref + "." + ident(c), tbl: t.name, col: c, typ: vals[3*i+1].String, size: vals[3*i+2].String}
		if err := hashLargeValue(ctx, q, v, ref, where, args, slice, h); err != nil {
			return fmt.Errorf("column %s: %w", c, err)
		}
	}
	h.Write([]byte("}"))
	return nil
}

// jsonKey is a column name as json_object writes it, with its colon
// (replicated tables' column names need no escapes: wire.ValidIdent).
func jsonKey(c string) string { return `"` + c + `":` }

// keyWhere selects the row with key pk in t.
func keyWhere(t *table, pk string) (string, []any, error) {
	args, err := wire.ParseList(pk)
	if err != nil || len(args) != len(t.pk) {
		return "", nil, fmt.Errorf("key %q does not fit table %q", trimKey(pk), t.name)
	}
	where := make([]string, len(t.pk))
	for i, k := range t.pk {
		where[i] = ident(k) + " IS ?"
	}
	return strings.Join(where, " AND "), args, nil
}

// largeValue is a value read in slices: its SQL expression, table and
// column, type and size in bytes.
type largeValue struct{ x, tbl, col, typ, size string }

// hashLargeValue writes to h the JSON string of the literal of the large
// value v (a blob or text) in slices of slice bytes: what valueExpr and
// json_quote make of it whole. A blob is X'hex'; text holding a NUL byte
// is CAST(X'hex' AS TEXT); other text is quoted with its quotes doubled,
// in slices of slice characters (JSON escapes one character at a time, so
// slices escape alike).
func hashLargeValue(ctx context.Context, q rowTxQuerier, v largeValue, ref, where string, args []any, slice int, h hash.Hash) error {
	sl, err := literalSlices(ctx, q, v, ref, where, args)
	if err != nil {
		return err
	}
	size, err := strconv.Atoi(v.size)
	if err != nil {
		return fmt.Errorf("size %q: %w", v.size, err)
	}
	h.Write([]byte(sl.open))
	if done, err := hashBlobIO(ctx, q, v, ref, where, args, size, slice, h); done || err != nil {
		if err == nil {
			h.Write([]byte(sl.end))
		}
		return err
	}
	query := `SELECT ` + sl.piece + ` FROM ` + ref + ` WHERE ` + where
	for off, n := 1, 0; ; off, n = off+slice, n+1 {
		if n > size/slice+1 {
			return fmt.Errorf("more than %d slices of %d in %d bytes", n, slice, size)
		}
		var s string
		if err := q.QueryRowContext(ctx, query, append([]any{off, slice}, args...)...).Scan(&s); err != nil {
			return err
		}
		if sl.quoted {
			s = strings.TrimSuffix(s, `"`) // json_quote's closing quote
		}
		if s == "" {
			break
		}
		hashString(h, s)
	}
	h.Write([]byte(sl.end))
	return nil
}

// hashBlobIO writes to h the hex of the blob v of size bytes, read by
// incremental blob I/O in slices of slice bytes, and reports true; false
// (nothing written) when it cannot: not a blob, a table without rowid, a
// query that is not a connTx. hex(substr()) makes SQLite load the whole
// value for every slice (a 50 MiB blob: 50 MiB of the C heap, 13 times per
// verify).
func hashBlobIO(ctx context.Context, q rowTxQuerier, v largeValue, ref, where string, args []any, size, slice int, h hash.Hash) (bool, error) {
	c, ok := q.(*connTx)
	if !ok || v.typ != "blob" {
		return false, nil
	}
	var rowid int64
	if err := c.QueryRowContext(ctx, `SELECT rowid FROM `+ref+` WHERE `+where, args...).Scan(&rowid); err != nil {
		return false, nil // WITHOUT ROWID: no blob I/O
	}
	buf := make([]byte, 2*slice)
	for off := 0; off < size; off += slice {
		b, err := c.readBlob(v.tbl, v.col, rowid, off, slice)
		if errors.Is(err, errNoBlobIO) && off == 0 {
			return false, nil
		}
		if err != nil {
			return true, err
		}
		if len(b) != min(slice, size-off) {
			return true, fmt.Errorf("%d bytes at %d of a blob of %d", len(b), off, size)
		}
		n := hexUpper(buf, b)
		h.Write(buf[:n])
	}
	return true, nil
}

// hexUpper writes b in upper-case hex to dst (as SQLite's hex()) and
// returns the bytes written.
func hexUpper(dst, b []byte) int {
	const digits = "0123456789ABCDEF"
	for i, c := range b {
		dst[2*i], dst[2*i+1] = digits[c>>4], digits[c&15]
	}
	return 2 * len(b)
}

// valueSlices is how the JSON string of a large value's literal is read: its
// opening, the SQL of one slice of sliceSize from offset ? (1-based), and
// its end. A quoted slice is a JSON string without its opening quote.
type valueSlices struct {
	open, piece, end string
	quoted           bool
}

func literalSlices(ctx context.Context, q rowTxQuerier, v largeValue, ref, where string, args []any) (valueSlices, error) {
	x := v.x
	switch v.typ {
	case "blob":
		return valueSlices{open: `"X'`, piece: `hex(substr(` + x + `, ?, ?))`, end: `'"`}, nil
	case "text":
		var nul bool
		if err := q.QueryRowContext(ctx, `SELECT instr(CAST(`+x+` AS BLOB), X'00') > 0 FROM `+ref+` WHERE `+where, args...).Scan(&nul); err != nil {
			return valueSlices{}, err
		}
		if nul {
			return valueSlices{open: `"CAST(X'`, piece: `hex(substr(CAST(` + x + ` AS BLOB), ?, ?))`, end: `' AS TEXT)"`}, nil
		}
		return valueSlices{open: `"'`, piece: `substr(json_quote(replace(substr(` + x + `, ?, ?), '''', '''''')), 2)`, end: `'"`, quoted: true}, nil
	}
	return valueSlices{}, fmt.Errorf("a large value of type %s", v.typ)
}

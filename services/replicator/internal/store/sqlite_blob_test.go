package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// peakRSS resets the process's peak resident memory when reset, and
// returns it (bytes); false when /proc does not tell.
func peakRSS(reset bool) (int64, bool) {
	if reset && os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) != nil {
		return 0, false
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) == 3 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// A large row of the change log comes from ReadLog as pieces without their
// chunks, which ReadPiece reads in slices by incremental blob I/O: the
// pieces are the row's bytes, and reading it never loads the row whole
// (with substr() SQLite loaded the whole 40 MiB literal for every slice,
// and its heap kept it: the peak grew by 109 MiB, 2.7 times the row; by
// blob I/O 38 MiB, 2026-12-05). A piece of another version of the entry,
// or of another database id, is refused.
func TestReadLogLargeRowInSlices(t *testing.T) {
	sh, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 shell")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "m.db")
	s, err := OpenSQLite(ctx, path, Master, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)`); err != nil {
		t.Fatal(err)
	}
	if err := s.install(ctx, nil); err != nil {
		t.Fatal(err)
	}
	// Written by the shell, as an application would (this binary's
	// driver may be built with -race: minutes on a value this large).
	const blob = 20 << 20
	if out, err := exec.Command(sh, "-cmd", ".timeout 10000", path,
		`INSERT INTO blobs VALUES(1, randomblob(`+strconv.Itoa(blob)+`))`).CombinedOutput(); err != nil {
		t.Fatalf("sqlite3: %v: %s", err, out)
	}
	conn, err := s.r.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	err = conn.Raw(func(dc any) error { _, _, err := blobHandle(dc); return err })
	conn.Close()
	if err != nil {
		t.Fatalf("the driver's connection: %v (a large row would be read with substr(), whole for every slice)", err)
	}

	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base, measured := peakRSS(true)
	var refs []wire.Change
	_, err = s.ReadLog(ctx, 0, func(c wire.Change) error {
		if c.Table == "blobs" {
			refs = append(refs, c)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	size := 0
	for _, c := range fillPieces(t, s, info.DB, refs) {
		size += len(c.Chunk)
		io.WriteString(h, c.Chunk)
	}
	pieces := len(refs)
	peak, _ := peakRSS(false)
	var wantSize int
	if err := s.r.QueryRowContext(ctx, `SELECT octet_length(row) FROM _tandem_log WHERE tbl = 'blobs'`).Scan(&wantSize); err != nil {
		t.Fatal(err)
	}
	var row []byte
	if err := s.r.QueryRowContext(ctx, `SELECT CAST(row AS BLOB) FROM _tandem_log WHERE tbl = 'blobs'`).Scan(&row); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(row); size != wantSize || pieces < 2 || string(h.Sum(nil)) != string(sum[:]) {
		t.Fatalf("%d pieces of %d bytes in all, want the %d bytes of the row", pieces, size, wantSize)
	}
	for _, bad := range []func(*wire.PieceRequest){
		func(r *wire.PieceRequest) { r.DB = "other" },
		func(r *wire.PieceRequest) { r.M++ },
		func(r *wire.PieceRequest) { r.Seq++ },
	} {
		r := wire.PieceOf("p", info.DB, refs[0])
		bad(&r)
		if _, err := s.ReadPiece(ctx, r, 0, wire.PieceSize); !errors.Is(err, ErrNoPiece) {
			t.Errorf("a piece of %+v: %v, want ErrNoPiece", r, err)
		}
	}
	if measured && !raceEnabled { // its shadow memory is counted too
		t.Logf("reading the %d MiB row: peak resident memory %d → %d MiB", wantSize>>20, base>>20, peak>>20)
		if grew := peak - base; grew > int64(wantSize)*3/2 {
			t.Errorf("reading the %d MiB row grew the peak resident memory by %d MiB", wantSize>>20, grew>>20)
		}
	}
}

// A blob larger than blobSlice is applied by incremental blob I/O (a
// zeroblob, then written in slices) where the table has a rowid, and whole
// where it has none; either way the standby holds the master's bytes, in
// a new row and in one updated over an existing one.
func TestApplyLargeBlobInSlices(t *testing.T) {
	sh, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 shell")
	}
	ctx := context.Background()
	dir := t.TempDir()
	schema := []string{
		`CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)`,
		`CREATE TABLE mid(k TEXT PRIMARY KEY, b BLOB, note TEXT)`, // the blob not last: SQLite expands a zeroblob there
		`CREATE TABLE wr(k TEXT PRIMARY KEY, b BLOB) WITHOUT ROWID`,
	}
	open := func(name string, side Side) *SQLite {
		s, err := OpenSQLite(ctx, filepath.Join(dir, name), side, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		for _, q := range schema {
			if _, err := s.w.ExecContext(ctx, q); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.install(ctx, nil); err != nil {
			t.Fatal(err)
		}
		return s
	}
	m, st := open("m.db", Master), open("s.db", Standby)
	after := uint64(0)
	for _, q := range []string{
		`INSERT INTO blobs VALUES(1, randomblob(3145728)); INSERT INTO mid VALUES('a', randomblob(2500000), 'x');
		 INSERT INTO wr VALUES('a', randomblob(2000000)); INSERT INTO blobs VALUES(2, x'0102')`,
		`UPDATE blobs SET b = randomblob(1500000) WHERE id = 1; UPDATE mid SET b = randomblob(3000000), note = 'y'`,
	} {
		if out, err := exec.Command(sh, "-cmd", ".timeout 10000", filepath.Join(dir, "m.db"), q).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3: %v: %s", err, out)
		}
		var changes []wire.Change
		to, err := m.ReadLog(ctx, after, func(c wire.Change) error { changes = append(changes, c); return nil })
		if err != nil {
			t.Fatal(err)
		}
		info, _ := m.Info(ctx)
		changes = fillPieces(t, m, info.DB, changes)
		a, err := st.Begin(ctx, "m", true)
		if err != nil {
			t.Fatal(err)
		}
		b := &wire.Batch{V: wire.Version, Pair: "p", Node: "m", Master: true, DB: info.DB, Start: after, From: after, To: to, Final: true, Changes: changes}
		if err := a.Apply(ctx, b, after); err != nil {
			a.Rollback() //nolint:errcheck
			t.Fatal(err)
		}
		if _, err := a.Commit(ctx, Position{DB: info.DB, Log: to, Stream: 1}); err != nil {
			t.Fatal(err)
		}
		after = to
		for _, tbl := range []string{"blobs", "mid", "wr"} {
			want, got := blobSums(t, m, tbl), blobSums(t, st, tbl)
			if want != got {
				t.Errorf("%s after %q: the standby holds %q, the master %q", tbl, q, got, want)
			}
		}
	}
}

// fillPieces reads the chunks of the pieces of changes that come without
// them, a slice of wire.PiecesPerSlice pieces at a time, as the piece server
// of the replicator does.
func fillPieces(t *testing.T, s *SQLite, db string, changes []wire.Change) []wire.Change {
	t.Helper()
	var slice string
	sliceOf := uint64(0)
	first := -1
	for i := range changes {
		c := &changes[i]
		if c.Fetch == 0 {
			continue
		}
		if start := c.Piece / wire.PiecesPerSlice * wire.PiecesPerSlice; sliceOf != c.Seq || start != first {
			var err error
			if slice, err = s.ReadPiece(context.Background(), wire.PieceOf("p", db, *c), start*wire.PieceSize, wire.PiecesPerSlice*wire.PieceSize); err != nil {
				t.Fatal(err)
			}
			sliceOf, first = c.Seq, start
		}
		off := (c.Piece - first) * wire.PieceSize
		c.Chunk, c.Fetch = slice[off:off+c.Fetch], 0
	}
	return changes
}

// blobSums lists the length, SHA-256 and type of each b of tbl.
func blobSums(t *testing.T, s *SQLite, tbl string) string {
	t.Helper()
	rows, err := s.r.Query(`SELECT typeof(b), b FROM ` + tbl + ` ORDER BY b`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var typ string
		var b []byte
		if err := rows.Scan(&typ, &b); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d:%x:%s", len(b), sha256.Sum256(b), typ))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

package store_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/services/replicator/internal/store"
)

// A large row is hashed column by column, its large values in slices,
// instead of as one image: its hash must be the image's, byte for byte,
// whatever the values hold (R7) — blobs and text of several slices, text
// with quotes, backslashes, control characters, non-ASCII and NUL, and a
// row large only by the sum of its values. The sizes are small (a row is
// large above 16 KiB, a slice 64 KiB) so that the test runs fast with
// -race; TANDEM_LARGE_ROWS=1 runs it at the product's sizes (1 MiB, 4 MiB)
// with values of 5–9 MiB.
func TestRowSumsOfLargeRows(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	app, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := app.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`CREATE TABLE big(id INTEGER PRIMARY KEY, b BLOB, t TEXT, u TEXT, n)`)
	unit, blob := 1<<10, 150000 // odd: 17 KiB
	if os.Getenv("TANDEM_LARGE_ROWS") == "1" {
		unit, blob = 1<<16, 9437184
	}
	odd := strings.Repeat("a'b\"c\\d\x01\x1f\te\u00e9\u2028\n", unit) // escapes everywhere
	exec(`INSERT INTO big VALUES(1, randomblob(?), 'small', NULL, 42)`, blob)
	exec(`INSERT INTO big VALUES(2, NULL, ?, 'x''y', 1.5)`, strings.Repeat(odd, 5))
	exec(`INSERT INTO big VALUES(3, X'00', ?, NULL, -0.0)`, strings.Repeat(odd, 4)+"\x00"+odd)
	exec(`INSERT INTO big VALUES(4, X'0102', 'a row of the ordinary size', NULL, 9223372036854775807)`)
	exec(`INSERT INTO big VALUES(5, randomblob(?), ?, ?, NULL)`, len(odd)/2, odd[:len(odd)*2/3], odd[1:len(odd)*2/3+1])
	// Blobs are read by incremental blob I/O, but where a table has no rowid.
	exec(`CREATE TABLE bigw(id INTEGER PRIMARY KEY, b BLOB) WITHOUT ROWID`)
	exec(`INSERT INTO bigw VALUES(1, randomblob(?))`, blob)
	s, err := store.OpenSQLite(ctx, path, store.Master, []string{"big", "bigw"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if unit == 1<<10 {
		store.SetRowSizes(s, 16<<10, 64<<10)
	}

	for _, tbl := range []string{"big", "bigw"} {
		checkRowSums(t, app, s, tbl)
	}
}

// checkRowSums compares each row sum of tbl with the hash of its image.
func checkRowSums(t *testing.T, app *sql.DB, s *store.SQLite, tbl string) {
	t.Helper()
	want := map[string]string{}
	rows, err := app.Query(store.RowImages(s, tbl))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var pk, img string
		if err := rows.Scan(&pk, &img); err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256([]byte(tbl + "\x00" + pk + "\x00" + img))
		want[pk] = fmt.Sprintf("%x", h[:8])
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := s.RowSums(context.Background(), tbl, 1, []int{0}, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d row sums, want %d: %v", len(got), len(want), got)
	}
	for _, r := range got {
		if want[r.PK] != r.Hash {
			t.Errorf("%s row %s: hash %s, its image's is %s", tbl, r.PK, r.Hash, want[r.PK])
		}
	}
}

package store_test

import (
	"context"
	"database/sql"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/store/storetest"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

func sqliteHarness() storetest.Harness {
	return storetest.Harness{Open: func(t *testing.T, dir string, side store.Side, setup, tables []string) (storetest.DB, error) {
		path := filepath.Join(dir, "app.db")
		app, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { app.Close() })
		for _, q := range setup {
			if _, err := app.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		s, err := store.OpenSQLite(context.Background(), path, side, tables)
		if err != nil {
			return storetest.DB{}, err
		}
		return storetest.DB{
			Store: s,
			Exec: func(t *testing.T, q string, args ...any) {
				t.Helper()
				if _, err := app.Exec(q, args...); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			},
			Query: func(t *testing.T, q string, args ...any) string {
				t.Helper()
				var v sql.NullString
				if err := app.QueryRow(q, args...).Scan(&v); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				return v.String
			},
		}, nil
	}}
}

func TestSQLiteContract(t *testing.T) { storetest.Run(t, sqliteHarness()) }

// The sqlite3 shell, another process with another SQLite build, is captured
// like any writer.
func TestCaptureSQLiteShell(t *testing.T) {
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 shell")
	}
	path := filepath.Join(t.TempDir(), "app.db")
	out, err := exec.Command(bin, path, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s, err := store.OpenSQLite(t.Context(), path, store.Master, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err = exec.Command(bin, "-cmd", ".timeout 5000", path,
		`INSERT INTO t VALUES(1, 0.30000000000000004); UPDATE t SET v = x'01' WHERE id = 1;`).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var rows []string
	if _, err := s.ReadLog(t.Context(), 0, func(c wire.Change) error {
		rows = append(rows, c.Op+" "+c.PK+" "+string(c.Row))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := `i 1 {"id":"1","v":"3.00000000000000044408e-01"}|u 1 {"id":"1","v":"X'01'"}`
	if got := strings.Join(rows, "|"); got != want {
		t.Fatalf("captured %s\nwant     %s", got, want)
	}
}

// R11: a table without a primary key is refused alone, with a reason that
// names it and says what to do; opening the store does not fail.
func TestNoPrimaryKeyRefusedAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	db, _ := sql.Open("sqlite", "file:"+path)
	if _, err := db.Exec(`CREATE TABLE nokey(a, b)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	st, err := store.OpenSQLite(t.Context(), path, store.Master, nil)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer st.Close()
	if why := st.Refused()["nokey"]; !strings.Contains(why, `table "nokey" cannot be replicated`) || !strings.Contains(why, "declare one") {
		t.Fatalf("refused: %v", st.Refused())
	}
}

// R7, R12: verify compares bytes: two rows that differ only after a NUL
// byte, or only in the sign of an infinity, have different checksums.
func TestSumsSeeEveryByte(t *testing.T) {
	for _, pair := range [][2]string{{`'ab' || char(0) || 'c'`, `'ab' || char(0) || 'd'`}, {`9e999`, `-9e999`}, {`0.0`, `-0.0`}} {
		var sums []string
		for _, v := range pair {
			st, _ := openWith(t, `CREATE TABLE t(id INTEGER PRIMARY KEY, v)`, `INSERT INTO t VALUES(1, `+v+`)`)
			s, err := st.Sums(t.Context(), 1)
			if err != nil {
				t.Fatal(err)
			}
			for _, ts := range s {
				if ts.Table == "t" {
					sums = append(sums, ts.Sum)
				}
			}
		}
		if len(sums) != 2 || sums[0] == sums[1] {
			t.Errorf("%s and %s: checksums %v", pair[0], pair[1], sums)
		}
	}
}

func openWith(t *testing.T, setup ...string) (*store.SQLite, *sql.DB) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	app, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	for _, q := range setup {
		if _, err := app.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	st, err := store.OpenSQLite(t.Context(), path, store.Master, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, app
}

// sqliteCore opens SQLite databases for the core contract: the table kv,
// written by the application on its own connection.
func sqliteCore() storetest.CoreHarness {
	return storetest.CoreHarness{Open: func(t *testing.T, side store.Side) storetest.CoreDB {
		h := sqliteHarness()
		db, err := h.Open(t, t.TempDir(), side, []string{`CREATE TABLE kv(k TEXT PRIMARY KEY, v TEXT)`}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Store.Close() })
		return storetest.CoreDB{Store: db.Store, App: sqliteApp{db}}
	}}
}

type sqliteApp struct{ db storetest.DB }

func (a sqliteApp) Put(t *testing.T, key, value string) {
	a.db.Exec(t, `INSERT INTO kv VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v`, key, value)
}

func (a sqliteApp) Delete(t *testing.T, key string) { a.db.Exec(t, `DELETE FROM kv WHERE k = ?`, key) }

func (a sqliteApp) Rows(t *testing.T) map[string]string {
	out := map[string]string{}
	if _, err := a.db.Store.ReadTable(t.Context(), "kv", []string{"k", "v"}, func(v []*string) error {
		out[*v[0]] = *v[1]
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSQLiteCoreContract(t *testing.T) { storetest.RunCore(t, sqliteCore()) }

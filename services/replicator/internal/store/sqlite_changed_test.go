package store_test

import (
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/services/replicator/internal/store"
)

// changedDB is a store on a database with one table, the application's own
// connection to it, and the files' times set an hour back (so they count as
// still at once, without waiting for them to settle).
func changedDB(t *testing.T) (*store.SQLite, *sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	app, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	if _, err := app.Exec(`CREATE TABLE t(id INTEGER PRIMARY KEY, v)`); err != nil {
		t.Fatal(err)
	}
	s, err := store.OpenSQLite(t.Context(), path, store.Master, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	store.SetRecheck(s, time.Hour)
	ageFiles(t, path)
	return s, app, path
}

func ageFiles(t *testing.T, path string) {
	t.Helper()
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{path, path + "-wal"} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
}

func changed(t *testing.T, s *store.SQLite) bool {
	t.Helper()
	c, err := s.Changed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An idle database is polled without SQL: once the files are still and
// data_version was asked, further polls only stat the files.
func TestChangedIdleRunsNoSQL(t *testing.T) {
	s, _, _ := changedDB(t)
	changed(t, s) // the first poll asks
	changed(t, s)
	before := store.DataVersionQueries(s)
	for range 100 {
		if changed(t, s) {
			t.Fatal("changed without a commit")
		}
	}
	if n := store.DataVersionQueries(s) - before; n != 0 {
		t.Fatalf("100 idle polls asked data_version %d times, want 0", n)
	}
}

// Every commit of another connection is noticed by the next poll, also
// right after a checkpoint restarted the WAL from its start (same size,
// possibly the same time), and also by the sqlite3 shell.
func TestChangedNoticesEveryCommit(t *testing.T) {
	s, app, path := changedDB(t)
	changed(t, s)
	changed(t, s)
	run := func(q string, args ...any) {
		t.Helper()
		if _, err := app.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for i := range 50 {
		ageFiles(t, path)
		if changed(t, s) { // stamps the aged files
			t.Fatalf("changed before commit %d", i)
		}
		run(`INSERT INTO t VALUES(?, ?)`, i, i)
		if !changed(t, s) {
			t.Fatalf("commit %d not noticed", i)
		}
		if changed(t, s) {
			t.Fatalf("commit %d noticed twice", i)
		}
	}
	for i := range 5 {
		run(`PRAGMA wal_checkpoint(RESTART)`)
		changed(t, s) // a checkpoint is no commit, but may be reported
		ageFiles(t, path)
		changed(t, s) // the aged files are stamped
		run(`UPDATE t SET v = v + 1 WHERE id = ?`, i)
		if !changed(t, s) {
			t.Fatalf("commit after checkpoint %d not noticed", i)
		}
	}
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Log("no sqlite3 shell: its commit is not tried")
		return
	}
	ageFiles(t, path)
	changed(t, s)
	out, err := exec.Command(bin, "-cmd", ".timeout 5000", path, `INSERT INTO t VALUES(1000, 'shell')`).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !changed(t, s) {
		t.Fatal("the sqlite3 shell's commit not noticed")
	}
}

// Files written within the settle time are not trusted to be still: a
// commit may have written the WAL and not yet be visible. And data_version
// is asked at least every recheck interval whatever the files say.
func TestChangedAsksWhileFilesSettleAndOnRecheck(t *testing.T) {
	s, app, _ := changedDB(t)
	changed(t, s)
	if _, err := app.Exec(`INSERT INTO t VALUES(1, 1)`); err != nil {
		t.Fatal(err)
	}
	if !changed(t, s) {
		t.Fatal("commit not noticed")
	}
	before := store.DataVersionQueries(s)
	changed(t, s)
	changed(t, s)
	if n := store.DataVersionQueries(s) - before; n != 2 {
		t.Fatalf("polls right after a commit asked data_version %d times, want 2", n)
	}
	s2, _, _ := changedDB(t)
	store.SetRecheck(s2, 0)
	changed(t, s2)
	before = store.DataVersionQueries(s2)
	changed(t, s2)
	changed(t, s2)
	if n := store.DataVersionQueries(s2) - before; n != 2 {
		t.Fatalf("with recheck 0, two polls asked data_version %d times, want 2", n)
	}
}

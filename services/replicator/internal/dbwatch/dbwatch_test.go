//go:build linux

package dbwatch

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"
	_ "modernc.org/sqlite"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// waitLimit bounds every wait for a signal (never a measure of speed).
const waitLimit = 30 * time.Second

func open(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)`); err != nil {
		t.Fatal(err)
	}
	return db
}

// watched is a database in a directory of its own, with a table, and a
// Watcher of it (closed at the end of the test).
func watched(t *testing.T) (dir, path string, db *sql.DB, w *Watcher) {
	t.Helper()
	dir = t.TempDir()
	path = filepath.Join(dir, "app.db")
	db = open(t, path)
	w, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return dir, path, db, w
}

// waitSignal waits (bounded) for a signal after what.
func waitSignal(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case <-w.C():
	case <-time.After(waitLimit):
		t.Fatalf("%s: no signal within %v", what, waitLimit)
	}
}

// drain takes a pending signal (writes until C is read are one signal).
func drain(w *Watcher) {
	select {
	case <-w.C():
	default:
	}
}

// A commit by another connection signals C; so does a database replaced
// by a file moved over it (a restore).
func TestCommitSignals(t *testing.T) {
	dir, path, db, w := watched(t)
	for i := range 3 {
		drain(w)
		if _, err := db.Exec(`INSERT INTO t(v) VALUES (?)`, "x"); err != nil {
			t.Fatal(err)
		}
		waitSignal(t, w, fmt.Sprintf("commit %d", i+1))
	}
	drain(w)
	if err := os.WriteFile(filepath.Join(dir, "restored"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(dir, "restored"), path+"-journal"); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, w, "a journal moved into place")
}

// Files other than the database's, and reads, do not signal: a shipper that
// only polls does not wake itself.
func TestOtherFilesAndReadsDoNotSignal(t *testing.T) {
	dir, _, db, w := watched(t)
	drain(w)
	if err := os.WriteFile(filepath.Join(dir, "other.db"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	var n int
	for range 10 {
		if err := db.QueryRow(`SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-w.C():
		t.Fatal("a signal after another file was written and the database only read")
	case <-time.After(300 * time.Millisecond):
	}
	// The watcher is alive: a commit signals.
	if _, err := db.Exec(`INSERT INTO t(v) VALUES ('y')`); err != nil {
		t.Fatal(err)
	}
	waitSignal(t, w, "a commit")
}

// Close ends the watching: C is closed.
func TestCloseClosesC(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	open(t, path)
	w, err := New(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(waitLimit)
	for {
		select {
		case _, ok := <-w.C():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("C still open after Close")
		}
	}
}

// A directory that does not exist is an error, not a watcher that never
// signals.
func TestMissingDirectory(t *testing.T) {
	if w, err := New(filepath.Join(t.TempDir(), "gone", "app.db")); err == nil {
		w.Close()
		t.Fatal("no error for a database in a missing directory")
	}
}

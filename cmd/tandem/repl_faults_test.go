package main

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/proctest"
)

// TestReplicationFaultSchedule runs two real tandem node processes through
// the faults an operator's databases meet, with the application writing on
// both nodes throughout and every acknowledged write recorded: the first
// start with the table on the master only, kill -9 of either node, the
// master's database replaced by an empty one, the master's database
// restored from an older copy, the standby's database deleted, pause and
// resume across a restart, and ALTER TABLE … ADD COLUMN during writes. At the
// end every acknowledged write is on both nodes (or in both conflict
// tables), `tandem repl verify` is clean, the standby took a bounded number
// of snapshots, and no two nodes were ever active in one epoch.
func TestReplicationFaultSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	dir := t.TempDir()
	db := map[string]string{master: filepath.Join(dir, master+".db"), standby: filepath.Join(dir, standby+".db")}
	f := &faultApp{t: t, db: db, acked: map[int]string{}}
	f.sql(master, `CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT)`)
	for i := 1; i <= 100; i++ {
		f.write(master, i)
	}
	p, _ := proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit,
		Extra: func(n string) map[string]any { return map[string]any{"database.path": db[n]} },
	})
	f.p = p
	stop := f.writeOn(master, standby)
	f.converged("the first start")

	step := func(name string, fault func()) {
		t.Logf("fault: %s", name)
		fault()
		f.converged(name)
	}
	step("kill -9 of the master", func() {
		p.Kill9(master)
		time.Sleep(300 * time.Millisecond) // writes go on on both files
		p.Restart(master)
	})
	step("kill -9 of the standby", func() {
		p.Kill9(standby)
		time.Sleep(300 * time.Millisecond)
		p.Restart(standby)
	})
	step("SIGSTOP of the master past the heartbeat timeout, then SIGCONT", func() {
		mark := p.Watch().Mark()
		p.Stop(master)
		p.AwaitBeat(mark, waitLimit, proctest.Match{Node: standby, State: "active"})
		time.Sleep(300 * time.Millisecond) // both take writes: the master's wait in its file
		p.Cont(master)
		p.WaitStable(master, waitLimit)
	})
	step("the master's database replaced by an empty one", func() {
		f.pause(func() {
			p.Kill9(master)
			f.remove(master)
			f.sql(master, `CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT)`)
		})
		p.Restart(master)
	})
	backup := filepath.Join(dir, "backup.db")
	f.sql(master, `VACUUM INTO '`+backup+`'`)
	time.Sleep(500 * time.Millisecond) // writes after the backup, on both
	f.converged("writes after the backup")
	step("the master's database restored from the older copy", func() {
		f.pause(func() {
			p.Kill9(master)
			f.remove(master)
			if err := os.Rename(backup, db[master]); err != nil {
				t.Fatal(err)
			}
		})
		p.Restart(master)
	})
	step("the standby's database deleted", func() {
		f.pause(func() {
			p.Kill9(standby)
			f.remove(standby)
		})
		p.Restart(standby)
	})
	step("pause, a restart of the standby, resume", func() {
		f.cli("repl", "pause", "--pair", "p1")
		time.Sleep(300 * time.Millisecond)
		p.Term(standby)
		p.Restart(standby)
		f.cli("repl", "resume", "--pair", "p1")
	})
	step("ALTER TABLE … ADD COLUMN during writes", func() {
		f.sql(master, `ALTER TABLE items ADD COLUMN note TEXT DEFAULT 'none'`)
		f.sql(master, `UPDATE items SET note = 'after the alter' WHERE id = 1`)
	})
	stop()
	f.converged("the end")
	f.checkAcked()
	log, _ := os.ReadFile(p.Node(standby).LogPath)
	if n := strings.Count(string(log), "re-synced from the master's snapshot"); n > 12 {
		t.Errorf("the standby took %d snapshots for 5 faults that need one: a resync loop", n)
	}
	checkInvariants(t, p)
}

// faultApp is the application of the fault schedule: it writes on both
// nodes' databases and records every write that committed.
type faultApp struct {
	t  *testing.T
	p  *proctest.Pair
	db map[string]string

	mu    sync.Mutex // guards acked and next; held while a database file is replaced
	acked map[int]string
	next  int
}

func (f *faultApp) open(node string) *sql.DB {
	d, err := sql.Open("sqlite", "file:"+f.db[node]+"?_pragma=busy_timeout(10000)")
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *faultApp) sql(node, q string) {
	f.t.Helper()
	d := f.open(node)
	defer d.Close()
	if _, err := d.Exec(q); err != nil {
		f.t.Fatalf("%s: %s: %v", node, q, err)
	}
}

// write writes row id on node and records it once committed.
func (f *faultApp) write(node string, id int) {
	d := f.open(node)
	defer d.Close()
	v := fmt.Sprintf("%s-%d", node, id)
	if _, err := d.Exec(`INSERT INTO items(id, v) VALUES(?, ?) ON CONFLICT(id) DO UPDATE SET v = excluded.v`, id, v); err == nil {
		f.acked[id] = v
	}
}

// writeOn writes a new row on each node in turn every 20 ms until stopped.
func (f *faultApp) writeOn(nodes ...string) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	f.next = 1000
	go func() {
		defer close(ended)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
			f.mu.Lock()
			f.next++
			f.write(nodes[i%len(nodes)], f.next)
			f.mu.Unlock()
		}
	}()
	return func() { close(done); <-ended }
}

// pause runs fn with the writer held once both databases are equal: a
// database file is about to be lost, and a write that never left it would
// be lost with it (rightly: the disk is gone).
func (f *faultApp) pause(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verify("before a database is lost")
	fn()
}

func (f *faultApp) remove(node string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(f.db[node] + suffix)
	}
}

func (f *faultApp) cli(args ...string) {
	f.t.Helper()
	r := f.p.CLI(append(args, "--server", f.p.Servers())...)
	if r.Code != 0 {
		f.t.Fatalf("tandem %s: exit %d: %s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
}

// converged waits until tandem repl verify is clean, with the writer held.
func (f *faultApp) converged(after string) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verify(after)
}

// verify waits until tandem repl verify is clean; the caller holds mu.
func (f *faultApp) verify(after string) {
	f.t.Helper()
	deadline := time.Now().Add(3 * waitLimit)
	for {
		r := f.p.CLI("repl", "verify", "--pair", "p1", "--attempts", "1", "--server", f.p.Servers())
		if r.Code == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("after %s: the databases did not converge: %s%s\n(their copies are kept in %s)", after, r.Stdout, r.Stderr, f.keep())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// checkAcked: every acknowledged write is on both nodes, or its value is
// in both nodes' conflict tables.
func (f *faultApp) checkAcked() {
	f.t.Helper()
	for _, node := range []string{master, standby} {
		d := f.open(node)
		missing := 0
		for id, v := range f.acked {
			var got sql.NullString
			d.QueryRow(`SELECT v FROM items WHERE id = ?`, id).Scan(&got) //nolint:errcheck
			if got.String == v {
				continue
			}
			var n int
			d.QueryRow(`SELECT count(*) FROM _tandem_conflict WHERE tbl = 'items' AND loser_row LIKE ?`, "%"+v+"%").Scan(&n) //nolint:errcheck
			if n == 0 {
				missing++
				if missing <= 5 {
					f.t.Errorf("%s: acknowledged write %d = %q is neither there (%q) nor in the conflict table", node, id, v, got.String)
				}
			}
		}
		d.Close()
		if missing > 0 {
			f.t.Errorf("%s: %d of %d acknowledged writes lost", node, missing, len(f.acked))
		}
	}
}

// keep copies both databases (with their WAL) where a failed run can be
// inspected, and returns the folder.
func (f *faultApp) keep() string {
	dir, err := os.MkdirTemp("", "tandem-fault-dbs-")
	if err != nil {
		return err.Error()
	}
	for _, node := range []string{master, standby} {
		for _, suffix := range []string{"", "-wal"} {
			if b, err := os.ReadFile(f.db[node] + suffix); err == nil {
				_ = os.WriteFile(filepath.Join(dir, node+".db"+suffix), b, 0o644)
			}
		}
	}
	return dir
}

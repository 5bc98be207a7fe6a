package replicator_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// R1: the normal first install — the application's table exists on the
// master only, the standby's database does not exist yet. The standby takes
// the master's snapshot (tables, indexes, rows) and then follows it.
func TestFirstStartTableOnMasterOnly(t *testing.T) {
	w := newWorld(t)
	b := w.nodes["b"]
	b.app.Close()
	os.Remove(b.path)
	w.exec("a", `CREATE INDEX items_name ON items(name)`)
	for i := 1; i <= 500; i++ {
		w.exec("a", `INSERT INTO items VALUES(?, ?, ?)`, i, fmt.Sprintf("before %d", i), i)
	}
	w.start("a")
	w.start("b")
	w.waitSynced()
	w.openApp("b")
	for i := 501; i <= 1000; i++ {
		w.exec("a", `INSERT INTO items VALUES(?, ?, ?)`, i, fmt.Sprintf("after %d", i), i)
	}
	w.waitFor("1000 rows on b", func() bool { return rowCount(w, "b", "items") == 1000 })
	if got := w.query("b", `SELECT count(*) FROM sqlite_schema WHERE name = 'items_name'`); got != "1" {
		t.Fatalf("the master's index is missing on b")
	}
	w.exec("b", `UPDATE items SET name = 'from b' WHERE id = 7`)
	w.waitFor("b's change on a", func() bool { return w.query("a", `SELECT name FROM items WHERE id = 7`) == "from b" })
	w.waitConverged()
}

// R1, R11: a table only the standby has at the first start (it was
// installed first) is offered to the master with its index and rows, and
// then replicates both ways.
func TestFirstStartTableOnStandbyOnly(t *testing.T) {
	w := newWorld(t)
	w.exec("b", `CREATE TABLE local(id INTEGER PRIMARY KEY, v TEXT)`)
	w.exec("b", `CREATE INDEX local_v ON local(v)`)
	for i := 1; i <= 50; i++ {
		w.exec("b", `INSERT INTO local VALUES(?, 'standby')`, i)
	}
	w.start("a")
	w.start("b")
	w.waitSynced()
	w.waitFor("the standby's table and rows on a", func() bool {
		return w.query("a", `SELECT count(*) FROM sqlite_schema WHERE name IN ('local', 'local_v')`) == "2" && rowCount(w, "a", "local") == 50
	})
	w.exec("a", `INSERT INTO local VALUES(100, 'master')`)
	w.waitFor("the master's row on b", func() bool { return rowCount(w, "b", "local") == 51 })
	w.waitConverged()
}

// R10: the master's database is lost (disk replaced) while the standby took
// writes. The master returns with an empty database and takes new writes;
// nothing written on either side is lost, and the standby does not re-sync
// in a loop.
func TestMasterDatabaseLost(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	for i := 1; i <= 10; i++ {
		w.write("a", i, "a before", a)
		w.write("b", 100+i, "b before", a)
	}
	w.waitConverged()
	w.stop("a")
	for i := 200; i < 210; i++ {
		w.write("b", i, "b while a is down", a)
	}
	replaceDatabase(w, "a", "")
	w.exec("a", schema)
	w.write("a", 300, "a on its new disk", a)
	w.start("a")
	w.write("a", 301, "a after its start", a)
	w.waitFor("rows of both sides on a", func() bool { return rowCount(w, "a", "items") == len(a) })
	w.waitConverged()
	w.write("b", 400, "b afterwards", a)
	w.write("a", 401, "a afterwards", a)
	w.waitFor("both later rows", func() bool { return rowCount(w, "a", "items") == len(a) && rowCount(w, "b", "items") == len(a) })
	w.checkAcked(a)
	checkSnapshots(t, w, 3)
}

// R10: the master's database is restored from an older backup. The
// standby's writes and those made before and after the backup all survive.
func TestMasterRestoredFromBackup(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	for i := 1; i <= 4; i++ {
		w.write("a", i, "a early", a)
	}
	w.waitConverged()
	backup := w.nodes["a"].path + ".bak"
	w.exec("a", `VACUUM INTO '`+backup+`'`)
	for i := 5; i <= 10; i++ {
		w.write("a", i, "a after the backup", a)
		w.write("b", 100+i, "b after the backup", a)
	}
	w.write("a", 2, "a changed after the backup", a)
	w.waitConverged()
	w.stop("a")
	w.write("b", 3, "b while a is down", a)
	replaceDatabase(w, "a", backup)
	w.write("a", 500, "a after the restore", a)
	w.start("a")
	w.write("a", 501, "a after its start", a)
	w.waitFor("every row on a", func() bool { return rowCount(w, "a", "items") == len(a) })
	w.waitConverged()
	w.checkAcked(a)
	checkSnapshots(t, w, 3)
}

// replaceDatabase swaps node's database file for src (a backup), or for a
// new empty database when src is "", as an operator replacing a disk does.
func replaceDatabase(w *world, node, src string) {
	w.t.Helper()
	n := w.nodes[node]
	n.app.Close()
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(n.path + suffix)
	}
	if src != "" {
		if err := os.Rename(src, n.path); err != nil {
			w.t.Fatal(err)
		}
	}
	w.openApp(node)
}

// checkSnapshots fails when the standby took more than limit snapshots: a
// resync loop.
func checkSnapshots(t *testing.T, w *world, limit int) {
	t.Helper()
	if n := w.nodes["b"].sink.Count(event.ReplSnapshot); n > limit*3 {
		t.Fatalf("%d snapshot events on b: a resync loop", n)
	}
}

// R11: a table without a primary key is refused alone, on both nodes: the
// replicator runs, says which table and why (status, event), and every
// other table replicates.
func TestTableWithoutKeyRefusedAlone(t *testing.T) {
	w := newWorld(t)
	for _, n := range []string{"a", "b"} {
		w.exec(n, `CREATE TABLE nokey(a, b)`)
	}
	w.start("a")
	w.start("b")
	w.waitSynced()
	st := w.nodes["a"].svc.Status()
	if why := st.Refused["nokey"]; !strings.Contains(why, "no primary key") {
		t.Fatalf("status of a: refused %v", st.Refused)
	}
	if _, ok := w.nodes["a"].sink.Find(event.ReplRefused, "nokey"); !ok {
		t.Fatal("no tandem.repl.refused event naming the table")
	}
	w.exec("a", `INSERT INTO nokey VALUES(1, 2)`)
	w.exec("a", `INSERT INTO items VALUES(1, 'replicated', 1)`)
	w.waitFor("items on b", func() bool { return w.items("b") == "1:replicated:1" })
	if n := rowCount(w, "b", "nokey"); n != 0 {
		t.Fatalf("%d rows of the refused table on b", n)
	}
}

// Truthful status: on an idle, converged pair LAG is 0 (not the lag of the
// last apply, frozen) and no change is unacknowledged, also after a restart.
func TestStatusTruthfulWhenIdle(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	for i := 1; i <= 20; i++ {
		w.write("a", i, "a", a)
		w.write("b", 100+i, "b", a)
	}
	w.waitConverged()
	idle := func() bool {
		for _, n := range []string{"a", "b"} {
			st := w.nodes[n].svc.Status()
			if st.In.LagMS != 0 || st.Unacked != 0 {
				return false
			}
		}
		return true
	}
	w.waitFor("no lag and nothing unacknowledged", idle)
	w.stop("b")
	w.start("b")
	w.waitFor("b running again", func() bool { return w.nodes["b"].svc.Status().State == "running" })
	w.waitFor("no lag and nothing unacknowledged after b's restart", idle)
	w.checkAcked(a)
}

// The standby's whole data directory is lost (a reinstall): a new database
// and a new batch stream, whose sequences start again at 1, below the
// master's position in the old one. The master sees the stream was
// recreated and reads it from the start: the standby's writes after the
// reinstall arrive (before, every batch of the new stream looked already
// applied until it passed the old sequence).
func TestStandbyDataDirectoryLost(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	w.write("a", 1, "a before", a)
	for i := 1; i <= 10; i++ {
		w.write("b", 100+i, "b before", a)
		w.waitFor("b's row on a", func() bool { return rowCount(w, "a", "items") == len(a) })
	}
	w.stop("b")
	srv := w.pair.Server("b")
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	if err := js.DeleteStream(t.Context(), subject.ReplStream(pairName, "b")); err != nil {
		t.Fatal(err)
	}
	replaceDatabase(w, "b", "")
	w.exec("b", schema)
	w.start("b")
	w.waitSynced()
	w.write("b", 200, "b after its reinstall", a)
	w.waitFor("b's write after its reinstall on a", func() bool { return rowCount(w, "a", "items") == len(a) })
	w.waitConverged()
	w.checkAcked(a)
}

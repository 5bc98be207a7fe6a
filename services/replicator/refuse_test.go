package replicator_test

import (
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/event"
)

// R1, R11: at the first start both nodes hold table odd with incompatible
// schemas (another primary key; a column whose type differs). That table
// alone is refused on the standby — status, event, metric — and everything
// else reconciles and replicates both ways; the master's changes to the
// refused table are skipped, not a reason to block. When the operator fixes
// the standby's schema, the table is compared again by itself and picked
// up: its rows are merged and it replicates. A column only the master's
// table has is added on the standby instead.
func TestIncompatibleSchemaRefusedAlone(t *testing.T) {
	w := newWorld(t)
	w.exec("a", `CREATE TABLE odd(id INTEGER PRIMARY KEY, v TEXT)`)
	w.exec("a", `CREATE TABLE typed(id INTEGER PRIMARY KEY, n INTEGER)`)
	w.exec("b", `CREATE TABLE odd(k TEXT PRIMARY KEY, v TEXT)`)
	w.exec("b", `CREATE TABLE typed(id INTEGER PRIMARY KEY, n BLOB)`)
	// A column only the master has is added on the standby: not refused.
	w.exec("a", `CREATE TABLE wide(id INTEGER PRIMARY KEY, v TEXT, extra TEXT DEFAULT 'x')`)
	w.exec("b", `CREATE TABLE wide(id INTEGER PRIMARY KEY, v TEXT)`)
	w.exec("a", `INSERT INTO wide VALUES(1, 'master', 'e')`)
	w.exec("b", `INSERT INTO wide VALUES(2, 'standby')`)
	w.exec("a", `INSERT INTO odd VALUES(1, 'master')`)
	w.exec("b", `INSERT INTO odd VALUES('x', 'standby')`)
	w.exec("a", `INSERT INTO items VALUES(1, 'a', 1)`)
	w.exec("b", `INSERT INTO items VALUES(2, 'b', 2)`)
	w.start("a")
	w.start("b")
	w.waitSynced()
	st := w.nodes["b"].svc.Status()
	if why := st.Refused["odd"]; !strings.Contains(why, "primary key (k) here, (id) on the peer") {
		t.Fatalf("odd refused on b: %q (status %s)", why, w.status("b"))
	}
	if why := st.Refused["typed"]; !strings.Contains(why, "column n is BLOB here") {
		t.Fatalf("typed refused on b: %q", why)
	}
	if _, ok := w.nodes["b"].sink.Find(event.ReplRefused, "odd"); !ok {
		t.Fatal("no tandem.repl.refused event naming odd")
	}
	if _, ok := st.Refused["wide"]; ok {
		t.Fatalf("wide refused: %v", st.Refused)
	}
	wideRows := `SELECT group_concat(id || ':' || v || ':' || extra, ',') FROM (SELECT * FROM wide ORDER BY id)`
	w.waitFor("wide equal on both", func() bool {
		return w.query("a", wideRows) == "1:master:e,2:standby:x" && w.query("b", wideRows) == "1:master:e,2:standby:x"
	})
	if got := metricValue(t, w.nodes["b"], "tandem_repl_tables_refused"); got != 2 {
		t.Fatalf("tandem_repl_tables_refused %v, want 2", got)
	}
	w.waitFor("items on both", func() bool { return w.items("a") == "1:a:1,2:b:2" && w.items("b") == "1:a:1,2:b:2" })
	// The master's changes to the refused table do not block the others.
	w.exec("a", `INSERT INTO odd VALUES(2, 'master again')`)
	w.exec("a", `INSERT INTO items VALUES(3, 'a', 3)`)
	w.exec("b", `UPDATE odd SET v = 'standby again' WHERE k = 'x'`)
	w.exec("b", `INSERT INTO items VALUES(4, 'b', 4)`)
	w.waitFor("later items on both", func() bool {
		return w.items("a") == "1:a:1,2:b:2,3:a:3,4:b:4" && w.items("b") == "1:a:1,2:b:2,3:a:3,4:b:4"
	})
	if s := w.nodes["b"].svc.Status().State; s != "running" {
		t.Fatalf("b is %s: %s", s, w.status("b"))
	}
	if got := w.query("b", `SELECT group_concat(k || ':' || v) FROM odd`); got != "x:standby again" {
		t.Fatalf("the refused table changed on b: %s", got)
	}
	// The operator fixes the standby's schema: odd is compared again and
	// picked up (the standby's row under the new key kept, the master's
	// taken); typed stays refused.
	w.exec("b", `DROP TABLE odd`)
	w.exec("b", `CREATE TABLE odd(id INTEGER PRIMARY KEY, v TEXT)`)
	w.exec("b", `INSERT INTO odd VALUES(9, 'standby, fixed')`)
	w.exec("b", `INSERT INTO odd VALUES(1, 'standby, concurrent')`)
	oddRows := `SELECT group_concat(id || ':' || v, ',') FROM (SELECT * FROM odd ORDER BY id)`
	want := "1:master,2:master again,9:standby, fixed"
	w.waitFor("odd picked up on both", func() bool {
		_, refused := w.nodes["b"].svc.Status().Refused["odd"]
		return !refused && w.query("a", oddRows) == want && w.query("b", oddRows) == want
	})
	for _, n := range []string{"a", "b"} {
		w.waitFor("the standby's losing row of odd recorded on "+n, func() bool {
			return w.query(n, `SELECT count(*) FROM _tandem_conflict WHERE tbl = 'odd' AND pk = '1' AND loser_row LIKE '%concurrent%'`) == "1"
		})
	}
	w.exec("a", `INSERT INTO odd VALUES(10, 'replicated')`)
	w.waitFor("odd replicates", func() bool { return rowCount(w, "b", "odd") == 4 })
	if _, ok := w.nodes["b"].svc.Status().Refused["typed"]; !ok {
		t.Fatal("typed no longer refused on b")
	}
	// A restart keeps the refusal.
	w.stop("b")
	w.start("b")
	w.waitFor("b running again", func() bool { return w.nodes["b"].svc.Status().State == "running" })
	if _, ok := w.nodes["b"].svc.Status().Refused["typed"]; !ok {
		t.Fatalf("typed not refused after b's restart: %s", w.status("b"))
	}
	w.exec("a", `INSERT INTO typed VALUES(1, 1)`)
	w.exec("a", `INSERT INTO items VALUES(5, 'a', 5)`)
	w.waitFor("items after the restart", func() bool { return rowCount(w, "b", "items") == 5 })
	if n := rowCount(w, "b", "typed"); n != 0 {
		t.Fatalf("%d rows of the refused table typed on b", n)
	}
}

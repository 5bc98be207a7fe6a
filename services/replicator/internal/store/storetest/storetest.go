// Package storetest holds the contract tests every store.Store adapter runs
// (STYLE §14): capture, echo suppression, apply, conflicts, refusals,
// snapshot and restore, checksums. An adapter's test calls Run with a
// Harness that makes fresh databases.
package storetest

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// DB is one database under test: its store and a way to write to it as the
// application would (another connection, not through the store).
type DB struct {
	Store store.Store
	// Exec runs application SQL on its own connection.
	Exec func(t *testing.T, q string, args ...any)
	// Query returns the first column of the first row of q, as text.
	Query func(t *testing.T, q string, args ...any) string
}

// Harness makes databases for the contract tests.
type Harness struct {
	// Open opens a database in dir (created empty on first use), runs setup
	// as the application, then opens the store for side on tables (nil: all).
	Open func(t *testing.T, dir string, side store.Side, setup []string, tables []string) (DB, error)
}

var setup = []string{
	`CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, price REAL, data BLOB)`,
	`CREATE TABLE IF NOT EXISTS pairs(a TEXT, b INTEGER, v TEXT, PRIMARY KEY(a, b))`,
}

// Run runs every contract test.
func Run(t *testing.T, h Harness) {
	t.Run("capture", func(t *testing.T) { testCapture(t, h) })
	t.Run("apply", func(t *testing.T) { testApply(t, h) })
	t.Run("conflicts", func(t *testing.T) { testConflicts(t, h) })
	t.Run("conflicts of rows in pieces", func(t *testing.T) { testLargeConflicts(t, h) })
	t.Run("refusals", func(t *testing.T) { testRefusals(t, h) })
	t.Run("snapshot", func(t *testing.T) { testSnapshot(t, h) })
	t.Run("discard", func(t *testing.T) { testDiscard(t, h) })
	t.Run("records survive a lost database", func(t *testing.T) { testRecordsSurvive(t, h) })
	t.Run("sums", func(t *testing.T) { testSums(t, h) })
	t.Run("read table", func(t *testing.T) { testReadTable(t, h) })
}

func open(t *testing.T, h Harness, side store.Side) DB {
	t.Helper()
	db, err := h.Open(t, t.TempDir(), side, setup, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Store.Close() })
	return db
}

func ctx(t *testing.T) context.Context { return t.Context() }

// readLog returns every change after seq, the chunks of pieces that come
// without them read (ReadPiece), and the group's end.
func readLog(t *testing.T, db store.LogReader, after uint64) ([]wire.Change, uint64) {
	t.Helper()
	var out []wire.Change
	to, err := db.ReadLog(ctx(t), after, func(c wire.Change) error { out = append(out, c); return nil })
	if err != nil {
		t.Fatal(err)
	}
	info, err := db.Info(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if c := &out[i]; c.Fetch > 0 {
			if c.Chunk, err = db.ReadPiece(ctx(t), wire.PieceOf("p", info.DB, *c), c.Piece*wire.PieceSize, c.Fetch); err != nil {
				t.Fatal(err)
			}
			c.Fetch = 0
		}
	}
	return out, to
}

// ship applies src's changes after seq to dst as one group and returns the
// group's end and the result.
func ship(t *testing.T, src store.LogReader, dst store.Applier, srcName string, fromMaster bool, after uint64) (uint64, store.Result) {
	t.Helper()
	changes, to := readLog(t, src, after)
	info, _ := src.Info(ctx(t))
	b := &wire.Batch{V: wire.Version, Pair: "p", Node: srcName, Master: fromMaster, DB: info.DB, Start: after, From: after, To: to, Final: true, Changes: changes}
	a, err := dst.Begin(ctx(t), srcName, fromMaster)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Apply(ctx(t), b, after); err != nil {
		a.Rollback() //nolint:errcheck
		t.Fatal(err)
	}
	res, err := a.Commit(ctx(t), store.Position{DB: info.DB, Log: to, Stream: 1})
	if err != nil {
		t.Fatal(err)
	}
	return to, res
}

func testCapture(t *testing.T, h Harness) {
	db := open(t, h, store.Master)
	db.Exec(t, `INSERT INTO items(id, name, qty, price, data) VALUES(1, 'it''s', 2, 0.1, x'00ff')`)
	db.Exec(t, `UPDATE items SET qty = 3 WHERE id = 1`)
	db.Exec(t, `UPDATE items SET id = 2 WHERE id = 1`)
	db.Exec(t, `DELETE FROM items WHERE id = 2`)
	changes, to := readLog(t, db.Store, 0)
	want := []struct{ op, pk string }{{"i", "1"}, {"u", "1"}, {"d", "1"}, {"u", "2"}, {"d", "2"}}
	if len(changes) != len(want) || to != changes[len(changes)-1].Seq {
		t.Fatalf("captured %d changes up to %d: %+v", len(changes), to, changes)
	}
	// A row's master counter rises at every change, and never stays below
	// the wall clock in milliseconds (versions survive a restored backup).
	floor := uint64(time.Now().Add(-time.Hour).UnixMilli())
	last := map[string]uint64{}
	for i, w := range want {
		c := changes[i]
		if c.Op != w.op || c.PK != w.pk || c.S != 0 || c.M <= last[c.PK] || c.M < floor || c.Table != "items" {
			t.Errorf("change %d: %s %s %d/%d, want %s %s with a rising master counter", i, c.Op, c.PK, c.M, c.S, w.op, w.pk)
		}
		last[c.PK] = c.M
	}
	cols, vals, err := changes[0].Columns()
	if err != nil || len(cols) != 5 {
		t.Fatalf("row %s: %v", changes[0].Row, err)
	}
	if vals[2] != "it's" || vals[3] != 0.1 || string(vals[0].([]byte)) != "\x00\xff" {
		t.Fatalf("values %#v (cols %v)", vals, cols)
	}
	if err := db.Store.Prune(ctx(t), to); err != nil {
		t.Fatal(err)
	}
	if rest, _ := readLog(t, db.Store, 0); len(rest) != 0 {
		t.Fatalf("%d changes after prune", len(rest))
	}
	if info, _ := db.Store.Info(ctx(t)); info.LogHigh != to {
		t.Fatalf("log high %d after prune, want %d", info.LogHigh, to)
	}
}

func testApply(t *testing.T, h Harness) {
	a, b := open(t, h, store.Master), open(t, h, store.Standby)
	a.Exec(t, `INSERT INTO items(id, name, qty) VALUES(1, 'one', 1), (2, 'two', 2)`)
	a.Exec(t, `INSERT INTO pairs VALUES('x', 1, 'v')`)
	a.Exec(t, `DELETE FROM items WHERE id = 2`)
	to, res := ship(t, a.Store, b.Store, "a", true, 0)
	if res.Applied != 4 || len(res.Conflicts) != 0 {
		t.Fatalf("result %+v", res)
	}
	if got := b.Query(t, `SELECT group_concat(id || name, ',') FROM items`); got != "1one" {
		t.Fatalf("items on b: %q", got)
	}
	if got := b.Query(t, `SELECT v FROM pairs WHERE a = 'x' AND b = 1`); got != "v" {
		t.Fatalf("pairs on b: %q", got)
	}
	if echo, _ := readLog(t, b.Store, 0); len(echo) != 0 {
		t.Fatalf("applied changes were captured again: %+v", echo)
	}
	p, ok, err := b.Store.Position(ctx(t), "a")
	if err != nil || !ok || p.Log != to {
		t.Fatalf("position %+v %v %v, want log %d", p, ok, err, to)
	}
	// b's own change after the apply follows a's: no conflict on a.
	b.Exec(t, `UPDATE items SET qty = 10 WHERE id = 1`)
	_, res = ship(t, b.Store, a.Store, "b", false, 0)
	if res.Applied != 1 || len(res.Conflicts) != 0 {
		t.Fatalf("result back %+v", res)
	}
	if got := a.Query(t, `SELECT qty FROM items WHERE id = 1`); got != "10" {
		t.Fatalf("qty on a: %q", got)
	}
}

func testConflicts(t *testing.T, h Harness) {
	a, b := open(t, h, store.Master), open(t, h, store.Standby)
	a.Exec(t, `INSERT INTO items(id, name) VALUES(1, 'base'), (2, 'base')`)
	seqA, _ := ship(t, a.Store, b.Store, "a", true, 0)
	// Concurrent: update/update on 1, delete/update on 2, insert/insert on 3.
	a.Exec(t, `UPDATE items SET name = 'master' WHERE id = 1`)
	b.Exec(t, `UPDATE items SET name = 'standby' WHERE id = 1`)
	a.Exec(t, `DELETE FROM items WHERE id = 2`)
	b.Exec(t, `UPDATE items SET name = 'standby' WHERE id = 2`)
	a.Exec(t, `INSERT INTO items(id, name) VALUES(3, 'master')`)
	b.Exec(t, `INSERT INTO items(id, name) VALUES(3, 'standby')`)
	_, resB := ship(t, a.Store, b.Store, "a", true, seqA)
	_, resA := ship(t, b.Store, a.Store, "b", false, 0)
	for _, db := range []DB{a, b} {
		if got := db.Query(t, `SELECT group_concat(id || ':' || name, ',') FROM (SELECT * FROM items ORDER BY id)`); got != "1:master,3:master" {
			t.Fatalf("items: %q", got)
		}
		cs, err := db.Store.Conflicts(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		kinds := map[string]string{}
		for _, c := range cs {
			kinds[c.PK] = c.Kind
			if c.Loser != "standby" {
				t.Errorf("loser %s", c.Loser)
			}
		}
		if kinds["1"] != "update/update" || kinds["2"] != "delete/update" || kinds["3"] != "insert/insert" {
			t.Fatalf("conflicts %+v", cs)
		}
	}
	if len(resA.Conflicts) != 3 || len(resB.Conflicts) != 3 {
		t.Fatalf("conflicts reported: a %d, b %d", len(resA.Conflicts), len(resB.Conflicts))
	}
	sa, _ := a.Store.Sums(ctx(t), 16)
	sb, _ := b.Store.Sums(ctx(t), 16)
	for i := range sa {
		if sa[i].Sum != sb[i].Sum {
			t.Fatalf("table %s differs after the conflicts", sa[i].Table)
		}
	}
	// A later change on the standby is ordered after the conflict.
	b.Exec(t, `UPDATE items SET name = 'later' WHERE id = 1`)
	info, _ := b.Store.Info(ctx(t))
	_, res := ship(t, b.Store, a.Store, "b", false, info.LogHigh-1)
	if res.Applied != 1 || len(res.Conflicts) != 0 {
		t.Fatalf("later change: %+v", res)
	}
}

// testLargeConflicts: rows too large for one message, written on both
// nodes at once, arrive in pieces: the master's wins on both nodes, and the
// standby's losing row is kept byte for byte in both conflict tables (the
// master keeps it from the pieces it received, the standby from its own
// table).
func testLargeConflicts(t *testing.T, h Harness) {
	a, b := open(t, h, store.Master), open(t, h, store.Standby)
	a.Exec(t, `INSERT INTO items(id, name, data) VALUES(1, 'master', randomblob(600000))`)
	b.Exec(t, `INSERT INTO items(id, name, data) VALUES(1, 'standby', randomblob(500000))`)
	winner, loser := a.Query(t, `SELECT hex(data) FROM items`), b.Query(t, `SELECT hex(data) FROM items`)
	ship(t, a.Store, b.Store, "a", true, 0)
	ship(t, b.Store, a.Store, "b", false, 0)
	for _, db := range []DB{a, b} {
		if got := db.Query(t, `SELECT name || ':' || (hex(data) = ?) FROM items WHERE id = 1`, winner); got != "master:1" {
			t.Fatalf("items: %q, want the master's row", got)
		}
		got := db.Query(t, `SELECT count(*) FROM _tandem_conflict WHERE pk = '1' AND instr(loser_row, ?) > 0
			AND instr(loser_row, '"name":"''standby''"') > 0`, `"data":"X'`+loser+`'"`)
		if got != "1" {
			t.Fatalf("%s conflict records hold the standby's losing row, want 1", got)
		}
	}
	sa, _ := a.Store.Sums(ctx(t), 16)
	sb, _ := b.Store.Sums(ctx(t), 16)
	for i := range sa {
		if sa[i].Sum != sb[i].Sum {
			t.Fatalf("table %s differs after the conflict", sa[i].Table)
		}
	}
}

func testRefusals(t *testing.T, h Harness) {
	a := open(t, h, store.Master)
	bad := []wire.Change{
		{Seq: 1, Table: "items", Op: "i", PK: "5", Row: []byte(`{"id":"5"}`), M: 1},
		{Seq: 2, Table: "nosuch", Op: "i", PK: "1", Row: []byte(`{"id":"1"}`), M: 1},
	}
	badCol := []wire.Change{{Seq: 1, Table: "items", Op: "i", PK: "6", Row: []byte(`{"id":"6","nosuch":"1"}`), M: 1}}
	badKey := []wire.Change{{Seq: 1, Table: "pairs", Op: "d", PK: "1", M: 1}}
	for name, cs := range map[string][]wire.Change{"unknown table": bad, "unknown column": badCol, "key shape": badKey} {
		ap, err := a.Store.Begin(ctx(t), "b", false)
		if err != nil {
			t.Fatal(err)
		}
		b := &wire.Batch{V: 1, Pair: "p", Node: "b", DB: "x", From: 0, To: 2, Final: true, Changes: cs}
		err = ap.Apply(ctx(t), b, 0)
		ap.Rollback() //nolint:errcheck
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if name == "unknown table" && !errors.Is(err, store.ErrUnknownTable) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := a.Query(t, `SELECT count(*) FROM items`); got != "0" {
		t.Fatalf("%s rows applied from refused batches", got)
	}
	// R11: a table without a key is refused alone; the others replicate.
	c, err := h.Open(t, t.TempDir(), store.Master, append(slices.Clone(setup), `CREATE TABLE nokey(a, b)`), nil)
	if err != nil {
		t.Fatalf("a table without a key stopped the store: %v", err)
	}
	t.Cleanup(func() { c.Store.Close() })
	if why := c.Store.Refused()["nokey"]; !strings.Contains(why, store.ErrNoPrimaryKey.Error()) {
		t.Fatalf("refused: %v", c.Store.Refused())
	}
	c.Exec(t, `INSERT INTO nokey VALUES(1, 2)`)
	c.Exec(t, `INSERT INTO items(id, name) VALUES(1, 'still captured')`)
	if cs, _ := readLog(t, c.Store, 0); len(cs) != 1 || cs[0].Table != "items" {
		t.Fatalf("captured %+v", cs)
	}
}

func testSnapshot(t *testing.T, h Harness) {
	a, b := open(t, h, store.Master), open(t, h, store.Standby)
	a.Exec(t, `INSERT INTO items(id, name) VALUES(1, 'one'), (2, 'two')`)
	b.Exec(t, `INSERT INTO items(id, name) VALUES(9, 'own'), (2, 'concurrent')`)
	path := filepath.Join(t.TempDir(), "snap.db")
	snap, err := a.Store.Snapshot(ctx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	infoA, _ := a.Store.Info(ctx(t))
	if snap.DB != infoA.DB || snap.Log != infoA.LogHigh {
		t.Fatalf("snapshot %+v, store %+v", snap, infoA)
	}
	a.Exec(t, `INSERT INTO items(id, name) VALUES(3, 'after')`) // not in the snapshot
	before, _ := b.Store.Info(ctx(t))
	rec, err := b.Store.Restore(ctx(t), path, "a", 7)
	if err != nil {
		t.Fatal(err)
	}
	// R10: b's own row 9 is kept and queued for the master; its row 2 was
	// written concurrently with the master's: the master's wins, b's is
	// recorded and queued so that the master records it too.
	after, _ := b.Store.Info(ctx(t))
	if after.DB == before.DB || after.LogRows != 2 || after.DBStart != after.LogHigh-2 || after.Conflicts != 1 {
		t.Fatalf("after restore: %+v (before %+v)", after, before)
	}
	if rec.Taken != 2 || rec.Kept != 1 || len(rec.Conflicts) != 1 || rec.Conflicts[0].PK != "2" {
		t.Fatalf("reconciled: %+v", rec)
	}
	if got := b.Query(t, `SELECT group_concat(id || ':' || name, ',') FROM items`); got != "1:one,2:two,9:own" {
		t.Fatalf("items after restore: %q", got)
	}
	queued, _ := readLog(t, b.Store, after.DBStart)
	if len(queued) != 2 || queued[0].PK != "2" || !strings.Contains(string(queued[0].Row), "concurrent") || queued[1].PK != "9" {
		t.Fatalf("queued for the master: %+v", queued)
	}
	p, _, _ := b.Store.Position(ctx(t), "a")
	if p.DB != snap.DB || p.Log != snap.Log || p.Stream != 7 {
		t.Fatalf("position %+v, snapshot %+v", p, snap)
	}
	// The rest follows from the position: only the change after it.
	_, res := ship(t, a.Store, b.Store, "a", true, 0)
	_ = res
	if got := b.Query(t, `SELECT group_concat(id, ',') FROM items`); got != "1,2,3,9" {
		t.Fatalf("items after catching up: %q", got)
	}
	// Capture on b still works, as the standby's.
	b.Exec(t, `UPDATE items SET name = 'b' WHERE id = 1`)
	cs, _ := readLog(t, b.Store, after.LogHigh)
	if len(cs) != 1 || cs[0].M == 0 || cs[0].S == 0 {
		t.Fatalf("capture after restore: %+v", cs)
	}
}

// R10: Discard makes the standby equal to the master's snapshot; the rows
// it held alone or with a change the master lacks are recorded here (kind
// "discard") and queued as conflict records, which the master records when
// it applies them; a row the standby only lagged behind on is taken.
func testDiscard(t *testing.T, h Harness) {
	a, b := open(t, h, store.Master), open(t, h, store.Standby)
	a.Exec(t, `INSERT INTO items(id, name) VALUES(1, 'one'), (2, 'two'), (3, 'three')`)
	ship(t, a.Store, b.Store, "a", true, 0)
	a.Exec(t, `UPDATE items SET name = 'three, newer' WHERE id = 3`)
	b.Exec(t, `UPDATE items SET name = 'garbage' WHERE id = 1`)
	b.Exec(t, `INSERT INTO items(id, name) VALUES(9, 'b only')`)
	b.Exec(t, `DELETE FROM items WHERE id = 2`)
	path := filepath.Join(t.TempDir(), "snap.db")
	if _, err := a.Store.Snapshot(ctx(t), path); err != nil {
		t.Fatal(err)
	}
	rec, err := b.Store.Discard(ctx(t), path, "a", 5)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Discarded["items"] != 2 || len(rec.Conflicts) != 0 {
		t.Fatalf("discarded: %+v", rec)
	}
	want := "1:one,2:two,3:three, newer"
	if got := b.Query(t, `SELECT group_concat(id || ':' || name, ',') FROM (SELECT * FROM items ORDER BY id)`); got != want {
		t.Fatalf("items after the discard: %q, want %q", got, want)
	}
	recorded := `SELECT group_concat(pk || '/' || kind || '/' || winner || '/' || loser || '/' || loser_row, ' ') FROM (SELECT * FROM _tandem_conflict ORDER BY pk)`
	wantRec := `1/discard/master/standby/{"id":"1","name":"'garbage'","qty":"NULL","price":"NULL","data":"NULL"} ` +
		`9/discard/master/standby/{"id":"9","name":"'b only'","qty":"NULL","price":"NULL","data":"NULL"}`
	if got := b.Query(t, recorded); got != wantRec {
		t.Fatalf("recorded on the standby:\n%s\nwant\n%s", got, wantRec)
	}
	info, _ := b.Store.Info(ctx(t))
	queued, _ := readLog(t, b.Store, info.DBStart)
	if len(queued) != 2 || queued[0].Op != wire.OpConflict || queued[1].Op != wire.OpConflict {
		t.Fatalf("queued: %+v", queued)
	}
	// The master records them too, and its rows do not change.
	_, res := ship(t, b.Store, a.Store, "b", false, info.DBStart)
	if res.Recorded != 2 || res.Applied != 0 {
		t.Fatalf("applied on the master: %+v", res)
	}
	if got := a.Query(t, recorded); got != wantRec {
		t.Fatalf("recorded on the master:\n%s\nwant\n%s", got, wantRec)
	}
	if got := a.Query(t, `SELECT group_concat(id || ':' || name, ',') FROM (SELECT * FROM items ORDER BY id)`); got != want {
		t.Fatalf("the master's items changed: %q", got)
	}
	// Shipped again (a redelivery), they are recorded once.
	ship(t, b.Store, a.Store, "b", false, info.DBStart)
	if got := a.Query(t, `SELECT count(*) FROM _tandem_conflict`); got != "2" {
		t.Fatalf("%s conflict rows on the master after a redelivery", got)
	}
}

// R5, R10: a reconcile leaves both nodes with every conflict record. The
// master's database is lost after a conflict both recorded; the standby
// reconciles with the new, empty master and sends it the record with its
// rows, so the loser survives when the standby's database is lost next.
func testRecordsSurvive(t *testing.T, h Harness) {
	a, b := open(t, h, store.Master), open(t, h, store.Standby)
	a.Exec(t, `INSERT INTO items(id, name) VALUES(1, 'one')`)
	ship(t, a.Store, b.Store, "a", true, 0)
	a.Exec(t, `UPDATE items SET name = 'master wins' WHERE id = 1`)
	b.Exec(t, `UPDATE items SET name = 'standby loses' WHERE id = 1`)
	ship(t, b.Store, a.Store, "b", false, 0)
	ship(t, a.Store, b.Store, "a", true, 0)
	recorded := `SELECT group_concat(pk || ':' || loser_row, ' ') FROM _tandem_conflict`
	want := b.Query(t, recorded)
	if !strings.Contains(want, "standby loses") || a.Query(t, recorded) != want {
		t.Fatalf("recorded: master %q, standby %q", a.Query(t, recorded), want)
	}
	a2 := open(t, h, store.Master) // the master's database lost
	path := filepath.Join(t.TempDir(), "snap.db")
	if _, err := a2.Store.Snapshot(ctx(t), path); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Store.Restore(ctx(t), path, "a", 0); err != nil {
		t.Fatal(err)
	}
	info, _ := b.Store.Info(ctx(t))
	_, res := ship(t, b.Store, a2.Store, "b", false, info.DBStart)
	if res.Recorded != 1 {
		t.Fatalf("records the new master took: %+v", res)
	}
	if got := a2.Query(t, recorded); got != want {
		t.Fatalf("the new master's records %q, want %q", got, want)
	}
	if got := a2.Query(t, `SELECT name FROM items WHERE id = 1`); got != "master wins" {
		t.Fatalf("the new master's row: %q", got)
	}
}

func testSums(t *testing.T, h Harness) {
	a, b := open(t, h, store.Master), open(t, h, store.Standby)
	for _, db := range []DB{a, b} {
		db.Exec(t, `INSERT INTO items(id, name, price) VALUES(1, 'one', 1.5), (2, 'two', 2), (3, 'three', NULL)`)
	}
	b.Exec(t, `UPDATE items SET name = 'TWO' WHERE id = 2`)
	sa, err := a.Store.Sums(ctx(t), 8)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := b.Store.Sums(ctx(t), 8)
	var diff []int
	for i := range sa[1].Buckets {
		if sa[1].Buckets[i] != sb[1].Buckets[i] {
			diff = append(diff, i)
		}
	}
	if sa[1].Table != "items" || sa[1].Sum == sb[1].Sum || len(diff) != 1 || sa[0].Sum != sb[0].Sum {
		t.Fatalf("sums %+v / %+v", sa, sb)
	}
	ra, _ := a.Store.RowSums(ctx(t), "items", 8, diff, 100)
	rb, _ := b.Store.RowSums(ctx(t), "items", 8, diff, 100)
	found := false
	for _, x := range ra {
		for _, y := range rb {
			if x.PK == y.PK && x.Hash != y.Hash && x.PK == "2" {
				found = true
			}
		}
	}
	if !found {
		t.Fatalf("row 2 not named: %+v / %+v", ra, rb)
	}
}

func testReadTable(t *testing.T, h Harness) {
	db := open(t, h, store.Master)
	db.Exec(t, `CREATE TABLE hosts(node TEXT PRIMARY KEY, host TEXT)`)
	db.Exec(t, `INSERT INTO hosts VALUES('b', 'print-b'), ('a', 'print-a'), ('c', NULL), ('d', 42)`)
	var got []string
	found, err := db.Store.ReadTable(ctx(t), "hosts", []string{"node", "host"}, func(v []*string) error {
		h := "NULL"
		if v[1] != nil {
			h = *v[1]
		}
		got = append(got, *v[0]+"="+h)
		return nil
	})
	if err != nil || !found {
		t.Fatalf("found %v, err %v", found, err)
	}
	if want := "a=print-a b=print-b c=NULL d=42"; strings.Join(got, " ") != want {
		t.Fatalf("rows %q, want %q", got, want)
	}
	found, err = db.Store.ReadTable(ctx(t), "nope", []string{"node"}, func([]*string) error { return nil })
	if found || err != nil {
		t.Fatalf("missing table: found %v, err %v", found, err)
	}
	if _, err := db.Store.ReadTable(ctx(t), "hosts", []string{"node", "nope"}, func([]*string) error { return nil }); err == nil {
		t.Fatal("a missing column read without an error")
	}
	stop := errors.New("stop")
	n := 0
	if _, err := db.Store.ReadTable(ctx(t), "hosts", []string{"node"}, func([]*string) error { n++; return stop }); !errors.Is(err, stop) || n != 1 {
		t.Fatalf("stopping early: %v after %d rows", err, n)
	}
}

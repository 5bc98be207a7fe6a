package replicator_test

import (
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/event"
)

// R11: schema changes replicate live. A new table (with its index and the
// rows written before Tandem saw it) and ADD COLUMN (with the values written
// before Tandem saw it) reach the peer, from either side; a change that
// cannot be replicated refuses that table alone, and the rest goes on.
func TestSchemaChangesReplicate(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	w.exec("a", `INSERT INTO items VALUES(1, 'one', 1)`)

	w.exec("a", `CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT)`)
	w.exec("a", `CREATE INDEX notes_body ON notes(body)`)
	w.exec("a", `INSERT INTO notes VALUES(1, 'written at once')`)
	w.waitFor("the new table and its row on b", func() bool {
		return w.query("b", `SELECT count(*) FROM sqlite_schema WHERE name = 'notes'`) == "1" && rowCount(w, "b", "notes") == 1
	})
	if got := w.query("b", `SELECT count(*) FROM sqlite_schema WHERE name = 'notes_body'`); got != "1" {
		t.Fatal("the new index is missing on b")
	}
	w.exec("b", `INSERT INTO notes VALUES(2, 'from b')`)
	w.waitFor("b's row of the new table on a", func() bool { return rowCount(w, "a", "notes") == 2 })

	w.exec("b", `ALTER TABLE items ADD COLUMN colour TEXT DEFAULT 'none'`)
	w.exec("b", `UPDATE items SET colour = 'red' WHERE id = 1`)
	w.exec("b", `INSERT INTO items VALUES(2, 'two', 2, 'blue')`)
	colours := `SELECT coalesce((SELECT group_concat(id || ':' || colour, ',') FROM (SELECT * FROM items ORDER BY id)), '')`
	w.waitFor("the new column and its values on a", func() bool {
		return w.query("a", `SELECT count(*) FROM pragma_table_info('items') WHERE name = 'colour'`) == "1" &&
			w.query("a", colours) == "1:red,2:blue"
	})
	w.exec("a", `INSERT INTO items VALUES(3, 'three', 3, 'green')`)
	w.waitFor("a's value of the new column on b", func() bool { return w.query("b", colours) == "1:red,2:blue,3:green" })
	w.waitConverged()
	for _, n := range []string{"a", "b"} {
		if c := w.nodes[n].sink.Count(event.ReplConflict); c != 0 {
			t.Fatalf("%s: %d conflicts from schema changes", n, c)
		}
	}

	// DROP COLUMN cannot be replicated safely: SQLite itself refuses it
	// while the capture triggers name the column, and nothing changes.
	if _, err := w.nodes["a"].app.Exec(`ALTER TABLE items DROP COLUMN qty`); err == nil || !strings.Contains(err.Error(), "_tandem_") {
		t.Fatalf("DROP COLUMN of a replicated column: %v", err)
	}
	w.exec("a", `INSERT INTO notes VALUES(3, 'still replicated')`)
	w.waitFor("notes still replicate", func() bool { return rowCount(w, "b", "notes") == 3 })
	w.waitConverged()
	// RENAME COLUMN goes through (SQLite rewrites the triggers) but cannot
	// be replicated: that table is refused alone, with the reason.
	w.exec("a", `ALTER TABLE notes RENAME COLUMN body TO text`)
	w.waitFor("notes refused on a", func() bool {
		return strings.Contains(w.nodes["a"].svc.Status().Refused["notes"], "only ADD COLUMN")
	})
	// The store refuses the table as it sees the change, so the status
	// may show it a moment before the shipper reports it.
	w.waitFor("a tandem.repl.refused event for notes", func() bool {
		_, ok := w.nodes["a"].sink.Find(event.ReplRefused, "notes")
		return ok
	})
	w.exec("a", `INSERT INTO items VALUES(4, 'four', 4, 'white')`)
	w.waitFor("items still replicate", func() bool { return rowCount(w, "b", "items") == 4 })
}

package store

import (
	"database/sql"
	"strings"
	"testing"
)

func TestAffinity(t *testing.T) {
	for typ, want := range map[string]string{"INTEGER": "INTEGER", "bigint": "INTEGER", "VARCHAR(10)": "TEXT", "text": "TEXT",
		"CLOB": "TEXT", "": "BLOB", "blob": "BLOB", "REAL": "REAL", "double precision": "REAL", "FLOAT": "REAL",
		"NUMERIC": "NUMERIC", "DECIMAL(10,2)": "NUMERIC", "BOOLEAN": "NUMERIC", "DATETIME": "NUMERIC"} {
		if got := affinity(typ); got != want {
			t.Errorf("affinity(%q) = %s, want %s", typ, got, want)
		}
	}
}

func TestSchemaMismatch(t *testing.T) {
	col := func(name, typ string, pk int) colInfo { return colInfo{name: name, typ: typ, pk: pk} }
	base := []colInfo{col("id", "INTEGER", 1), col("v", "TEXT", 0)}
	for _, c := range []struct {
		name  string
		there []colInfo
		want  string // "" when compatible
		add   int    // columns addColumns adds; -1: not ok
	}{
		{"same", base, "", 0},
		{"same affinity", []colInfo{col("id", "BIGINT", 1), col("v", "VARCHAR(5)", 0)}, "", 0},
		{"other key", []colInfo{col("id", "INTEGER", 0), col("v", "TEXT", 1)}, "primary key (id) here, (v) on the peer", -1},
		{"composite key", []colInfo{col("id", "INTEGER", 1), col("v", "TEXT", 2)}, "primary key (id) here, (id, v) on the peer", -1},
		{"extra there", append(base, col("w", "TEXT", 0)), "the master's has column(s) w this one lacks", 1},
		{"missing there", base[:1], "this one has column(s) v the master's lacks", -1},
		{"type", []colInfo{col("id", "INTEGER", 1), col("v", "BLOB", 0)}, "column v is TEXT here (TEXT affinity), BLOB on the peer (BLOB affinity)", -1},
	} {
		got := schemaMismatch(base, c.there)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		stmts, ok := addColumns("t", base, c.there)
		if (c.add < 0) == ok || (ok && len(stmts) != c.add) {
			t.Errorf("%s: addColumns %v %v, want %d", c.name, stmts, ok, c.add)
		}
	}
	w := colInfo{name: "w", typ: "TEXT", notNull: true, dflt: sql.NullString{String: "'x'", Valid: true}}
	stmts, _ := addColumns("t", base, append(base, w))
	if len(stmts) != 1 || stmts[0] != `ALTER TABLE main."t" ADD COLUMN "w" TEXT DEFAULT 'x' NOT NULL` {
		t.Fatalf("add column: %v", stmts)
	}
}

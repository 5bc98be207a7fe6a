package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
)

func validBatch() *Batch {
	return &Batch{V: Version, Pair: "p", Node: "a", Master: true, DB: "db1", Start: 3, From: 3, To: 5, Final: true,
		Changes: []Change{
			{Seq: 4, Table: "items", Op: OpInsert, PK: "1", Row: json.RawMessage(`{"id":"1","name":"'x'"}`), M: 1, TS: 1},
			{Seq: 5, Table: "items", Op: OpDelete, PK: "1", M: 2, TS: 1},
		}}
}

func TestRoundTrip(t *testing.T) {
	b := validBatch()
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data, "p")
	if err != nil {
		t.Fatal(err)
	}
	cols, vals, err := got.Changes[0].Columns()
	if err != nil || strings.Join(cols, ",") != "id,name" || vals[0] != int64(1) || vals[1] != "x" {
		t.Fatalf("columns %v %v %v", cols, vals, err)
	}
}

func TestRejects(t *testing.T) {
	for name, edit := range map[string]func(b *Batch){
		"version":       func(b *Batch) { b.V = 2 },
		"pair":          func(b *Batch) { b.Pair = "q" },
		"node":          func(b *Batch) { b.Node = "A!" },
		"db":            func(b *Batch) { b.DB = "" },
		"group":         func(b *Batch) { b.From = 9 },
		"part start":    func(b *Batch) { b.Part = 1 },
		"order":         func(b *Batch) { b.Changes[0].Seq = 5 },
		"outside group": func(b *Batch) { b.Changes[1].Seq = 6 },
		"table":         func(b *Batch) { b.Changes[0].Table = "x; DROP TABLE y" },
		"op":            func(b *Batch) { b.Changes[0].Op = "r" },
		"pk":            func(b *Batch) { b.Changes[0].PK = "1 OR 1" },
		"column":        func(b *Batch) { b.Changes[0].Row = json.RawMessage(`{"id\"":"1"}`) },
		"value":         func(b *Batch) { b.Changes[0].Row = json.RawMessage(`{"id":"1)"}`) },
		"no version":    func(b *Batch) { b.Changes[0].M = 0 },
		"delete row":    func(b *Batch) { b.Changes[1].Row = json.RawMessage(`{"id":"1"}`) },
		"genesis":       func(b *Batch) { b.Genesis = &Genesis{Reason: "x"} },
		"chunk and fetch": func(b *Batch) {
			b.Changes[0].Row, b.Changes[0].Pieces, b.Changes[0].Chunk, b.Changes[0].Fetch = nil, 2, "{", 1
		},
		"fetch too large": func(b *Batch) {
			b.Changes[0].Row, b.Changes[0].Pieces, b.Changes[0].Fetch = nil, 2, PieceSize+1
		},
		"fetch not a piece": func(b *Batch) { b.Changes[0].Row, b.Changes[0].Fetch = nil, 1 },
	} {
		b := validBatch()
		edit(b)
		data, _ := b.Encode()
		if _, err := Decode(data, "p"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := Decode([]byte(`{"v":1,"pair":"p","extra":1}`), "p"); err == nil {
		t.Error("unknown field accepted")
	}
	if _, err := Decode(bytes.Repeat([]byte(" "), MaxSize+1), "p"); err == nil {
		t.Error("oversized batch accepted")
	}
}

func TestLiterals(t *testing.T) {
	for _, c := range []struct {
		in   string
		want any
	}{
		{"NULL", nil}, {"42", int64(42)}, {"-7", int64(-7)},
		{"3.00000000000000044408e-01", 0.30000000000000004}, {"1.5", 1.5},
		{"'it''s'", "it's"}, {"''", ""}, {"X'00FF'", []byte{0, 0xff}}, {"9.0e+999", math.Inf(1)},
	} {
		got, err := ParseLiteral(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if b, ok := c.want.([]byte); ok {
			if !bytes.Equal(got.([]byte), b) {
				t.Errorf("%s: %v", c.in, got)
			}
			continue
		}
		if got != c.want {
			t.Errorf("%s: %#v, want %#v", c.in, got, c.want)
		}
	}
	for _, f := range []float64{math.Inf(1), math.Inf(-1), 2, 0.1} {
		if got, err := ParseLiteral(Literal(f)); err != nil || got != f {
			t.Errorf("%v → %q → %v %v", f, Literal(f), got, err)
		}
	}
	l, err := ParseList("1,'a,b',X'01'")
	if err != nil || len(l) != 3 || l[1] != "a,b" {
		t.Fatalf("list %v %v", l, err)
	}
	for _, bad := range []string{"", "'open", "X'0'", "abc", "1 2", "1,"} {
		if _, err := ParseList(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func FuzzDecode(f *testing.F) {
	data, _ := validBatch().Encode()
	f.Add(data)
	f.Add([]byte(`{"v":1,"pair":"p","node":"a","db":"x","from":0,"to":0,"part":0,"final":true,"genesis":{"reason":"created"},"changes":[]}`))
	f.Add([]byte(`{}`))
	cb := validBatch()
	cb.Changes, cb.To = []Change{conflictChange()}, 4
	data, _ = cb.Encode()
	f.Add(data)
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := Decode(in, "p")
		if err != nil {
			return
		}
		// A decoded batch re-encodes and decodes to a valid batch again.
		out, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Decode(out, "p"); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		for i := range b.Changes {
			c := &b.Changes[i]
			if c.Op != OpDelete && c.Pieces == 0 {
				if _, _, err := c.Columns(); err != nil {
					t.Fatal(err)
				}
			}
			if c.Op == OpConflict && c.Pieces == 0 {
				// A decoded record encodes to the same record.
				r, err := c.DecodeConflict()
				if err != nil {
					t.Fatal(err)
				}
				again := Change{Table: c.Table, Op: OpConflict, PK: c.PK, Row: r.Row(), M: c.M, S: c.S}
				if r2, err := again.DecodeConflict(); err != nil || r2 != r {
					t.Fatalf("record %+v → %+v %v", r, r2, err)
				}
			}
		}
	})
}

func FuzzLiteral(f *testing.F) {
	for _, s := range []string{"NULL", "1", "'a''b'", "X'00'", "1.5e3", "1,'x'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l, err := ParseList(s)
		if err != nil {
			return
		}
		for _, v := range l {
			if f, ok := v.(float64); ok && math.IsNaN(f) {
				continue
			}
			if _, err := ParseLiteral(Literal(v)); err != nil {
				t.Fatalf("%q → %v → %q: %v", s, v, Literal(v), err)
			}
		}
	})
}

func conflictChange() Change {
	r := ConflictRecord{Kind: "discard", Winner: "master", Loser: "standby", LoserOp: OpUpdate,
		LoserRow: `{"id":"1","name":"'it''s'"}`, WinnerM: 7, At: "2026-12-04T20:00:00.123Z"}
	return Change{Seq: 4, Table: "items", Op: OpConflict, PK: "1", Row: r.Row(), S: 9, TS: 1}
}

// OpConflict: a record of a discarded row round-trips exactly, and every
// malformed one is refused.
func TestConflictRecord(t *testing.T) {
	b := validBatch()
	b.Changes = []Change{conflictChange()}
	b.To = 4
	data, _ := b.Encode()
	got, err := Decode(data, "p")
	if err != nil {
		t.Fatal(err)
	}
	r, err := got.Changes[0].DecodeConflict()
	if err != nil || r.LoserRow != `{"id":"1","name":"'it''s'"}` || r.WinnerM != 7 || r.Kind != "discard" || r.LoserOp != OpUpdate {
		t.Fatalf("record %+v %v", r, err)
	}
	del := ConflictRecord{Kind: "discard", Winner: "standby", Loser: "master", LoserOp: OpDelete, At: "2026-12-04T20:00:00Z"}
	c := Change{Table: "items", Op: OpConflict, PK: "1", Row: del.Row(), M: 1}
	if r, err := c.DecodeConflict(); err != nil || r.LoserRow != "" {
		t.Fatalf("a deleted loser: %+v %v", r, err)
	}
	for name, edit := range map[string]func(r map[string]string){
		"extra column":   func(r map[string]string) { r["x"] = "1" },
		"missing column": func(r map[string]string) { delete(r, "kind") },
		"kind":           func(r map[string]string) { r["kind"] = "'DROP TABLE'" },
		"kind type":      func(r map[string]string) { r["kind"] = "1" },
		"winner":         func(r map[string]string) { r["winner"] = "'b'" },
		"same sides":     func(r map[string]string) { r["winner"] = "'standby'" },
		"loser op":       func(r map[string]string) { r["loser_op"] = "'s'" },
		"no loser row":   func(r map[string]string) { r["loser_row"] = "NULL" },
		"loser row":      func(r map[string]string) { r["loser_row"] = "'{\"id\":\"1)\"}'" },
		"negative":       func(r map[string]string) { r["winner_m"] = "-1" },
		"real version":   func(r map[string]string) { r["winner_s"] = "1.5" },
		"time":           func(r map[string]string) { r["at"] = "'yesterday'" },
	} {
		c := conflictChange()
		var row map[string]string
		_ = json.Unmarshal(c.Row, &row)
		edit(row)
		c.Row, _ = json.Marshal(row)
		b := validBatch()
		b.Changes, b.To = []Change{c}, 4
		data, _ := b.Encode()
		if _, err := Decode(data, "p"); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// A resync request names a valid database id, and only a resync request
// names one.
func TestDecodeAppliedResyncDB(t *testing.T) {
	for data, ok := range map[string]bool{
		`{"v":1,"pair":"p","node":"a","db":"d1","log":1,"stream":1,"resync":true,"resync_db":"d2"}`:  true,
		`{"v":1,"pair":"p","node":"a","db":"d1","log":1,"stream":1,"resync_db":"d2"}`:                false,
		`{"v":1,"pair":"p","node":"a","db":"d1","log":1,"stream":1,"resync":true,"resync_db":"d 2"}`: false,
	} {
		if _, err := DecodeApplied([]byte(data), "p"); (err == nil) != ok {
			t.Errorf("%s: %v", data, err)
		}
	}
}

package wire

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var rowCases = []string{
	`{"id":"1","name":"'x'"}`,
	`{"b":"X'00FFa0'","a":"NULL","c":"-9.0e+999","d":"9223372036854775807"}`,
	`{"t":"'it''s'","u":"CAST(X'610062' AS TEXT)","e":"X''"}`,
	` { "id" : "1" , "q" : "'a\"b\\c\u0001\u00e9'" } `,
	`{"x\u0041":"1"}`,
	`{"b":"x'abcdef'"}`,
}

// join joins row cut into chunks of n bytes, as its pieces would be.
func join(row string, n int) (*Joined, error) {
	j := NewJoiner(len(row))
	for off := 0; off < len(row); off += n {
		if err := j.Write(row[off:min(off+n, len(row))]); err != nil {
			return nil, err
		}
	}
	return j.Joined()
}

// A row joined from pieces cut anywhere reads as Columns reads the whole
// row, and its text is rebuilt as it was.
func TestJoinerAsColumns(t *testing.T) {
	for _, row := range rowCases {
		c := Change{Row: json.RawMessage(row)}
		cols, vals, err := c.Columns()
		if err != nil {
			t.Fatalf("%s: %v", row, err)
		}
		if checked, err := CheckRow([]byte(row)); err != nil || !reflect.DeepEqual(checked, cols) {
			t.Errorf("%s: CheckRow %v %v, want %v", row, checked, err, cols)
		}
		for _, n := range []int{1, 2, 3, 5, len(row)} {
			j, err := join(row, n)
			if err != nil {
				t.Fatalf("%s in chunks of %d: %v", row, n, err)
			}
			checked, err := j.Check()
			if err != nil || !reflect.DeepEqual(checked, cols) {
				t.Errorf("%s in chunks of %d: checked %v %v, want %v", row, n, checked, err, cols)
			}
			gotCols, gotVals, err := j.Columns()
			if err != nil || !reflect.DeepEqual(gotCols, cols) || !reflect.DeepEqual(gotVals, vals) {
				t.Errorf("%s in chunks of %d: %v %#v %v, want %v %#v", row, n, gotCols, gotVals, err, cols, vals)
			}
			// Rebuilt with quote()'s upper-case digits.
			if text := string(j.JSON()); !strings.EqualFold(text, row) || strings.Count(text, "'") != strings.Count(row, "'") {
				t.Errorf("%s in chunks of %d: rebuilt as %s", row, n, text)
			}
		}
	}
}

// A joined row refuses what Columns refuses, and a column named twice.
func TestJoinerRefuses(t *testing.T) {
	for _, row := range []string{``, `null`, `{}`, `[]`, `{"id":1}`, `{"id":"1"`, `{"id":"1"}x`, `{"id":"1",}`,
		`{"id" "1"}`, `{"1d":"1"}`, `{"id":"X'0'"}`, `{"id":"X'0G'"}`, `{"id":"X'00'1"}`, `{"id":"X'0''0'"}`,
		`{"id":"1)"}`, `{"id":"1","id":"2"}`, "{\"id\":\"'a\nb'\"}", `{"id":"'a\q'"}`, `{"id":"1"` + `,"b":"X'00`,
		`{"X'00'":"1"}`, `{"id":"X''"}x`} {
		if cols, err := CheckRow([]byte(row)); err == nil {
			t.Errorf("%q: checked %v, want an error", row, cols)
		}
		for _, n := range []int{1, 3, max(len(row), 1)} {
			j, err := join(row, n)
			if err != nil {
				continue
			}
			if cols, vals, err := j.Columns(); err == nil {
				t.Errorf("%q in chunks of %d: %v %v, want an error", row, n, cols, vals)
			}
			if cols, err := j.Check(); err == nil {
				t.Errorf("%q in chunks of %d: checked %v, want an error", row, n, cols)
			}
		}
	}
}

// A large blob's row is held as the blob's bytes, once: not as its
// literal's text.
func TestJoinerLargeBlob(t *testing.T) {
	blob := make([]byte, 1<<20)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	row := `{"b":"` + Literal(blob) + `","id":"7"}`
	j := NewJoiner(((len(row) + PieceSize - 1) / PieceSize) * PieceSize)
	err := EachPiece(Change{Seq: 1, Table: "t", Op: OpInsert, PK: "7", M: 1}, row, func(c Change) error {
		if c.Pieces < 2 {
			t.Fatalf("the row travels in %d pieces", c.Pieces)
		}
		return j.Write(c.Chunk)
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := j.Joined()
	if err != nil {
		t.Fatal(err)
	}
	cols, vals, err := r.Columns()
	if err != nil || !reflect.DeepEqual(cols, []string{"b", "id"}) {
		t.Fatalf("%v %v", cols, err)
	}
	got := vals[0].([]byte)
	if !reflect.DeepEqual(got, blob) || vals[1] != int64(7) {
		t.Fatal("the blob differs")
	}
	if cap(got) > len(blob)+PieceSize || len(r.text) > 64 {
		t.Errorf("the row holds %d bytes of blob and %d of text for a blob of %d", cap(got), len(r.text), len(blob))
	}
	if string(r.JSON()) != row {
		t.Error("the row's text is not rebuilt as it was")
	}
}

func FuzzJoiner(f *testing.F) {
	for _, row := range rowCases {
		f.Add(row, 3)
	}
	f.Fuzz(func(t *testing.T, row string, n int) {
		n = max(n%64, 1)
		checked, checkErr := CheckRow([]byte(row))
		var cols []string
		var vals []any
		j, err := join(row, n)
		if err == nil {
			cols, vals, err = j.Columns()
		}
		if (err == nil) != (checkErr == nil) || !reflect.DeepEqual(checked, cols) {
			t.Fatalf("%q: CheckRow %v %v, joined %v %v", row, checked, checkErr, cols, err)
		}
		if err != nil {
			return
		}
		// Columns reads it alike, save where encoding/json replaces
		// bytes that are not UTF-8 (the joiner keeps them).
		c := Change{Row: json.RawMessage(row)}
		wantCols, wantVals, err := c.Columns()
		if !utf8.ValidString(row) {
			return
		}
		if err != nil || !reflect.DeepEqual(cols, wantCols) || !reflect.DeepEqual(vals, wantVals) {
			t.Fatalf("%q: %v %#v, Columns: %v %#v %v", row, cols, vals, wantCols, wantVals, err)
		}
		if strings.Count(row, `"`) < 4 {
			t.Fatalf("%q: a row without a column", row)
		}
	})
}

// The pieces of a row sent without their chunks are the pieces of the
// whole row, each with its chunk's length to fetch; they pass Validate.
func TestEachPieceRef(t *testing.T) {
	row := strings.Repeat("0123456789abcdef", (2*PiecesPerSlice*PieceSize+PieceSize/2)/16)
	c := Change{Seq: 7, Table: "t", Op: OpInsert, PK: "1", M: 1}
	var whole, refs []Change
	if err := EachPiece(c, row, func(c Change) error { whole = append(whole, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := EachPieceRef(c, len(row), func(c Change) error { refs = append(refs, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(refs) != len(whole) {
		t.Fatalf("%d pieces, want %d", len(refs), len(whole))
	}
	for i, r := range refs {
		w := whole[i]
		if r.Chunk != "" || r.Fetch != len(w.Chunk) || r.Piece != w.Piece || r.Pieces != w.Pieces {
			t.Fatalf("piece %d: %+v, want the piece of %d bytes of %+v", i, r, len(w.Chunk), w.Piece)
		}
		if err := r.validate(); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
	}
}

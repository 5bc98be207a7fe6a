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

// ColumnsInPlace reads every row as Columns does.
func TestColumnsInPlaceAsColumns(t *testing.T) {
	for _, row := range rowCases {
		c := Change{Row: json.RawMessage(row)}
		cols, vals, err := c.Columns()
		if err != nil {
			t.Fatalf("%s: %v", row, err)
		}
		checked, err := CheckRow([]byte(row))
		if err != nil || !reflect.DeepEqual(checked, cols) {
			t.Errorf("%s: checked %v %v, want %v", row, checked, err, cols)
		}
		gotCols, gotVals, err := ColumnsInPlace([]byte(row))
		if err != nil || !reflect.DeepEqual(gotCols, cols) || !reflect.DeepEqual(gotVals, vals) {
			t.Errorf("%s: %v %#v %v, want %v %#v", row, gotCols, gotVals, err, cols, vals)
		}
	}
}

// ColumnsInPlace refuses what Columns refuses, and a column named twice.
func TestColumnsInPlaceRefuses(t *testing.T) {
	for _, row := range []string{``, `null`, `{}`, `[]`, `{"id":1}`, `{"id":"1"`, `{"id":"1"}x`, `{"id":"1",}`,
		`{"id" "1"}`, `{"1d":"1"}`, `{"id":"X'0'"}`, `{"id":"X'0G'"}`, `{"id":"X'00'1"}`, `{"id":"X'0''0'"}`,
		`{"id":"1)"}`, `{"id":"1","id":"2"}`, "{\"id\":\"'a\nb'\"}", `{"id":"'a\q'"}`, `{"id":"1"` + `,"b":"X'00`} {
		if cols, vals, err := ColumnsInPlace([]byte(row)); err == nil {
			t.Errorf("%q: %v %v, want an error", row, cols, vals)
		}
		if cols, err := CheckRow([]byte(row)); err == nil {
			t.Errorf("%q: checked %v, want an error", row, cols)
		}
	}
}

// A large blob's value is the row's own memory, decoded.
func TestColumnsInPlaceLargeBlob(t *testing.T) {
	blob := make([]byte, 1<<20)
	for i := range blob {
		blob[i] = byte(i * 7)
	}
	row := []byte(`{"id":"7","b":"` + Literal(blob) + `"}`)
	text := string(row)
	if _, err := CheckRow(row); err != nil || string(row) != text {
		t.Fatalf("CheckRow: %v, or it changed the row", err)
	}
	cols, vals, err := ColumnsInPlace(row)
	if err != nil || len(cols) != 2 || cols[0] != "b" {
		t.Fatalf("%v %v", cols, err)
	}
	got := vals[0].([]byte)
	if !reflect.DeepEqual(got, blob) {
		t.Fatal("the blob differs")
	}
	if &got[0] != &row[len(`{"id":"7","b":"X'`)] {
		t.Error("the blob was copied, not decoded in place")
	}
}

func FuzzColumnsInPlace(f *testing.F) {
	for _, row := range rowCases {
		f.Add(row)
	}
	f.Fuzz(func(t *testing.T, row string) {
		checked, checkErr := CheckRow([]byte(row))
		cols, vals, err := ColumnsInPlace([]byte(row))
		if (err == nil) != (checkErr == nil) || !reflect.DeepEqual(checked, cols) {
			t.Fatalf("%q: CheckRow %v %v, ColumnsInPlace %v %v", row, checked, checkErr, cols, err)
		}
		if err != nil {
			return
		}
		// Columns reads it alike, save where encoding/json replaces
		// bytes that are not UTF-8 (ColumnsInPlace keeps them).
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

// A row read in slices makes the same pieces as the whole row, holding one
// slice at a time; a slice shorter than asked is an error.
func TestEachPieceOf(t *testing.T) {
	row := strings.Repeat("0123456789abcdef", (2*PiecesPerSlice*PieceSize+PieceSize/2)/16)
	var whole, sliced []Change
	if err := EachPiece(Change{Seq: 7}, row, func(c Change) error { whole = append(whole, c); return nil }); err != nil {
		t.Fatal(err)
	}
	reads := 0
	read := func(off, n int) (string, error) { reads++; return row[off:min(off+n, len(row))], nil }
	if err := EachPieceOf(Change{Seq: 7}, len(row), read, func(c Change) error { sliced = append(sliced, c); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(whole, sliced) || reads != 3 {
		t.Fatalf("%d pieces in %d reads, want %d in 3", len(sliced), reads, len(whole))
	}
	short := func(off, n int) (string, error) { return row[off : off+PieceSize], nil }
	if err := EachPieceOf(Change{Seq: 7}, len(row), short, func(Change) error { return nil }); err == nil {
		t.Fatal("a short slice was taken for the row")
	}
}

package wire

import (
	"encoding/json"
	"strings"
	"testing"
)

// Text that is not UTF-8 travels byte for byte: in a row's literal (with
// and without JSON escapes), in a primary key, in a piece's chunk that
// ends inside a character, and in a conflict record's loser row.
func TestTextBytesExact(t *testing.T) {
	const latin1 = "caf\xe9 \"x\" \\ 'q'\n\x80"
	row, _ := json.Marshal(map[string]string{"id": "1"})
	row = append(quote(append(row[:len(row)-1], `,"v":`...), Literal(latin1)), '}')
	b := validBatch()
	b.Changes[0].Row = row
	b.Changes[0].PK = Literal("k\xe4y")
	b.Changes[1].PK = Literal("\xff")
	piece := Change{Seq: 6, Table: "items", Op: OpInsert, PK: "2", M: 3, TS: 1, Piece: 0, Pieces: 2, Chunk: `{"v":"'t` + "\xc3"}
	b.Changes, b.To = append(b.Changes, piece), 6
	before := b.Changes[0]
	data, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if b.Changes[0].PK != before.PK || b.Changes[0].PKHex != "" {
		t.Fatal("Encode changed the batch it encoded")
	}
	if !json.Valid(data) || strings.Contains(string(data), "\uFFFD") {
		t.Fatalf("the encoded batch is not clean JSON: %q", data)
	}
	got, err := Decode(data, "p")
	if err != nil {
		t.Fatal(err)
	}
	_, vals, err := got.Changes[0].Columns()
	if err != nil || vals[1] != latin1 {
		t.Fatalf("row values %q (%v), want %q", vals, err, latin1)
	}
	for i, want := range []string{Literal("k\xe4y"), Literal("\xff"), "2"} {
		if got.Changes[i].PK != want || got.Changes[i].PKHex != "" {
			t.Errorf("change %d: PK %q, want %q", i, got.Changes[i].PK, want)
		}
	}
	if got.Changes[2].Chunk != piece.Chunk || got.Changes[2].ChunkHex != "" {
		t.Errorf("chunk %q, want %q", got.Changes[2].Chunk, piece.Chunk)
	}

	rec := ConflictRecord{Kind: "update/update", Winner: "master", Loser: "standby", LoserOp: OpUpdate,
		LoserRow: string(row), WinnerM: 2, WinnerS: 1, At: "2026-12-05T06:00:00Z"}
	c := Change{Seq: 1, Table: "items", Op: OpConflict, PK: "1", Row: rec.Row(), M: 1, S: 1}
	back, err := c.DecodeConflict()
	if err != nil || back != rec {
		t.Fatalf("conflict record %+v (%v), want %+v", back, err, rec)
	}
}

// A change may not carry a field both as text and in hex, nor bad hex.
func TestTextHexRejects(t *testing.T) {
	for name, c := range map[string]string{
		"both":    `"pk":"1","pkx":"31"`,
		"bad hex": `"chunkx":"zz"`,
	} {
		data := `{"v":1,"pair":"p","node":"a","master":true,"db":"db1","start":3,"from":3,"to":4,"final":true,"changes":[{"seq":4,"t":"items","op":"d",` + c + `,"m":1,"s":0,"ts":1}]}`
		if _, err := Decode([]byte(data), "p"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestUnquote(t *testing.T) {
	for in, want := range map[string]string{
		`"a\"b\\c\/d\b\f\n\r\t"`: "a\"b\\c/d\b\f\n\r\t",
		`"\u00e9\ud83d\ude00"`:   "é😀",
		`"\ud83d"`:               "\uFFFD",
		"\"\xff\xfe\"":           "\xff\xfe",
	} {
		got, err := unquote([]byte(in))
		if err != nil || got != want {
			t.Errorf("unquote(%q) = %q, %v; want %q", in, got, err, want)
		}
		var std string
		if json.Unmarshal([]byte(in), &std) == nil && in != "\"\xff\xfe\"" && std != got {
			t.Errorf("unquote(%q) = %q, encoding/json reads %q", in, got, std)
		}
	}
	for _, bad := range []string{`"a`, `"\x"`, `"\u12"`, "\"\x01\"", `"a"b"`, `"\`} {
		if _, err := unquote([]byte(bad)); err == nil {
			t.Errorf("unquote(%q) accepted", bad)
		}
	}
	for _, s := range []string{"plain", "\x00\x1f\"\\", "caf\xe9"} {
		if got, err := unquote(quote(nil, s)); err != nil || got != s {
			t.Errorf("quote/unquote %q: %q, %v", s, got, err)
		}
	}
}

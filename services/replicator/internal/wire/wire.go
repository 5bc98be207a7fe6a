// Package wire is what replicators send each other: change batches, and the
// SQL literals that carry column values inside them. Decoders are strict
// (size, schema version, names, order) and fuzzed, because a batch comes
// from the network: a bad one is refused whole and changes nothing.
//
// # Batches
//
// A node's capture triggers write each change into its change log with a
// sequence number (the log's rowid, in commit order). The shipper reads the
// log after its last shipped sequence inside one read transaction, so what
// it reads is a run of whole source transactions: the group (From, To].
// A group is sent as one or more parts (Part 0, 1, …; the last Final) so that
// no message exceeds MaxSize; the receiver applies a group in one database
// transaction, atomically, when its final part has arrived. Under load a
// group holds many source transactions (batching); at rest one.
//
// # Values
//
// Column values travel as SQLite SQL literals, exactly as SQLite's quote()
// writes them: NULL, an integer, a real (quote() writes reals so that they
// read back bit for bit), a 'text' with doubled quotes, or a blob X'hex'. A
// row is a JSON object of column name → literal; a primary key is the
// comma-separated list of the key columns' literals (the same text the
// triggers use as the row's key in the version table).
package wire

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Version is the schema version of batches.
const Version = 1

// MaxSize is the largest encoded batch (under the NATS max payload of 1 MiB).
const MaxSize = 1 << 20

// PartTarget is the size at which the shipper closes a part.
const PartTarget = 256 << 10

// ErrInvalid is wrapped by every decoding error.
var ErrInvalid = errors.New("invalid batch")

// Ops of a change.
const (
	OpInsert = "i"
	OpUpdate = "u"
	OpDelete = "d"
	// OpSchema is a schema change: Row is {"sql": <the statement as a text
	// literal>}, one of CREATE TABLE, CREATE INDEX, ALTER TABLE … ADD
	// COLUMN; Table is SchemaTable.
	OpSchema = "s"
	// OpConflict records a losing version in the receiver's conflict table
	// (_tandem_conflict) and changes no row: Table and PK name the row, M
	// and S are the loser's version, and Row is a ConflictRecord (see
	// DecodeConflict). A node whose rows an operator discarded (`tandem
	// repl resync --from NODE --discard`) ships one per discarded row, so
	// that both nodes keep what was thrown away (R10).
	OpConflict = "c"
)

// ConflictRecord is the row of an OpConflict change: column → literal.
type ConflictRecord struct {
	Kind    string // e.g. "discard"
	Winner  string // role of the side whose version won ("master", "standby")
	Loser   string
	LoserOp string // i, u or d
	// LoserRow is the losing row image (a JSON object of column → literal),
	// "" for a delete.
	LoserRow         string
	WinnerM, WinnerS uint64
	At               string // RFC 3339, when it was recorded
}

// conflictCols are the columns of a ConflictRecord row, sorted.
var conflictCols = []string{"at", "kind", "loser", "loser_op", "loser_row", "winner", "winner_m", "winner_s"}

// conflictKindRE bounds the text fields of a conflict record.
var conflictKindRE = regexp.MustCompile(`^[a-z_/]{1,32}$`)

// Row encodes r as the row of an OpConflict change.
func (r ConflictRecord) Row() json.RawMessage {
	row := map[string]string{"at": Literal(r.At), "kind": Literal(r.Kind), "loser": Literal(r.Loser),
		"loser_op": Literal(r.LoserOp), "loser_row": "NULL", "winner": Literal(r.Winner),
		"winner_m": Literal(int64(r.WinnerM)), "winner_s": Literal(int64(r.WinnerS))}
	if r.LoserRow != "" {
		row["loser_row"] = Literal(r.LoserRow)
	}
	b := []byte{'{'}
	for i, k := range slices.Sorted(maps.Keys(row)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = quote(append(quote(b, k), ':'), row[k])
	}
	return append(b, '}')
}

// DecodeConflict reads and checks the record of an OpConflict change.
func (c *Change) DecodeConflict() (ConflictRecord, error) {
	var r ConflictRecord
	cols, vals, err := c.Columns()
	if err != nil {
		return r, err
	}
	if !slices.Equal(cols, conflictCols) {
		return r, fmt.Errorf("a conflict record has the columns %s, not %s", strings.Join(conflictCols, ", "), strings.Join(cols, ", "))
	}
	text := func(i int) (string, bool) { v, ok := vals[i].(string); return v, ok }
	count := func(i int) (uint64, bool) { v, ok := vals[i].(int64); return uint64(v), ok && v >= 0 }
	var ok [8]bool
	r.At, ok[0] = text(0)
	r.Kind, ok[1] = text(1)
	r.Loser, ok[2] = text(2)
	r.LoserOp, ok[3] = text(3)
	r.LoserRow, ok[4] = text(4)
	if vals[4] == nil {
		ok[4] = true
	}
	r.Winner, ok[5] = text(5)
	r.WinnerM, ok[6] = count(6)
	r.WinnerS, ok[7] = count(7)
	for i, good := range ok {
		if !good {
			return r, fmt.Errorf("conflict record: column %s has a value of the wrong type", conflictCols[i])
		}
	}
	switch {
	case !conflictKindRE.MatchString(r.Kind):
		return r, fmt.Errorf("conflict record: kind %q", r.Kind)
	case !validSide(r.Winner) || !validSide(r.Loser) || r.Winner == r.Loser:
		return r, fmt.Errorf("conflict record: winner %q, loser %q", r.Winner, r.Loser)
	case r.LoserOp != OpInsert && r.LoserOp != OpUpdate && r.LoserOp != OpDelete:
		return r, fmt.Errorf("conflict record: loser op %q", r.LoserOp)
	case (r.LoserRow == "") != (r.LoserOp == OpDelete):
		return r, errors.New("conflict record: a deleted loser carries no row, any other one does")
	case len(r.At) > 64 || !timeRE.MatchString(r.At):
		return r, fmt.Errorf("conflict record: time %q", trim(r.At))
	}
	if r.LoserRow != "" {
		img := Change{Row: json.RawMessage(r.LoserRow)}
		if _, _, err := img.Columns(); err != nil {
			return r, fmt.Errorf("conflict record: loser row: %w", err)
		}
	}
	return r, nil
}

func validSide(s string) bool { return s == "master" || s == "standby" }

// timeRE is an RFC 3339 time as the store writes it.
var timeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$`)

// SchemaTable is the table name of schema changes.
const SchemaTable = "_tandem_schema"

// Batch is one part of a group of source transactions.
type Batch struct {
	V    int    `json:"v"`
	Pair string `json:"pair"`
	Node string `json:"node"` // the source node
	// Master is true when the source node is the pair's master.
	Master bool `json:"master"`
	// DB is the source database's id; it changes on every snapshot restore
	// and when a restored backup is detected.
	DB string `json:"db"`
	// Start is the log sequence the group starts after; From and To bound
	// this part's changes: log sequences (From, To]. Parts chain: a part's
	// From is the previous part's To; part 0's From is Start; the final
	// part's To is the group's end.
	Start uint64 `json:"start"`
	From  uint64 `json:"from"`
	To    uint64 `json:"to"`
	Part  int    `json:"part"`
	Final bool   `json:"final"`
	// Genesis marks the first message of a database id (an empty group).
	Genesis *Genesis `json:"genesis,omitempty"`
	Changes []Change `json:"changes"`
}

// Genesis introduces a new database id of the source.
type Genesis struct {
	// Base is the master database id the source was restored from (a
	// standby after a snapshot), empty otherwise.
	Base string `json:"base,omitempty"`
	// BasePos is the master's log position in that snapshot.
	BasePos uint64 `json:"base_pos,omitempty"`
	// Reason says why the id is new ("created", "snapshot", "backup restore detected").
	Reason string `json:"reason"`
}

// Change is one captured row change.
type Change struct {
	Seq   uint64          `json:"seq"`
	Table string          `json:"t"`
	Op    string          `json:"op"`
	PK    string          `json:"pk"`
	Row   json.RawMessage `json:"row,omitempty"` // inserts and updates: column → literal
	M     uint64          `json:"m"`
	S     uint64          `json:"s"`
	TS    float64         `json:"ts"` // commit time on the source, Unix seconds
	// A row too large for one message travels in Pieces (≥ 2) consecutive
	// changes of the same Seq, each with a Chunk of the row's JSON text and
	// no Row, possibly across parts; the receiver joins them in order.
	Piece  int    `json:"piece,omitempty"`
	Pieces int    `json:"pieces,omitempty"`
	Chunk  string `json:"chunk,omitempty"`
	// Fetch, on a piece without a Chunk, is its chunk's length: the
	// receiver asks the source for it (PieceRequest). The pieces of a row
	// too large to pass through the source's batch stream travel so
	// (EachPieceRef).
	Fetch int `json:"fetch,omitempty"`
	// PKHex and ChunkHex carry PK and Chunk in hex on the wire when they
	// are not valid UTF-8 (see text.go); always empty in memory.
	PKHex    string `json:"pkx,omitempty"`
	ChunkHex string `json:"chunkx,omitempty"`
}

// PieceSize is the largest chunk of a row that travels in one change.
const PieceSize = 192 << 10

// MaxPieces bounds a row's pieces (SQLite's default limit on one value is
// 1e9 bytes, and a blob's literal is twice its size).
const MaxPieces = 2*1_000_000_000/PieceSize + 2

// EachPiece passes fn the change c with row as its row, or, when row is
// larger than PieceSize, its pieces one at a time. A piece's Chunk is a
// substring of row (no copy), so a large row is held once, however many
// pieces it makes.
func EachPiece(c Change, row string, fn func(Change) error) error {
	if len(row) <= PieceSize {
		if row != "" {
			c.Row = []byte(row)
		}
		return fn(c)
	}
	n := (len(row) + PieceSize - 1) / PieceSize
	c.Row, c.Pieces = nil, n
	for i := range n {
		c.Piece, c.Chunk = i, row[i*PieceSize:min((i+1)*PieceSize, len(row))]
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// EachPieceRef passes fn the pieces of a row of size bytes (more than
// PieceSize) without their chunks: each piece's Fetch is its chunk's
// length, which the receiver asks the source for (PieceRequest). The row
// is not read.
func EachPieceRef(c Change, size int, fn func(Change) error) error {
	n := (size + PieceSize - 1) / PieceSize
	c.Row, c.Chunk, c.Pieces = nil, "", n
	for i := range n {
		c.Piece, c.Fetch = i, min(PieceSize, size-i*PieceSize)
		if err := fn(c); err != nil {
			return err
		}
	}
	return nil
}

// PiecesPerSlice is how many pieces of a large row the source reads from its
// log at a time (about 8 MiB).
const PiecesPerSlice = 42

var (
	dbRE    = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// ValidIdent reports whether s may name a table or column in a batch.
func ValidIdent(s string) bool { return identRE.MatchString(s) }

// ValidDB reports whether s is a well-formed database id.
func ValidDB(s string) bool { return dbRE.MatchString(s) }

// Encode marshals b, a PK or Chunk that is not valid UTF-8 in hex.
func (b *Batch) Encode() ([]byte, error) {
	for i := range b.Changes {
		if c := toWire(b.Changes[i]); c.PKHex != "" || c.ChunkHex != "" {
			out := *b
			out.Changes = slices.Clone(b.Changes)
			for k := i; k < len(out.Changes); k++ {
				out.Changes[k] = toWire(out.Changes[k])
			}
			return json.Marshal(&out)
		}
	}
	return json.Marshal(b)
}

// Decode parses and validates one batch meant for pair.
func Decode(data []byte, pair string) (*Batch, error) {
	var b Batch
	if err := event.DecodeStrict(data, MaxSize, &b); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	for i := range b.Changes {
		if err := fromWire(&b.Changes[i]); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if err := b.Validate(pair); err != nil {
		return nil, err
	}
	return &b, nil
}

// Validate checks every field of b.
func (b *Batch) Validate(pair string) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	switch {
	case b.V != Version:
		return bad("schema version %d, want %d", b.V, Version)
	case b.Pair != pair:
		return bad("pair %q, want %q", b.Pair, pair)
	case !subject.ValidName(b.Node):
		return bad("node %q", b.Node)
	case !ValidDB(b.DB):
		return bad("database id %q", b.DB)
	case b.Start > b.From || b.From > b.To:
		return bad("part (%d, %d] of a group after %d", b.From, b.To, b.Start)
	case (b.Part == 0) != (b.Start == b.From):
		return bad("part %d starts at %d, its group at %d", b.Part, b.From, b.Start)
	case b.Part < 0:
		return bad("part %d", b.Part)
	case b.Genesis != nil && (len(b.Changes) > 0 || b.From != b.To || !b.Final || b.Part != 0):
		return bad("a genesis message carries no changes")
	case b.Genesis != nil && b.Genesis.Base != "" && !ValidDB(b.Genesis.Base):
		return bad("genesis base %q", b.Genesis.Base)
	}
	last := b.From
	for i := range b.Changes {
		c := &b.Changes[i]
		continued := c.Piece > 0 && c.Seq == last
		if (c.Seq <= last && !continued) || c.Seq > b.To {
			return bad("change %d: sequence %d out of order in (%d, %d]", i, c.Seq, b.From, b.To)
		}
		last = c.Seq
		if err := c.validate(); err != nil {
			return bad("change %d (seq %d): %v", i, c.Seq, err)
		}
	}
	return nil
}

func (c *Change) validate() error {
	if !ValidIdent(c.Table) {
		return fmt.Errorf("table name %q", c.Table)
	}
	if _, err := ParseList(c.PK); err != nil {
		return fmt.Errorf("primary key: %w", err)
	}
	if c.M == 0 && c.S == 0 {
		return errors.New("version (0,0)")
	}
	if math.IsNaN(c.TS) || c.TS < 0 {
		return fmt.Errorf("commit time %v", c.TS)
	}
	if c.Pieces != 0 || c.Piece != 0 || c.Chunk != "" || c.Fetch != 0 {
		switch {
		case c.Pieces < 2 || c.Pieces > MaxPieces || c.Piece < 0 || c.Piece >= c.Pieces:
			return fmt.Errorf("piece %d of %d", c.Piece, c.Pieces)
		case c.Op != OpInsert && c.Op != OpUpdate && c.Op != OpConflict:
			return fmt.Errorf("a %q change in pieces", c.Op)
		case len(c.Row) != 0 || (c.Chunk == "") == (c.Fetch == 0) || len(c.Chunk) > PieceSize || c.Fetch < 0 || c.Fetch > PieceSize:
			return errors.New("a piece carries a chunk of at most PieceSize bytes, or the length of one to fetch, and no row")
		}
		return nil // the row is checked once joined
	}
	switch c.Op {
	case OpDelete:
		if len(c.Row) != 0 && string(c.Row) != "null" {
			return errors.New("a delete carries a row")
		}
		return nil
	case OpInsert, OpUpdate:
		_, _, err := c.Columns()
		return err
	case OpConflict:
		_, err := c.DecodeConflict()
		return err
	case OpSchema:
		cols, vals, err := c.Columns()
		if err != nil {
			return err
		}
		if q, ok := vals[0].(string); len(cols) != 1 || cols[0] != "sql" || !ok || q == "" || c.Table != SchemaTable {
			return errors.New("a schema change carries one statement as sql, in table " + SchemaTable)
		}
		return nil
	}
	return fmt.Errorf("op %q", c.Op)
}

// Columns decodes the row of an insert or update: column names (sorted as
// sent) and their values.
func (c *Change) Columns() ([]string, []any, error) {
	return scanRow(rowScanner{b: c.Row, values: true})
}

// ParseLiteral reads one SQL literal as quote() writes it: nil, int64,
// float64, string or []byte.
func ParseLiteral(s string) (any, error) {
	v, rest, err := parseOne(s)
	if err != nil {
		return nil, err
	}
	if rest != "" {
		return nil, fmt.Errorf("trailing %q after literal", trim(rest))
	}
	return v, nil
}

// ParseList reads a comma-separated list of literals (a primary key).
func ParseList(s string) ([]any, error) {
	var out []any
	for {
		v, rest, err := parseOne(s)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		if rest == "" {
			return out, nil
		}
		if rest[0] != ',' {
			return nil, fmt.Errorf("want a comma, have %q", trim(rest))
		}
		s = rest[1:]
		if len(out) > 64 {
			return nil, errors.New("more than 64 key columns")
		}
	}
}

func parseOne(s string) (any, string, error) {
	switch {
	case s == "":
		return nil, "", errors.New("empty literal")
	case strings.HasPrefix(s, "NULL"):
		return nil, s[4:], nil
	case s[0] == '\'':
		return parseText(s)
	case strings.HasPrefix(s, textBlobOpen):
		return parseTextBlob(s)
	case s[0] == 'X' || s[0] == 'x':
		return parseBlob(s)
	}
	n := 0
	for n < len(s) && strings.IndexByte("+-0123456789.eE", s[n]) >= 0 {
		n++
	}
	num, rest := s[:n], s[n:]
	if num == "" {
		return nil, "", fmt.Errorf("not a literal: %q", trim(s))
	}
	if i, err := strconv.ParseInt(num, 10, 64); err == nil {
		return i, rest, nil
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return nil, "", fmt.Errorf("not a number: %q", trim(num))
	}
	return f, rest, nil
}

func parseText(s string) (any, string, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), s[i+1:], nil
	}
	return nil, "", errors.New("unterminated text literal")
}

// A text value holding a NUL byte is written as its bytes cast to text:
// quote() would cut it at the NUL.
const (
	textBlobOpen  = "CAST(X'"
	textBlobClose = " AS TEXT)"
)

func parseTextBlob(s string) (any, string, error) {
	v, rest, err := parseBlob(s[len("CAST("):])
	if err != nil {
		return nil, "", err
	}
	if !strings.HasPrefix(rest, textBlobClose) {
		return nil, "", fmt.Errorf("not a text literal: %q", trim(s))
	}
	return string(v.([]byte)), rest[len(textBlobClose):], nil
}

func parseBlob(s string) (any, string, error) {
	if len(s) < 3 || s[1] != '\'' {
		return nil, "", fmt.Errorf("not a blob literal: %q", trim(s))
	}
	end := strings.IndexByte(s[2:], '\'')
	if end < 0 {
		return nil, "", errors.New("unterminated blob literal")
	}
	b, err := hex.DecodeString(s[2 : 2+end])
	if err != nil {
		return nil, "", fmt.Errorf("blob literal: %w", err)
	}
	return b, s[3+end:], nil
}

// Literal writes v (as ParseLiteral returns it) back as quote() would.
func Literal(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		switch { // infinities as quote() writes them
		case math.IsInf(x, 1):
			return "9.0e+999"
		case math.IsInf(x, -1):
			return "-9.0e+999"
		}
		s := strconv.FormatFloat(x, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIN") {
			s += ".0" // still a real when read back
		}
		return s
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			return textBlobOpen + strings.ToUpper(hex.EncodeToString([]byte(x))) + "'" + textBlobClose
		}
		return "'" + strings.ReplaceAll(x, "'", "''") + "'"
	case []byte:
		return "X'" + strings.ToUpper(hex.EncodeToString(x)) + "'"
	}
	return fmt.Sprintf("'%v'", v)
}

func trim(s string) string {
	if len(s) > 32 {
		return s[:32] + "…"
	}
	return s
}

// Applied tells a node how far its peer has applied the node's batches.
type Applied struct {
	V      int    `json:"v"`
	Pair   string `json:"pair"`
	Node   string `json:"node"` // the node that applied
	DB     string `json:"db"`   // the source database id the position refers to
	Log    uint64 `json:"log"`
	Stream uint64 `json:"stream"`
	// Resync asks the source (a standby) to re-sync from the master: its
	// database is not one the master can continue from.
	Resync bool   `json:"resync,omitempty"`
	Reason string `json:"reason,omitempty"`
	// ResyncDB is the database id of the receiver the resync is asked
	// for: a standby that has left it since (re-synced already, a batch
	// of its old id still in flight) ignores the ask. Empty: any (an older
	// sender).
	ResyncDB string `json:"resync_db,omitempty"`
	// Paused is whether the sender's replication is paused, and PauseAt
	// when (Unix ns) the operator's pause or resume it follows was
	// decided, 0 when it does not know: a node that missed a decision (it
	// was down, or starting) follows a newer one of its peer (R4).
	Paused  bool  `json:"paused,omitempty"`
	PauseAt int64 `json:"pause_at,omitempty"`
}

// DecodeApplied parses and validates an Applied message meant for pair.
func DecodeApplied(data []byte, pair string) (*Applied, error) {
	var a Applied
	if err := event.DecodeStrict(data, 4096, &a); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	switch {
	case a.V != Version || a.Pair != pair || !subject.ValidName(a.Node):
		return nil, fmt.Errorf("%w: applied position v%d pair %q node %q", ErrInvalid, a.V, a.Pair, a.Node)
	case a.DB != "" && !ValidDB(a.DB):
		return nil, fmt.Errorf("%w: database id %q", ErrInvalid, a.DB)
	case a.ResyncDB != "" && (!ValidDB(a.ResyncDB) || !a.Resync):
		return nil, fmt.Errorf("%w: resync database id %q", ErrInvalid, a.ResyncDB)
	case a.PauseAt < 0:
		return nil, fmt.Errorf("%w: pause time %d", ErrInvalid, a.PauseAt)
	}
	return &a, nil
}

// SnapshotRequest asks a node for a snapshot of its database.
type SnapshotRequest struct {
	V    int    `json:"v"`
	Pair string `json:"pair"`
	Node string `json:"node"` // who asks
	// Discard: the asking node will discard what differs from the snapshot
	// (an operator's command); then either node serves one, not only the
	// master.
	Discard bool `json:"discard,omitempty"`
}

// SnapshotReply describes a snapshot ready to be fetched.
type SnapshotReply struct {
	ID        string `json:"id"`
	Size      int64  `json:"size"`
	ChunkSize int    `json:"chunk_size"`
	Chunks    int    `json:"chunks"`
	SHA256    string `json:"sha256"`
	DB        string `json:"db"`
	Log       uint64 `json:"log"`
	// Stream is the last sequence of the master's batch stream before the
	// snapshot was made: every batch up to it is in the snapshot or of an
	// older database id, so the standby reads the stream after it.
	Stream uint64 `json:"stream,omitempty"`
}

// ChunkRequest fetches one chunk of a snapshot; the reply is the bytes,
// with their SHA-256 in the ChunkSumHeader header.
type ChunkRequest struct {
	V     int    `json:"v"`
	Pair  string `json:"pair"`
	ID    string `json:"id"`
	Index int    `json:"index"`
}

// PieceRequest asks the source node for the chunk of a piece that travels
// without it (Change.Fetch): piece Piece of the row of log entry Seq of
// database id DB, the change of version (M, S) committed at TS (a log
// entry of a restored backup may reuse the sequence). The reply is the
// chunk's Fetch bytes, with their SHA-256 in the ChunkSumHeader header, or
// a reply.Error.
type PieceRequest struct {
	V     int     `json:"v"`
	Pair  string  `json:"pair"`
	DB    string  `json:"db"`
	Seq   uint64  `json:"seq"`
	M     uint64  `json:"m"`
	S     uint64  `json:"s"`
	TS    float64 `json:"ts"`
	Piece int     `json:"piece"`
	Fetch int     `json:"fetch"`
}

// PieceOf is the request for the chunk of piece c of a batch of database
// id db.
func PieceOf(pair, db string, c Change) PieceRequest {
	return PieceRequest{V: Version, Pair: pair, DB: db, Seq: c.Seq, M: c.M, S: c.S, TS: c.TS, Piece: c.Piece, Fetch: c.Fetch}
}

// Validate checks r.
func (r *PieceRequest) Validate(pair string) error {
	switch {
	case r.V != Version || r.Pair != pair:
		return fmt.Errorf("%w: piece request v%d of pair %q", ErrInvalid, r.V, r.Pair)
	case !ValidDB(r.DB):
		return fmt.Errorf("%w: piece request: database id %q", ErrInvalid, r.DB)
	case r.Seq == 0 || r.Piece < 0 || r.Piece >= MaxPieces || r.Fetch <= 0 || r.Fetch > PieceSize:
		return fmt.Errorf("%w: piece request: piece %d of change %d, %d bytes", ErrInvalid, r.Piece, r.Seq, r.Fetch)
	}
	return nil
}

// ChunkSumHeader carries a chunk's hex SHA-256.
const ChunkSumHeader = "Tandem-Sha256"

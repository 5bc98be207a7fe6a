package api

// Replication admin verbs (answered by every node's replicator on
// subject.ReplAdmin).
const (
	VerbReplPause  = "repl.pause"
	VerbReplResume = "repl.resume"
	VerbReplResync = "repl.resync"
	VerbReplVerify = "repl.verify"
	VerbReplStatus = "repl.status"
)

// ReplRequest is the request of every replication verb. Node, if set, limits
// the verb to that node (the others answer with Skipped). For verify, Table
// and Buckets ask for the row hashes of those buckets of one table instead
// of the table checksums.
//
// For resync, From names the node whose data is kept and Discard asks the
// other node (or Node) to become equal to it, discarding what differs
// there (R10: the discarded rows go to the conflict table on both nodes).
// Without Discard a resync reconciles the standby with the master, and
// From, if set, must name the master.
type ReplRequest struct {
	Request
	Node    string `json:"node,omitempty"`
	Table   string `json:"table,omitempty"`
	Buckets []int  `json:"buckets,omitempty"`
	From    string `json:"from,omitempty"`
	Discard bool   `json:"discard,omitempty"`
}

func (r *ReplRequest) head() Request { return r.Request }

// ReplDirection is one direction of replication as the receiving node sees it.
type ReplDirection struct {
	From string `json:"from"`
	To   string `json:"to"`
	// DB is the source database id the position refers to.
	DB string `json:"db,omitempty"`
	// Applied is the last source log sequence applied.
	Applied uint64 `json:"applied"`
	// Pending is how many batches of the source wait to be applied (as of
	// the last one received).
	Pending uint64 `json:"pending"`
	// LagMS is the age of the last applied change when it was applied
	// (source commit → applied, across both clocks).
	LagMS int64 `json:"lag_ms"`
	// LastApplied is when the last group was applied (RFC 3339).
	LastApplied string `json:"last_applied,omitempty"`
}

// ReplStatus is a node's replication state.
type ReplStatus struct {
	Node  string `json:"node"`
	Role  string `json:"role"`
	State string `json:"state"` // running, paused, syncing, blocked, disabled
	// Reason says why the state is not running.
	Reason   string `json:"reason,omitempty"`
	DB       string `json:"db"`
	Paused   bool   `json:"paused"`
	LogHigh  uint64 `json:"log_high"`
	Shipped  uint64 `json:"shipped"`
	Unpruned int64  `json:"log_rows"`
	// Unacked counts this node's changes the peer has not yet acknowledged
	// applying (0 when the peer has them all).
	Unacked   uint64 `json:"unacked"`
	Conflicts int64  `json:"conflicts"`
	// In is the peer → this node direction.
	In ReplDirection `json:"in"`
	// Snapshot is the progress of a running resync (0–1), if any.
	Snapshot *float64 `json:"snapshot,omitempty"`
	// Refused names the application tables that cannot be replicated, with
	// the reason (R11: the others replicate).
	Refused map[string]string `json:"refused,omitempty"`
}

// ReplReply answers pause, resume, resync and status.
type ReplReply struct {
	Status  ReplStatus `json:"status"`
	Skipped bool       `json:"skipped,omitempty"`
	Message string     `json:"message,omitempty"`
	// Discarded counts, per table, the rows a resync --discard threw away
	// on this node (each one is in the conflict table of both nodes).
	Discarded map[string]int `json:"discarded,omitempty"`
	// Refused names the tables the resync left alone (incompatible schemas).
	Refused map[string]string `json:"refused,omitempty"`
}

// ReplTableSum is one table's checksum in buckets.
type ReplTableSum struct {
	Table   string   `json:"table"`
	Rows    int64    `json:"rows"`
	Sum     string   `json:"sum"`
	Buckets []uint64 `json:"buckets"`
}

// ReplRowSum is one row's hash, by key (SQL literals, comma-separated).
type ReplRowSum struct {
	PK   string `json:"pk"`
	Hash string `json:"hash"`
}

// ReplVerifyReply answers verify: table checksums, or the row hashes asked for.
type ReplVerifyReply struct {
	Node   string         `json:"node"`
	Role   string         `json:"role"`
	Tables []ReplTableSum `json:"tables,omitempty"`
	Rows   []ReplRowSum   `json:"rows,omitempty"`
	// Applied is the node's position in the peer's changes when it answered.
	Applied uint64 `json:"applied"`
	// Refused names the tables this node refuses (R11), with the reason:
	// they are not compared.
	Refused map[string]string `json:"refused,omitempty"`
}

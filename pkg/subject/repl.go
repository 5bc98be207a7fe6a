package subject

// Replication subjects and streams (services/replicator):
//
//	tandem.<pair>.repl.<node>.tx         change batches made on <node> (stream ReplStream)
//	tandem.<pair>.repl.<node>.applied    how far the peer has applied <node>'s batches (to <node>)
//	tandem.<pair>.repl.<node>.snapshot   ask <node> for a snapshot of its database (request/reply)
//	tandem.<pair>.repl.<node>.chunk      fetch one chunk of that snapshot (request/reply)
//	tandem.<pair>.repl.<node>.piece      fetch one piece of a large row of <node>'s change log (request/reply)
//	tandem.<pair>.admin._pair.repl.<verb> admin verbs answered by every node's replicator

// ReplStream is the JetStream stream, in node's own domain, holding the
// change batches made on node until the peer has applied them.
func ReplStream(pair, node string) string { return "tandem_repl_" + pair + "_" + node }

// ReplChanges is the subject of node's change batches.
func ReplChanges(pair, node string) string { return join(pair, "repl", node, "tx") }

// ReplApplied is the subject on which node hears how far its peer has
// applied node's batches.
func ReplApplied(pair, node string) string { return join(pair, "repl", node, "applied") }

// ReplSnapshot is the request subject for a snapshot of node's database.
func ReplSnapshot(pair, node string) string { return join(pair, "repl", node, "snapshot") }

// ReplChunk is the request subject for one chunk of node's snapshot.
func ReplChunk(pair, node string) string { return join(pair, "repl", node, "chunk") }

// ReplPiece is the request subject for one piece of a row of node's change
// log too large to travel in its batch stream.
func ReplPiece(pair, node string) string { return join(pair, "repl", node, "piece") }

// ReplAdmin is the subject of a replication admin verb ("repl.pause", …)
// answered by every node of pair. The verbs use the pair scope because the
// monitor answers every verb under a node's own admin subjects.
func ReplAdmin(pair, verb string) string { return Admin(pair, PairScope, verb) }

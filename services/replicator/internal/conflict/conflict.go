// Package conflict is the replicator's pure decision logic (SPEC §4 R3, R5):
// per-row version pairs and the master-wins rule. It has no I/O; the store
// calls Decide for every incoming change and carries out the outcome.
//
// # Versions
//
// A pair has exactly two nodes, so a version vector is a pair of counters:
// M counts the changes made to a row on the master, S those made on the
// standby. A local change raises the local counter (the capture triggers do
// it in the writer's transaction); applying a peer's change sets the row's
// version to the merge of both. Two versions are ordered when one covers the
// other (both counters at least as large); otherwise the changes were made
// concurrently — neither node had seen the other's change — and that is a
// conflict. No wall clock is involved.
//
// # The rule
//
// On a conflict the master's version wins, on both nodes: the master keeps
// its row and the standby takes the master's. Both then hold the merged
// version, which covers both changes, so the next change on either side is
// ordered after them. The losing version (always the standby's) is recorded
// in the conflict table on both nodes.
package conflict

import "fmt"

// Version is a row's version pair.
type Version struct {
	M uint64 // changes made on the master
	S uint64 // changes made on the standby
}

func (v Version) String() string { return fmt.Sprintf("(%d,%d)", v.M, v.S) }

// Covers reports whether v has seen every change o has.
func (v Version) Covers(o Version) bool { return v.M >= o.M && v.S >= o.S }

// Merge is the smallest version covering both.
func Merge(a, b Version) Version { return Version{M: max(a.M, b.M), S: max(a.S, b.S)} }

// Outcome is what to do with an incoming change.
type Outcome int

// Outcomes of Decide.
const (
	// Apply: the incoming change follows everything the local row has seen.
	Apply Outcome = iota + 1
	// Stale: the local row has already seen the incoming change (or a
	// later one); nothing to do.
	Stale
	// TakeIncoming: concurrent changes, the incoming one (the master's)
	// wins; the local version is the loser.
	TakeIncoming
	// KeepLocal: concurrent changes, the local one (the master's) wins; the
	// incoming version is the loser.
	KeepLocal
)

func (o Outcome) String() string {
	switch o {
	case Apply:
		return "apply"
	case Stale:
		return "stale"
	case TakeIncoming:
		return "take-incoming"
	case KeepLocal:
		return "keep-local"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// Conflict reports whether the outcome records a loser.
func (o Outcome) Conflict() bool { return o == TakeIncoming || o == KeepLocal }

// Decide returns what to do with an incoming change of version in, made on
// the master when fromMaster, to a row whose local version is local (the
// zero Version when the row was never seen), and the row's version after.
func Decide(local, in Version, fromMaster bool) (Outcome, Version) {
	switch {
	case local.Covers(in):
		return Stale, local
	case in.Covers(local):
		return Apply, in
	case fromMaster:
		return TakeIncoming, Merge(local, in)
	default:
		return KeepLocal, Merge(local, in)
	}
}

// Kind names a conflict by the operations of the winner and the loser, as
// the conflict table and the tandem.repl.conflict event show it:
// "update/update", "delete/update", "insert/insert", …
func Kind(winnerOp, loserOp string) string { return opName(winnerOp) + "/" + opName(loserOp) }

func opName(op string) string {
	switch op {
	case "i":
		return "insert"
	case "u":
		return "update"
	case "d":
		return "delete"
	}
	return op
}

package lineage

import "time"

// Ready is what the driver carries out after an input or a Next, in this
// order, and then calls Advance:
//
//  1. Abort: roll back the group being assembled (its open transaction);
//  2. Part: add the batch to the group — a new group when Part.New — and,
//     when Part.Commit is set, commit the group at that position; report
//     the outcome with Step(Applied) or Step(GroupFailed); CheckPeerFirst:
//     ask where the peer's stream starts and Step(PeerFirst);
//  3. SetPosition: record the peer's position without applying anything (a
//     genesis accepted);
//  4. Rejects: report bad input (metric, log, event);
//  5. State: set the replication state shown in the status;
//  6. Events: publish them;
//  7. Applied: tell the peer the position applied (with a reconcile
//     request when Reconcile is set);
//  8. Stop: leave the consumer — Next says what comes instead; Restart:
//     start a new consumer from the position (after a short pause).
type Ready struct {
	Abort       bool
	Part        *Part
	SetPosition *Position
	Rejects     []string
	State       *State
	Events      []Event
	Applied     *Ack
	Stop        bool
	// CheckPeerFirst: a batch left a gap after the position; the machine
	// needs the first sequence the peer's stream holds (Step(PeerFirst)).
	CheckPeerFirst bool
	Restart        bool
	// Verdict says what was decided, for the log and the transcripts.
	Verdict string
}

// Part is a part of the peer's group to apply.
type Part struct {
	New    bool      // start a new group (after Abort)
	Start  uint64    // the group's start
	Commit *Position // the final part: commit the group at this position
}

// State is a replication state and its reason.
type State struct{ Name, Reason string }

// Ack is the applied position sent to the peer.
type Ack struct {
	Pos       Position
	Reconcile string // non-empty: ask the peer (a standby) to reconcile, and why
	// ReconcileDB is the peer's database id the ask is about (see
	// AskCurrent).
	ReconcileDB string
}

// AskCurrent reports whether a standby whose database id is own acts on a
// master's request to reconcile its database about: a request about an
// id it has left since (it re-synced already; the master answered a batch
// of its old id still in flight) is ignored, or every such batch would
// make it re-sync again, then back off into blocked. An empty about (an
// older master) is always current.
func AskCurrent(about, own string) bool { return about == "" || about == own }

// EventBlocked is the type of the event published when replication becomes
// blocked for a new reason (tandem.repl.blocked).
const EventBlocked = "blocked"

// Event is an event to publish.
type Event struct {
	Type    string
	Reason  string
	RetryIn time.Duration
	Why     string // what needed the attempt, if not in Reason
}

func (rd Ready) empty() bool {
	return !rd.Abort && rd.Part == nil && rd.SetPosition == nil && len(rd.Rejects) == 0 && rd.State == nil &&
		len(rd.Events) == 0 && rd.Applied == nil && !rd.Stop && rd.Verdict == "" && !rd.CheckPeerFirst && !rd.Restart
}

// Ready returns what to carry out now (see Ready for the order).
func (r *Receiver) Ready() Ready { return r.rd }

// HasReady reports whether Ready has anything to carry out.
func (r *Receiver) HasReady() bool { return !r.rd.empty() }

// Advance tells the machine the last Ready was carried out.
func (r *Receiver) Advance() { r.rd = Ready{} }

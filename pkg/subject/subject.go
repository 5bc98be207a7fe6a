// Package subject names every NATS subject, stream, bucket and server name
// Tandem uses, in one place. Other programs rely on the client-facing ones
// (SPEC §8); the layout puts the pair first, then the kind, then the node, so
// that per-service permissions (SPEC §9) are plain subject patterns:
//
//	tandem.<pair>.hb.<node>               heartbeats (monitor of <node> publishes)
//	tandem.<pair>.ctl.<node>              peer-to-peer coordination sent to <node>'s monitor
//	tandem.<pair>.admin.<node>.<verb>     admin request/reply handled by <node>
//	tandem.<pair>.admin._pair.<verb>      admin scatter request answered by every node
//	tandem.<pair>.events.<node>.<kind>    events made on <node>; <kind> is the event type less "tandem."
//	tandem.<pair>.mirror.<node>.events    the event stream of <node> on its way to the peer's mirror
//	tandem.<pair>.notify                  notifications to sessions
//	tandem.<pair>.link.<node>             <node>'s leaf link to the peer, relayed by its NATS process
package subject

import (
	"fmt"
	"strings"
)

// Root is the first token of every Tandem subject.
const Root = "tandem"

// StateBucket is the KV bucket whose key <pair> holds the pair's current state.
const StateBucket = "tandem_state"

// ValidName reports whether s is a valid pair or node name
// ([a-z0-9][a-z0-9-]{0,31}); by hand, not by regular expression: every
// stored event's names are checked when a replay reads it (issue 19).
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' && i > 0) {
			return false
		}
	}
	return true
}

// CheckName returns an error naming what is wrong with a pair or node name.
func CheckName(what, s string) error {
	if !ValidName(s) {
		return fmt.Errorf("%s name %q is invalid: want [a-z0-9][a-z0-9-]{0,31}", what, s)
	}
	return nil
}

// Heartbeat is the subject on which node's monitor publishes its heartbeats.
func Heartbeat(pair, node string) string { return join(pair, "hb", node) }

// Heartbeats matches every node's heartbeats in pair.
func Heartbeats(pair string) string { return join(pair, "hb", "*") }

// Control is the subject on which node's monitor receives coordination
// messages (switchover handover) from its peer.
func Control(pair, node string) string { return join(pair, "ctl", node) }

// PairScope is the node token of admin requests that every node answers.
const PairScope = "_pair"

// Admin is the request subject of an admin verb handled by node (or by every
// node when node is PairScope).
func Admin(pair, node, verb string) string { return join(pair, "admin", node, verb) }

// AdminAll matches every admin request node handles.
func AdminAll(pair, node string) string { return join(pair, "admin", node, ">") }

// Event is the subject of an event of type typ (e.g. "tandem.node.activated")
// made on node.
func Event(pair, node, typ string) string {
	return join(pair, "events", node, strings.TrimPrefix(typ, Root+"."))
}

// EventsOf matches every event made on node.
func EventsOf(pair, node string) string { return join(pair, "events", node, ">") }

// Events matches every event of the pair.
func Events(pair string) string { return join(pair, "events", ">") }

// MirrorDeliver is where origin's durable mirror consumer delivers its
// event stream to the peer's mirror (the audit trail on both nodes).
func MirrorDeliver(pair, origin string) string { return join(pair, "mirror", origin, "events") }

// MirrorConsumer is the name of the durable consumer on a node's event
// stream that feeds the peer's mirror.
const MirrorConsumer = "tandem_mirror"

// Link is the subject on which a node's NATS process (tandem nats) relays
// the state of its leaf link to the peer, for a monitor in another process.
func Link(pair, node string) string { return join(pair, "link", node) }

// Notify is the subject of notifications to the pair's sessions.
func Notify(pair string) string { return join(pair, "notify") }

// EventStream is the JetStream stream holding the events made on node. The
// peer keeps a mirror of it under the same name.
func EventStream(pair, node string) string { return "tandem_events_" + pair + "_" + node }

// ServerName is the NATS server name, and JetStream domain, of a node's
// embedded server. It is stable across restarts.
func ServerName(pair, node string) string { return pair + "-" + node }

func join(pair string, rest ...string) string {
	return Root + "." + pair + "." + strings.Join(rest, ".")
}

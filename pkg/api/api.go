// Package api holds the admin requests and replies that the CLI and the
// services exchange over NATS request/reply (SPEC §8). Replies travel in the
// envelope of package reply. Every request carries a schema version and the
// pair it is meant for; Check refuses anything else.
package api

import (
	"fmt"
	"sort"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
)

// Version is the schema version of requests.
const Version = 1

// Admin verbs (the last token of the admin subject).
const (
	VerbStatus      = "status"
	VerbSwitchover  = "switchover"
	VerbMaintenance = "maintenance"
)

// Request is the common head of every admin request.
type Request struct {
	V    int    `json:"v"`
	Pair string `json:"pair"`
}

// Check validates the head of a request meant for pair.
func (r Request) Check(pair string) error {
	switch {
	case r.V != Version:
		return reply.Errorf(reply.CodeBadRequest, "schema version %d, want %d", r.V, Version)
	case r.Pair != pair:
		return &reply.Error{Code: reply.CodeWrongPair, Message: fmt.Sprintf("request for pair %q sent to pair %q", r.Pair, pair)}
	}
	return nil
}

// StatusRequest asks a node for its status.
type StatusRequest struct {
	Request
}

// SwitchoverRequest asks the master for a switchover (F8). To may be empty.
type SwitchoverRequest struct {
	Request
	To string `json:"to,omitempty"`
}

// MaintenanceRequest switches maintenance on or off (F10). For is a Go
// duration; empty means the configured default.
type MaintenanceRequest struct {
	Request
	On  bool   `json:"on"`
	For string `json:"for,omitempty"`
}

// Decode strictly decodes an admin request of at most reply.MaxSize bytes
// into v and checks its head.
func Decode(data []byte, pair string, v interface{ head() Request }) error {
	if err := event.DecodeStrict(data, reply.MaxSize, v); err != nil {
		return reply.Errorf(reply.CodeBadRequest, "malformed request: %v", err)
	}
	return v.head().Check(pair)
}

func (r *StatusRequest) head() Request      { return r.Request }
func (r *SwitchoverRequest) head() Request  { return r.Request }
func (r *MaintenanceRequest) head() Request { return r.Request }

// NodeStatus is one node as a node sees it (itself, or its peer).
type NodeStatus struct {
	Node        string `json:"node"`
	Role        string `json:"role"`
	State       string `json:"state"`
	Epoch       uint64 `json:"epoch"`
	Reachable   bool   `json:"reachable"`
	Maintenance bool   `json:"maintenance"`
	// Insecure is set when the node runs with protected mode off
	// (insecure: true and no nats.auth).
	Insecure bool `json:"insecure,omitempty"`
	// MaintenanceLeft is how long maintenance still lasts (Go duration).
	MaintenanceLeft string `json:"maintenance_left,omitempty"`
	// HeartbeatAgeMS is the age of the last heartbeat heard from this node,
	// as seen by its peer; absent for the answering node itself.
	HeartbeatAgeMS *int64 `json:"heartbeat_age_ms,omitempty"`
	// Switchover is "yielding" or "asked" while a switchover is under way.
	Switchover string `json:"switchover,omitempty"`
	// Server is the NATS server the node's monitor is connected to.
	Server string `json:"server,omitempty"`
	// Healthy: every health check of the node passes (F15); a node without
	// checks is healthy; null when not known (a monitor of an older
	// version), which counts as healthy. Checks are its checks, in
	// configuration order (the peer's as its last heartbeat said).
	Healthy *bool         `json:"healthy"`
	Checks  []CheckStatus `json:"checks"`
	// Replication, License and Sessions are those services' parts, nil
	// when the service did not answer.
	Replication *ReplStatus    `json:"replication,omitempty"`
	License     *LicenseState  `json:"license,omitempty"`
	Sessions    *SessionStatus `json:"sessions,omitempty"`
	// Audit is the node's audit guard's state (SPEC §7 A3), nil when the
	// node's server part did not answer.
	Audit *AuditState `json:"audit,omitempty"`
	// Witness is the node's view of the pair's witness (F14); absent
	// without one.
	Witness *WitnessStatus `json:"witness,omitempty"`
	// Unanswered names the parts above whose service did not answer
	// tandem status, by their keys (license, replication, sessions,
	// audit), so that a program can tell "no answer" from "nothing to
	// say"; absent when every part answered. Only the CLI sets it.
	Unanswered []string `json:"unanswered,omitempty"`
}

// WitnessStatus is a node's view of the pair's witness (F14).
type WitnessStatus struct {
	Reachable bool `json:"reachable"` // its last request was answered
	Lease     bool `json:"lease"`     // the node holds the lease
	Required  bool `json:"required"`  // witness.required
}

// CheckStatus is one health check of a node (F15).
type CheckStatus struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	// Output is the last line of the last run: the command's output, the
	// HTTP status, or why it failed.
	Output string `json:"output"`
	// Since is when the check last turned healthy or unhealthy (or the
	// monitor started).
	Since time.Time `json:"since"`
}

// IsHealthy reports Healthy, true when not known.
func (n NodeStatus) IsHealthy() bool { return n.Healthy == nil || *n.Healthy }

// StatusReply is a node's answer to a status request: itself and its view
// of the peer.
type StatusReply struct {
	Pair string      `json:"pair"`
	Self NodeStatus  `json:"self"`
	Peer *NodeStatus `json:"peer,omitempty"`
	Time time.Time   `json:"time"`
}

// PairStatus is the pair as `tandem status` prints it (SPEC §8).
type PairStatus struct {
	Pair   string       `json:"pair"`
	Epoch  uint64       `json:"epoch"`
	Active *string      `json:"active"`
	Nodes  []NodeStatus `json:"nodes"`
}

// Combine merges the replies of the nodes that answered into the pair's
// status. A node that answered speaks for itself; a node that did not is
// described by its peer's view (its last state, epoch and heartbeat age),
// marked unreachable — never left out, not even when its peer has not
// heard it since it started and so cannot name it (Node ""). The active node is the active one in
// the highest epoch (a node cut off may still believe it is active in an
// older epoch); a node that did not answer counts only while its peer still
// hears it (a dead node's last state is history, not the present).
func Combine(pair string, replies []StatusReply) PairStatus {
	byNode := map[string]NodeStatus{}
	gone := map[string]bool{} // did not answer, and its peer no longer hears it
	for _, r := range replies {
		s := r.Self
		s.Reachable = true
		byNode[s.Node] = s
	}
	for _, r := range replies {
		if r.Peer == nil || r.Peer.Node == "" {
			continue
		}
		if n, ok := byNode[r.Peer.Node]; ok {
			// The age of a node's heartbeats is known only to its peer.
			n.HeartbeatAgeMS = r.Peer.HeartbeatAgeMS
			byNode[n.Node] = n
			continue
		}
		p := *r.Peer
		gone[p.Node] = !p.Reachable
		p.Reachable = false
		byNode[p.Node] = p
	}
	if len(byNode) == 1 && len(replies) > 0 {
		// The one node that answered has not heard its peer since it
		// started, and hosts does not name it: the peer is still there,
		// unnamed (Node ""), unreachable.
		byNode[""] = NodeStatus{Role: otherRole(replies[0].Self.Role)}
	}
	ps := PairStatus{Pair: pair, Nodes: []NodeStatus{}}
	for _, n := range byNode {
		ps.Nodes = append(ps.Nodes, n)
	}
	// By name; a peer not named (never heard) comes last.
	sort.Slice(ps.Nodes, func(i, j int) bool {
		a, b := ps.Nodes[i].Node, ps.Nodes[j].Node
		if (a == "") != (b == "") {
			return b == ""
		}
		return a < b
	})
	for _, n := range ps.Nodes {
		if n.Epoch > ps.Epoch {
			ps.Epoch = n.Epoch
		}
		if n.State == "active" && !gone[n.Node] && (ps.Active == nil || n.Epoch > activeEpoch(ps)) {
			name := n.Node
			ps.Active = &name
		}
	}
	return ps
}

func otherRole(role string) string {
	switch role {
	case "master":
		return "standby"
	case "standby":
		return "master"
	}
	return ""
}

func activeEpoch(ps PairStatus) uint64 {
	for _, n := range ps.Nodes {
		if ps.Active != nil && n.Node == *ps.Active {
			return n.Epoch
		}
	}
	return 0
}

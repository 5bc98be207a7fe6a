// Package plan decides what a session agent changes when a notification
// arrives (SPEC N2, N8): given the session's current connections as the
// operating system reports them (CUPS queues, Windows printer connections,
// any resource an exec command manages) and a notification, it returns the
// connections to repoint and the ones to leave alone, with the reason. It is
// pure: no I/O, no clock, no goroutines. The agent (package agent) reads the
// connections, calls Make, and carries the plan out through a driver.
//
// The rules, in order, for each connection:
//
//   - a notification older than the epoch the agent has applied is stale:
//     nothing changes;
//   - a connection whose address is renamed in the notification (the
//     resources table names the same resource differently on the active
//     node) moves to the new address;
//   - a connection whose host is the failed node's host (the notification's
//     host map, compared without case) moves to the active node's host, the
//     rest of the address unchanged — unless its address is listed as
//     missing on the active node: then it stays and is reported;
//   - every other connection (another server's printer, one already on the
//     active node) is not touched.
//
// Because the plan is computed from the connections as they are, it is
// idempotent: a re-announcement, a second failover in a row, or a plan cut
// short by a newer notification all converge on the newest active node.
package plan

import (
	"fmt"
	"strings"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/session"
)

// Connection is one connection of the session as the operating system
// holds it.
type Connection struct {
	// ID names the connection for the driver: a CUPS queue name, a Windows
	// connection path, a resource name.
	ID string
	// Address is where it points: a device URI, a UNC path.
	Address string
	// Default is set on the (system or per-user) default printer.
	Default bool
}

// Change is one connection to repoint, keeping its ID and settings.
type Change struct {
	ID       string
	From, To string
	Default  bool
	// Exists is set when the session already holds a connection at To (a
	// Windows driver then does not add it again).
	Exists bool
}

// Skip is a connection that points at the failed node and stays.
type Skip struct {
	ID, Address string
	Reason      string
}

// Plan is the outcome of Make.
type Plan struct {
	Epoch   uint64
	Active  string // the node to point at
	Stale   bool   // the notification is older than the applied epoch
	Changes []Change
	Skipped []Skip
}

// Make is the plan for conns on notification n, for an agent that has
// applied epoch applied.
func Make(conns []Connection, n api.Notification, applied uint64) Plan {
	p := Plan{Epoch: n.Epoch, Active: n.Active}
	if n.Epoch < applied {
		p.Stale = true
		return p
	}
	held := make(map[string]bool, len(conns))
	for _, c := range conns {
		held[c.Address] = true
	}
	missing := make(map[string]bool, len(n.Missing))
	for _, m := range n.Missing {
		missing[strings.ToLower(m)] = true
	}
	for _, c := range conns {
		to, ok := target(c.Address, n)
		switch {
		case !ok || to == c.Address:
			continue
		case missing[strings.ToLower(c.Address)]:
			p.Skipped = append(p.Skipped, Skip{ID: c.ID, Address: c.Address,
				Reason: fmt.Sprintf("no resource of the same name on node %s", n.Active)})
		default:
			p.Changes = append(p.Changes, Change{ID: c.ID, From: c.Address, To: to, Default: c.Default, Exists: held[to]})
		}
	}
	return p
}

// target is where address moves on n; ok is false when it does not point at
// the failed node.
func target(address string, n api.Notification) (string, bool) {
	if to, ok := n.Renames[address]; ok {
		return to, true
	}
	for from, to := range n.Hosts {
		if moved, ok := session.ReplaceHost(address, from, to); ok {
			return moved, true
		}
	}
	return address, false
}

// Switched is the plan's changes as an acknowledgement lists them.
func (p Plan) Switched() []api.Switch {
	out := make([]api.Switch, 0, len(p.Changes))
	for _, c := range p.Changes {
		out = append(out, api.Switch{From: c.From, To: c.To})
	}
	return out
}

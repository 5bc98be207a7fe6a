// Package plan turns an activation into the notification sessions receive
// (SPEC N1, N4): which node is active, which failed, the host map and the
// per-resource renames, from the pair configuration as the database holds
// it, or from the notifier's own configuration when it was never read. It
// is pure: no I/O, no clock.
package plan

import (
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/session"
)

// Activation is a node becoming active in a new epoch, from an event.
type Activation struct {
	Pair    string
	Node    string
	Epoch   uint64
	Reason  string
	Outage  bool
	Time    time.Time
	EventID string
}

// FromEvent reads an activation from a monitor event, as
// event.ActivationOf answers (every consumer counts the same events). ok
// is false for any other event.
func FromEvent(e event.Envelope) (Activation, bool, error) {
	d, ok, err := event.ActivationOf(e)
	if err != nil || !ok {
		return Activation{}, false, err
	}
	return Activation{Pair: e.Pair, Node: e.Node, Epoch: e.Epoch, Reason: d.Reason, Outage: d.Outage, Time: e.Time, EventID: e.ID}, true, nil
}

// Pair is what the notifier knows of its pair.
type Pair struct {
	Self, Peer string            // Peer may be "" while unknown
	Hosts      map[string]string // the notifier's own configuration (hosts)
	// DB is the configuration read from the database (fresh or cached),
	// nil if never read; Source says which (api.SourceDatabase or
	// api.SourceCache).
	DB     *api.PairConfig
	Source string
}

// Notification is the notification for a.
func Notification(a Activation, p Pair) api.Notification {
	n := api.Notification{
		V: api.NotificationVersion, Pair: a.Pair, Epoch: a.Epoch, Active: a.Node,
		Failed: failed(a.Node, p), Hosts: map[string]string{},
		Reason: truncate(a.Reason, 1024), Outage: a.Outage, Time: a.Time.UTC(), Event: a.EventID,
		Source: api.SourceLocal,
	}
	hosts := p.Hosts
	if p.DB != nil {
		n.Source = p.Source
		if len(p.DB.Hosts) > 0 {
			hosts = p.DB.Hosts
		}
	}
	if n.Failed == "" {
		return n
	}
	from, to := hosts[n.Failed], hosts[n.Active]
	if from != "" && to != "" && from != to {
		n.Hosts[from] = to
	}
	if p.DB != nil {
		n.Renames = renames(p.DB.Resources, n.Failed, n.Active, from, to)
		n.Missing = missing(p.DB.Resources, n.Failed, n.Active)
	}
	return n
}

// failed is the node sessions leave: the one of the pair that is not active.
func failed(active string, p Pair) string {
	switch {
	case active != p.Self:
		return p.Self
	case p.Peer != "" && p.Peer != active:
		return p.Peer
	}
	return ""
}

// renames maps each resource of the failed node to the same-named resource
// of the active node where the name differs from what replacing the host
// gives.
func renames(rs []api.Resource, failed, active, fromHost, toHost string) map[string]string {
	byName := map[string]string{}
	for _, r := range rs {
		if r.Node == active {
			byName[r.Name] = r.Address
		}
	}
	out := map[string]string{}
	for _, r := range rs {
		if r.Node != failed {
			continue
		}
		to, ok := byName[r.Name]
		if !ok {
			continue
		}
		guess := r.Address
		if fromHost != "" && toHost != "" {
			guess, _ = session.ReplaceHost(r.Address, fromHost, toHost)
		}
		if guess != to {
			out[r.Address] = to
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// missing lists the addresses of the failed node's resources that have no
// resource of the same name on the active node, in the table's order. It
// says nothing when the table lists no resource of the active node at all
// (a table that describes one node only is no evidence of absence).
func missing(rs []api.Resource, failed, active string) []string {
	names := map[string]bool{}
	for _, r := range rs {
		if r.Node == active {
			names[r.Name] = true
		}
	}
	if len(names) == 0 {
		return nil
	}
	var out []string
	for _, r := range rs {
		if r.Node == failed && !names[r.Name] {
			out = append(out, r.Address)
		}
	}
	return out
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

package monitor

import (
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/svcrun"
)

// Build makes a node's monitor apart from its node's NATS server (the split
// layout: tandem-monitor): its view of the leaf link is what the node's
// server part relays (natsnode.FollowLink).
func Build(d svcrun.Deps) (svcrun.Service, error) {
	return BuildApart(d)
}

// BuildApart is Build with the monitor's own type (a whole node on an
// external NATS server, nats.url, keeps it for the demo and the dashboard).
func BuildApart(d svcrun.Deps) (*Service, error) {
	f, err := natsnode.FollowLink(d.Conn, d.Config.Pair, d.Config.Node, nil) // the monitor reports bad ones
	if err != nil {
		return nil, err
	}
	return New(Options{Config: d.Config, Conn: d.Conn, Link: RelayedLink(f), Events: d.Events, Log: d.Log,
		Registry: d.Registry, Apart: true})
}

package node

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/uplink"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/natsnode"
)

// PairStatusFunc asks a pair for its status over nc, as `tandem status`
// does; cmd/tandem sets it (Node.PairStatus) so that the uplink reports
// exactly what `tandem status --json` prints.
type PairStatusFunc func(ctx context.Context, nc *nats.Conn, pair string) (api.PairStatus, error)

// runUplink runs the uplink to the fleet hub (hub.url) until ctx ends; it
// does nothing without hub.url or without an embedded server.
func (n *Node) runUplink(ctx context.Context, js jetstream.JetStream) {
	if n.srv == nil || n.cfg.Hub.URL == "" {
		return
	}
	var hub *nats.Conn
	for {
		var err error
		hub, err = n.srv.ConnectHub("tandem uplink "+n.cfg.Node, nats.CustomInboxPrefix(natsnode.UplinkInboxPrefix(n.cfg.Pair)), reconnectInProcess)
		if err == nil {
			break
		}
		n.nlog.Warn().Err(err).Msg("no uplink to the hub yet; trying again in a second")
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
	defer hub.Close()
	peer, stop := audit.LearnPeer(n.nc, n.cfg.Pair, n.cfg.Node, n.cfg.Peer(), n.nlog)
	defer stop()
	o := uplink.Options{Pair: n.cfg.Pair, Node: n.cfg.Node, Local: n.nc, LocalJS: js, Hub: hub, Peer: peer,
		Every: n.UplinkEvery, Log: n.nlog.With().Str("part", "uplink").Logger()}
	if n.PairStatus != nil {
		o.Status = func(ctx context.Context) (api.PairStatus, error) { return n.PairStatus(ctx, n.nc, n.cfg.Pair) }
	}
	n.nlog.Info().Str("hub", n.cfg.Hub.URL).Msg("uplink to the fleet hub")
	if err := uplink.Run(ctx, o); err != nil {
		n.nlog.Error().Err(err).Msg("uplink stopped")
	}
}

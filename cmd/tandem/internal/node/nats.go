package node

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/buildinfo"
	"github.com/tandem-ha/tandem/pkg/admin"
)

// RunNATS runs only the node's NATS server (`tandem nats`, the split layout
// of deploy/): the embedded server with the node's configuration, its event
// stream and the durable mirror of the peer's, and the relay of the leaf
// link's state for the monitor, which runs in another process. The other
// services connect to it with nats.url.
func (n *Node) RunNATS(ctx context.Context) error {
	if !n.cfg.Embedded() {
		return errors.New("tandem run nats runs the node's own server: unset nats.url (the services use it, not the server)")
	}
	js, stop, err := n.start(ctx, 64, "nats") // the emitter: the audit guard's events
	if err != nil {
		return err
	}
	defer stop()
	reg := admin.NewRegistry()
	buildinfo.Register(reg)
	n.admin = admin.New(n.cfg.Admin.Listen, reg, func() error { return nil }, n.log)
	if err := n.admin.Start(); err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	defer n.closeAdmin()
	var wg sync.WaitGroup
	wg.Go(func() { n.guardAudit(ctx, js) })
	wg.Go(func() { n.srv.Relay(ctx, n.nc, n.cfg.NATS.Peer) })
	wg.Go(func() { n.runUplink(ctx, js) })
	close(n.started)
	n.nlog.Info().Str("domain", n.srv.Domain()).Msg("node's NATS server running")
	<-ctx.Done()
	wg.Wait()
	return nil
}

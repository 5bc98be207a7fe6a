package node

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/dashboard"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/svcrun"
)

// Dashboard is the part of the split layout that serves the live
// dashboard (`tandem run dashboard`).
const Dashboard = "dashboard"

// buildDashboard makes the live dashboard of a split node, which
// svcrun.RunPart serves at / of its admin.listen; it talks to the node's
// server as the admin user (nats.creds, or <nats.creds_dir>/admin.nk).
func buildDashboard(d svcrun.Deps) (svcrun.Service, error) {
	access, err := dashboard.LoadAccess(d.Config.Admin.Listen, d.Config.Admin.TokensFile, d.Config.Admin.UsersFile)
	if err != nil {
		return nil, err
	}
	return dashboard.New(dashboard.Options{Pair: d.Config.Pair, Node: d.Config.Node, Conn: d.Conn, JS: d.JS, Access: access, Log: d.Log}), nil
}

// newDashboard builds the live dashboard that a whole node serves at / of
// admin.listen, and mounts it on the admin server. With an external NATS
// server (nats.url) it talks to it as the admin user (nats.creds, or
// <nats.creds_dir>/admin.nk), whose rights it needs, and falls back on the
// node's connection when it cannot; the returned func closes the admin
// connection.
func (n *Node) newDashboard(js jetstream.JetStream) (*dashboard.Dashboard, func(), error) {
	access, err := dashboard.LoadAccess(n.cfg.Admin.Listen, n.cfg.Admin.TokensFile, n.cfg.Admin.UsersFile)
	if err != nil {
		return nil, nil, err
	}
	nc, closeConn := n.nc, func() {}
	if n.srv == nil {
		if c, cjs, err := n.adminConn(); err != nil {
			n.nlog.Warn().Err(err).Msg("the dashboard uses the monitor's own NATS user, which may lack the rights to show everything")
		} else {
			nc, js, closeConn = c, cjs, c.Close
		}
	}
	d := dashboard.New(dashboard.Options{Pair: n.cfg.Pair, Node: n.cfg.Node, Conn: nc, JS: js, Access: access, Log: n.log})
	n.admin.Handle("/", d.Handler())
	return d, closeConn, nil
}

// adminConn connects to nats.url as the admin user, for the dashboard of a
// whole node with an external server.
func (n *Node) adminConn() (*nats.Conn, jetstream.JetStream, error) {
	opts, err := natsnode.ClientOptions(n.cfg, config.RoleAdmin)
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard: %w", err)
	}
	opts = append(opts, nats.Name("tandem dashboard "+n.cfg.Node), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	c, err := nats.Connect(n.cfg.NATS.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("dashboard: connect to %s: %w", n.cfg.NATS.URL, err)
	}
	js, err := jetstream.New(c)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("dashboard: jetstream: %w", err)
	}
	return c, js, nil
}

package natsnode

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Options describe one node's server.
type Options struct {
	Pair, Node string
	// Listen is the client host:port; port -1 picks a free one
	// ("127.0.0.1:-1").
	Listen string
	// LeafListen is the leafnode host:port; "" means no listener, port -1 a
	// free one.
	LeafListen string
	// Peer is the peer's leafnode URL, nats-leaf://[user:password@]host:port.
	Peer string
	// Solicit makes this server dial Peer. Only the standby does.
	Solicit bool
	// StoreDir is the JetStream directory.
	StoreDir string
	// Logger receives the server's log lines: notices and debug lines at
	// debug, warnings and errors at their level.
	Logger zerolog.Logger

	// Users are extra users of account TANDEM, each one entry of a
	// nats-server users list, e.g. `{user: notifier, password: "$2a$11$…"}`.
	Users []string
	// LeafAuthorization, if set, is the body of the leafnodes authorization
	// block: who may solicit this server, e.g.
	// `user: leaf, password: "…", account: TANDEM`.
	LeafAuthorization string
	// RequireAuth limits the credential-less default identity to in-process
	// clients: TCP clients must present one of Users, the peer's leaf
	// connection one of Users or LeafAuthorization.
	RequireAuth bool
}

// FromConfig derives a node's server options from its configuration: the
// standby solicits, JetStream lives in <data_dir>/nats.
func FromConfig(c config.Config, log zerolog.Logger) Options {
	return Options{
		Pair:       c.Pair,
		Node:       c.Node,
		Listen:     c.NATS.Listen,
		LeafListen: c.NATS.LeafListen,
		Peer:       c.NATS.Peer,
		Solicit:    c.Role == config.Standby,
		StoreDir:   filepath.Join(c.DataDir, "nats"),
		Logger:     log,
	}
}

func (o Options) validate() error {
	var errs []error
	if err := subject.CheckName("pair", o.Pair); err != nil {
		errs = append(errs, err)
	}
	if err := subject.CheckName("node", o.Node); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := net.SplitHostPort(o.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: %w", o.Listen, err))
	}
	if o.LeafListen != "" {
		if _, _, err := net.SplitHostPort(o.LeafListen); err != nil {
			errs = append(errs, fmt.Errorf("leaf listen %q: %w", o.LeafListen, err))
		}
	}
	if o.Solicit && o.Peer == "" {
		errs = append(errs, errors.New("solicit without a peer URL"))
	}
	if o.StoreDir == "" {
		errs = append(errs, errors.New("store dir: empty"))
	}
	return errors.Join(errs...)
}

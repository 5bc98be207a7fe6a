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
	// LeafSeedFile is the nkey seed file (or .creds file) the soliciting
	// leaf remote signs in with, as the peer's LeafAuthorization expects.
	LeafSeedFile string
	// TLS, when TLS.Cert is set, is served on the client and leafnode ports.
	TLS TLSFiles

	// HubURLs, when set, are the fleet hub's leafnode URLs: a second leaf
	// remote, bound to the separate local account HubAccount (SPEC §11),
	// signed with HubSeedFile, verified with HubCA.
	HubURLs     []string
	HubSeedFile string
	HubCA       string
}

// TLSFiles are PEM file paths (config nats.tls.*).
type TLSFiles struct {
	// Cert and Key are the server's certificate (also the leaf remote's
	// client certificate when Verify is set).
	Cert, Key string
	// CA verifies the peer server's certificate when soliciting, and with
	// Verify the soliciting peer's on the leafnode port.
	CA string
	// Verify requires a certificate from the soliciting peer (mutual TLS on
	// the leafnode port only; clients authenticate by nkey).
	Verify bool
}

// FromConfig derives a node's server options from its configuration: the
// standby solicits, JetStream lives in <data_dir>/nats. With nats.auth every
// role becomes a user with the permissions of auth.go, the leaf role the
// leafnode authorization, and TCP clients must authenticate; the standby's
// remote signs in with nats.leaf_creds. nats.tls.* go to both ports.
func FromConfig(c config.Config, log zerolog.Logger) Options {
	o := Options{
		Pair:         c.Pair,
		Node:         c.Node,
		Listen:       anyPort(c.NATS.Listen),
		LeafListen:   anyPort(c.NATS.LeafListen),
		Peer:         c.NATS.Peer,
		Solicit:      c.Role == config.Standby,
		StoreDir:     filepath.Join(c.DataDir, "nats"),
		Logger:       log,
		Users:        append(AuthUsers(c.Pair, c.Node, c.NATS.Auth), SessionUsers(c.Pair, c.NATS.Sessions)...),
		RequireAuth:  len(c.NATS.Auth) > 0,
		LeafSeedFile: c.NATS.LeafSeedFile(),
		TLS:          TLSFiles{Cert: c.NATS.TLS.Cert, Key: c.NATS.TLS.Key, CA: c.NATS.TLS.CA, Verify: c.NATS.TLS.Verify},
	}
	o.HubURLs, _ = c.Hub.URLs() // checked by config.Validate
	o.HubSeedFile, o.HubCA = c.Hub.Creds, c.Hub.CA
	if key, ok := c.NATS.Auth[config.RoleLeaf]; ok {
		o.LeafAuthorization = LeafAuthorization(key)
	}
	return o
}

// anyPort turns port 0 of a configured host:port, which users write for
// "any free port" and nats-server reads as "its default" (4222, 7422: a
// collision with another node on the host), into nats-server's -1.
func anyPort(hostPort string) string {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil || port != "0" {
		return hostPort
	}
	return net.JoinHostPort(host, "-1")
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
	if (o.TLS.Cert == "") != (o.TLS.Key == "") {
		errs = append(errs, errors.New("tls: cert and key go together"))
	}
	if o.TLS.Verify && (o.TLS.CA == "" || o.TLS.Cert == "") {
		errs = append(errs, errors.New("tls verify: needs a CA and a certificate"))
	}
	if o.StoreDir == "" {
		errs = append(errs, errors.New("store dir: empty"))
	}
	return errors.Join(errs...)
}

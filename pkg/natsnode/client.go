package natsnode

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/config"
)

// jwtMarker starts the JWT of a .creds file.
var jwtMarker = []byte("-----BEGIN NATS USER JWT-----")

// CredsOption is the nats.go option that signs in with the credentials in
// path: a .creds file (a user JWT and its seed, nats.UserCredentials) or an
// nkey user seed file, as `tandem auth init` writes (a line starting with
// "SU", nats.NkeyOptionFromSeed). The file is read now, so a missing or
// unusable file is an error naming it, not a failed connection later.
func CredsOption(path string) (nats.Option, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials: %w", err)
	}
	defer clear(data)
	if bytes.Contains(data, jwtMarker) {
		return nats.UserCredentials(path), nil
	}
	opt, err := nats.NkeyOptionFromSeed(path)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: neither a .creds file nor an nkey user seed: %w", path, err)
	}
	return opt, nil
}

// TLSOption is the nats.go option that trusts the CA in caFile for the
// server's certificate (nats.tls.ca, or a CLI's --tls-ca); nil for "".
func TLSOption(caFile string) (nats.Option, error) {
	if caFile == "" {
		return nil, nil
	}
	if _, err := os.Stat(caFile); err != nil {
		return nil, fmt.Errorf("tls ca: %w", err)
	}
	return nats.RootCAs(caFile), nil
}

// ClientOptions are the options a service of the given role (config's Role*
// names: "monitor", "replicator", …) connects to nats.url with: its
// credentials (nats.creds, else <nats.creds_dir>/<role>.nk) and the CA of
// nats.tls.ca, and the role's inbox prefix. The caller adds its name,
// reconnect policy and handlers.
//
// Clients present no certificate: nats.tls.verify is mutual TLS between the
// two servers only, clients authenticate with their nkey.
func ClientOptions(c config.Config, role string) ([]nats.Option, error) {
	if !config.ValidAuthRole(role) || role == config.RoleLeaf {
		return nil, fmt.Errorf("nats client role %q: not a client role", role)
	}
	opts := []nats.Option{nats.CustomInboxPrefix(InboxPrefix(role))}
	var errs []error
	if path := c.NATS.CredsFile(role); path != "" {
		opt, err := CredsOption(path)
		errs = append(errs, err)
		opts = append(opts, opt)
	}
	if c.NATS.TLS.CA != "" {
		opt, err := TLSOption(c.NATS.TLS.CA)
		errs = append(errs, err)
		opts = append(opts, opt)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return opts, nil
}

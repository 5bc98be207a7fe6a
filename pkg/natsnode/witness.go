package natsnode

// The witness's NATS server (F14): an embedded nats-server with JetStream
// in account WITNESS, where `tandem witness` keeps one lease per pair and
// answers the pairs' lease requests in process.
//
// With WitnessOptions.Pairs set, every TCP client authenticates with its
// pair's nkey, and the pair's user may only ask for its own pair's lease
// (publish subject.WitnessLease(pair)) and read the answers under its own
// inbox prefix (WitnessInboxPrefix): no JetStream API, no other pair's
// subjects. Without Pairs the server is open, and protected mode
// (config.ValidateWitness) keeps it on loopback. The witness's own
// in-process connection is the no_auth_user, which TCP clients cannot use
// once the server is secured.

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// WitnessAccount is the witness server's account.
const WitnessAccount = "WITNESS"

// WitnessOptions describe a witness's NATS server.
type WitnessOptions struct {
	Listen   string            // host:port; port 0 picks a free one
	StoreDir string            // JetStream
	Pairs    map[string]string // pair → public nkey of its nodes' user; non-empty: authenticate
	TLS      TLSFiles          // Cert and Key serve TLS
	Logger   zerolog.Logger
}

// WitnessInboxPrefix is the inbox prefix of pair's nodes on the witness:
// the only replies their user may receive.
func WitnessInboxPrefix(pair string) string { return "_INBOX_witness_" + pair }

// WitnessPermissions are the permissions of pair's user on the witness: ask
// for its own lease, read its own replies.
func WitnessPermissions(pair string) permissions {
	return permissions{pub: []string{subject.WitnessLease(pair)}, sub: []string{WitnessInboxPrefix(pair) + ".>"}}
}

// StartWitnessServer starts the witness's NATS server and returns once it
// accepts connections, with its client URL.
func StartWitnessServer(o WitnessOptions) (*server.Server, string, error) {
	for _, pair := range slices.Sorted(maps.Keys(o.Pairs)) {
		if err := subject.CheckName("pair", pair); err != nil {
			return nil, "", err
		}
	}
	if host, port, err := net.SplitHostPort(o.Listen); err == nil && port == "0" {
		o.Listen = net.JoinHostPort(host, "-1") // nats-server's random port
	}
	id, err := newIdentities()
	if err != nil {
		return nil, "", err
	}
	sopts := &server.Options{}
	if err := sopts.ProcessConfigString(witnessConfig(o, id)); err != nil {
		return nil, "", fmt.Errorf("nats config: %w", err)
	}
	sopts.NoSigs = true
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, "", fmt.Errorf("nats server: %w", err)
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(natsLogger{l: o.Logger, fatal: fatal}, enabled(o.Logger, zerolog.DebugLevel),
		enabled(o.Logger, zerolog.TraceLevel), false)
	go ns.Start()
	if err := awaitReady(ns, "its NATS server", fatal); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, "", err
	}
	addr, ok := ns.Addr().(*net.TCPAddr)
	if !ok {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, "", errors.New("its NATS server has no client listener")
	}
	scheme := "nats://"
	if o.TLS.Cert != "" {
		scheme = "tls://"
	}
	return ns, scheme + reachable(sopts.Host, addr.Port), nil
}

// ConnectWitnessServer opens the witness's own in-process connection (the
// no_auth_user: JetStream and every pair's requests).
func ConnectWitnessServer(ns *server.Server) (*nats.Conn, error) {
	return nats.Connect("", nats.Name("tandem-witness"), nats.InProcessServer(ns), nats.NoReconnect())
}

// witnessConfig is the nats-server configuration text of a witness.
func witnessConfig(o WitnessOptions, id identities) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("server_name: %s", q("tandem-witness"))
	line("listen: %s", q(o.Listen))
	line("ping_interval: %q", "2s")
	line("ping_max: 3")
	line("write_deadline: %s", q(writeDeadline))
	line("max_payload: 64KB")
	line("jetstream { store_dir: %s }", q(o.StoreDir))
	line("system_account: %s", SysAccount)
	line("no_auth_user: %s", q(id.defaultPub))
	if o.TLS.Cert != "" {
		line("tls { cert_file: %s, key_file: %s }", q(o.TLS.Cert), q(o.TLS.Key))
	}
	self := fmt.Sprintf("{nkey: %s}", q(id.defaultPub))
	if len(o.Pairs) > 0 {
		self = fmt.Sprintf(`{nkey: %s, allowed_connection_types: ["IN_PROCESS"]}`, q(id.defaultPub))
	}
	users := []string{self}
	for _, pair := range slices.Sorted(maps.Keys(o.Pairs)) {
		users = append(users, userEntry(o.Pairs[pair], WitnessPermissions(pair)))
	}
	line("accounts {")
	line(`  %s { users: [{nkey: %s, allowed_connection_types: ["IN_PROCESS"]}] }`, SysAccount, q(id.sysPub))
	line("  %s {\n    jetstream: enabled\n    users: [\n      %s\n    ]\n  }", WitnessAccount, strings.Join(users, "\n      "))
	line("}")
	return b.String()
}

package natsnode

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// Account names of every node's server.
const (
	SysAccount = "SYS"
	AppAccount = "TANDEM"
	// HubAccount holds the uplink to the fleet hub: a separate account,
	// for in one account the leaf links A↔B, A↔hub, B↔hub form a loop that
	// the servers close (NOTES.md). Only the node's in-process uplink
	// (ConnectHub) is a user of it.
	HubAccount = "HUB"
)

// Server-wide timing (see the package doc).
const (
	pingInterval   = "1s"
	pingMax        = 3
	writeDeadline  = "3s"
	leafReconnect  = "100ms" // nats-server adds up to 100% jitter
	connErrReports = 200     // log every 200th failed dial (~30 s at 150 ms)
)

// identities are the nkeys generated at each start.
type identities struct {
	sys        nkeys.KeyPair // SYS, in process only: watches advisories
	sysPub     string
	defaultPub string        // TANDEM, seed discarded: the no_auth_user
	leafSeed   string        // the leaf remote's seed (Options.LeafSeedFile), or ""
	hub        nkeys.KeyPair // HUB, in process only: the uplink
	hubPub     string
	hubSeed    string // the hub remote's seed (Options.HubSeedFile), or ""
}

func newIdentities() (identities, error) {
	sys, err := nkeys.CreateUser()
	if err != nil {
		return identities{}, fmt.Errorf("create system nkey: %w", err)
	}
	sysPub, err := sys.PublicKey()
	if err != nil {
		return identities{}, fmt.Errorf("system nkey public key: %w", err)
	}
	def, err := nkeys.CreateUser()
	if err != nil {
		return identities{}, fmt.Errorf("create default nkey: %w", err)
	}
	defPub, err := def.PublicKey()
	def.Wipe()
	if err != nil {
		return identities{}, fmt.Errorf("default nkey public key: %w", err)
	}
	hub, err := nkeys.CreateUser()
	if err != nil {
		return identities{}, fmt.Errorf("create hub nkey: %w", err)
	}
	hubPub, err := hub.PublicKey()
	if err != nil {
		return identities{}, fmt.Errorf("hub nkey public key: %w", err)
	}
	return identities{sys: sys, sysPub: sysPub, defaultPub: defPub, hub: hub, hubPub: hubPub}, nil
}

// readLeafSeed reads the user seed the leaf remote signs in with from a
// seed file or a .creds file.
func readLeafSeed(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("leaf credentials: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(data)
	clear(data)
	if err != nil {
		return "", fmt.Errorf("leaf credentials %s: %w", path, err)
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", fmt.Errorf("leaf credentials %s: %w", path, err)
	}
	if len(seed) < 2 || seed[0] != 'S' || seed[1] != 'U' {
		return "", fmt.Errorf("leaf credentials %s: not a user seed (SU…)", path)
	}
	return string(seed), nil
}

// serverConfig is the nats-server configuration text of o.
func serverConfig(o Options, id identities) string {
	name := subject.ServerName(o.Pair, o.Node)
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("server_name: %s", q(name))
	line("listen: %s", q(o.Listen))
	line("ping_interval: %s", q(pingInterval))
	line("ping_max: %d", pingMax)
	line("write_deadline: %s", q(writeDeadline))
	line("connect_error_reports: %d", connErrReports)
	line("reconnect_error_reports: %d", connErrReports)
	line("jetstream { store_dir: %s, domain: %s }", q(o.StoreDir), q(name))
	line("system_account: %s", SysAccount)
	line("no_auth_user: %s", q(id.defaultPub))
	if o.TLS.Cert != "" {
		line("tls { cert_file: %s, key_file: %s }", q(o.TLS.Cert), q(o.TLS.Key))
	}
	b.WriteString(accountsBlock(o, id))
	b.WriteString(leafBlock(o, id))
	return b.String()
}

func accountsBlock(o Options, id identities) string {
	inProc := `allowed_connection_types: ["IN_PROCESS"]`
	def := fmt.Sprintf("{nkey: %s}", q(id.defaultPub))
	if o.RequireAuth {
		def = fmt.Sprintf("{nkey: %s, %s}", q(id.defaultPub), inProc)
	}
	users := append([]string{def}, o.Users...)
	var b strings.Builder
	b.WriteString("accounts {\n")
	fmt.Fprintf(&b, "  %s { users: [{nkey: %s, %s}] }\n", SysAccount, q(id.sysPub), inProc)
	if len(o.HubURLs) > 0 {
		fmt.Fprintf(&b, "  %s { users: [{nkey: %s, %s}] }\n", HubAccount, q(id.hubPub), inProc)
	}
	fmt.Fprintf(&b, "  %s {\n    jetstream: enabled\n    users: [\n", AppAccount)
	for _, u := range users {
		fmt.Fprintf(&b, "      %s\n", u)
	}
	b.WriteString("    ]\n  }\n}\n")
	return b.String()
}

// leafTLS is the body of a leafnodes tls block: the listener's (its
// certificate; with Verify the CA and verify) or the remote's (the CA; with
// Verify its own certificate as the client certificate).
func leafTLS(t TLSFiles, remote bool) string {
	var parts []string
	if !remote || t.Verify {
		parts = append(parts, "cert_file: "+q(t.Cert), "key_file: "+q(t.Key))
	}
	if remote || t.Verify {
		parts = append(parts, "ca_file: "+q(t.CA))
	}
	if !remote && t.Verify {
		parts = append(parts, "verify: true")
	}
	return strings.Join(parts, ", ")
}

func leafBlock(o Options, id identities) string {
	if o.LeafListen == "" && !o.Solicit && len(o.HubURLs) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("leafnodes {\n")
	fmt.Fprintf(&b, "  reconnect: %s\n", q(leafReconnect))
	// The pair's link without compression, both ends (issue 19): the
	// default s2_auto leaves a link under 10 ms round trip uncompressed but
	// framed, and the server reads each frame in five calls — half of an
	// idle node's reads; and past 100 ms of round trip (a loaded machine)
	// it goes up to s2_best, which took a fifth of the CPU of a failover to
	// 10,000 sessions. The hub's uplink keeps the default.
	b.WriteString("  compression: off\n")
	if o.LeafListen != "" {
		fmt.Fprintf(&b, "  listen: %s\n  no_advertise: true\n", q(o.LeafListen))
	}
	if o.LeafListen != "" && o.TLS.Cert != "" {
		fmt.Fprintf(&b, "  tls { %s }\n", leafTLS(o.TLS, false))
	}
	if o.LeafAuthorization != "" {
		fmt.Fprintf(&b, "  authorization { %s }\n", o.LeafAuthorization)
	}
	var remotes []string
	if o.Solicit {
		var r strings.Builder
		fmt.Fprintf(&r, "{url: %s, account: %s, ignore_discovered_servers: true, compression: off", q(o.Peer), AppAccount)
		if id.leafSeed != "" {
			fmt.Fprintf(&r, ", nkey: %s", q(id.leafSeed))
		}
		if o.TLS.CA != "" {
			fmt.Fprintf(&r, ", tls { %s }", leafTLS(o.TLS, true))
		}
		remotes = append(remotes, r.String()+"}")
	}
	if len(o.HubURLs) > 0 {
		remotes = append(remotes, hubRemote(o, id))
	}
	if len(remotes) > 0 {
		fmt.Fprintf(&b, "  remotes: [%s]\n", strings.Join(remotes, ", "))
	}
	b.WriteString("}\n")
	return b.String()
}

// hubRemote is the leaf remote of the uplink to the fleet hub, bound to the
// separate account HubAccount.
func hubRemote(o Options, id identities) string {
	urls := make([]string, len(o.HubURLs))
	for i, u := range o.HubURLs {
		urls[i] = q(u)
	}
	var r strings.Builder
	fmt.Fprintf(&r, "{urls: [%s], account: %s", strings.Join(urls, ", "), HubAccount)
	if id.hubSeed != "" {
		fmt.Fprintf(&r, ", nkey: %s", q(id.hubSeed))
	}
	if o.HubCA != "" {
		fmt.Fprintf(&r, ", tls { ca_file: %s }", q(o.HubCA))
	}
	return r.String() + "}"
}

// q quotes s for the configuration syntax (same escapes as Go for the
// characters that occur in names, addresses and paths).
func q(s string) string { return strconv.Quote(s) }

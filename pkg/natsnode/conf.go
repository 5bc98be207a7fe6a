package natsnode

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// Account names of every node's server.
const (
	SysAccount = "SYS"
	AppAccount = "TANDEM"
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
	defaultPub string // TANDEM, seed discarded: the no_auth_user
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
	return identities{sys: sys, sysPub: sysPub, defaultPub: defPub}, nil
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
	b.WriteString(accountsBlock(o, id))
	b.WriteString(leafBlock(o))
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
	fmt.Fprintf(&b, "  %s {\n    jetstream: enabled\n    users: [\n", AppAccount)
	for _, u := range users {
		fmt.Fprintf(&b, "      %s\n", u)
	}
	b.WriteString("    ]\n  }\n}\n")
	return b.String()
}

func leafBlock(o Options) string {
	if o.LeafListen == "" && !o.Solicit {
		return ""
	}
	var b strings.Builder
	b.WriteString("leafnodes {\n")
	fmt.Fprintf(&b, "  reconnect: %s\n", q(leafReconnect))
	if o.LeafListen != "" {
		fmt.Fprintf(&b, "  listen: %s\n  no_advertise: true\n", q(o.LeafListen))
	}
	if o.LeafAuthorization != "" {
		fmt.Fprintf(&b, "  authorization { %s }\n", o.LeafAuthorization)
	}
	if o.Solicit {
		fmt.Fprintf(&b, "  remotes: [{url: %s, account: %s, ignore_discovered_servers: true}]\n",
			q(o.Peer), AppAccount)
	}
	b.WriteString("}\n")
	return b.String()
}

// q quotes s for the configuration syntax (same escapes as Go for the
// characters that occur in names, addresses and paths).
func q(s string) string { return strconv.Quote(s) }

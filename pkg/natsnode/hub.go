package natsnode

// The fleet hub (SPEC §11): one server of a NATS cluster that the pairs'
// nodes uplink to. Like a node's server it is an embedded nats-server, with
// JetStream in domain subject.HubDomain, cluster routes to its peers (the
// fleet's streams and buckets are replicated on three servers once three
// are routed), a leafnode listener for the uplinks and a client port.
//
// Accounts: SYS, and FLEET (JetStream) where everything lives. Each pair's
// uplink signs in (over the leafnode port) as the user of its key in
// HubOptions.Uplinks, whose permissions name only its own pair's subjects:
// it may publish its events, notifications, status and last value, and
// receive its own admin requests and session acknowledgements. The admin
// user may use every pair's admin verbs and read the fleet; the reader may
// only read; sessions read every pair's notifications and last value and
// acknowledge; a pair's session user (HubOptions.Sessions) reads and
// acknowledges only its own pair's. Without any key the hub is open, and protected mode
// (config.ValidateHub) keeps it on loopback.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// FleetAccount is the hub's application account.
const FleetAccount = "FLEET"

// HubCluster is the cluster name of every hub server.
const HubCluster = "tandem-hub"

// HubOptions describe one hub server.
type HubOptions struct {
	Name                              string
	Listen, LeafListen, ClusterListen string // host:port; port -1 picks a free one
	Routes                            []string
	// ClusterSecret, when set, is the password routes authenticate with
	// (config.ClusterSecret), accepted and presented by every hub server.
	ClusterSecret string
	StoreDir      string
	// Auth maps a fleet role (config.FleetRoles) to its public nkey;
	// Uplinks a pair to its uplink's; Sessions a pair to its sessions'.
	// Any makes every client and leaf connection authenticate.
	Auth, Uplinks, Sessions map[string]string
	TLS                     TLSFiles
	Retention               HubRetention
	Logger                  zerolog.Logger
}

// HubRetention is the fleet stream's retention (audit.* keys).
type HubRetention struct {
	MaxAge   time.Duration
	MaxBytes int64 // 0: no limit
}

// HubFromConfig derives a hub server's options from `tandem hub`'s
// configuration (config.LoadHub).
func HubFromConfig(c config.Config, log zerolog.Logger) (HubOptions, error) {
	maxBytes, err := c.Audit.MaxBytesValue()
	if err != nil {
		return HubOptions{}, err
	}
	var secret string
	if c.Hub.ClusterSecret != "" {
		if secret, err = config.ClusterSecret(c.Hub.ClusterSecret); err != nil {
			return HubOptions{}, fmt.Errorf("hub.cluster_secret: %w", err)
		}
	}
	return HubOptions{ClusterSecret: secret,
		Name: c.Hub.Name, Listen: c.Hub.Listen, LeafListen: c.Hub.LeafListen, ClusterListen: c.Hub.ClusterListen,
		Routes: c.Hub.Routes, StoreDir: c.DataDir + "/nats", Auth: c.Hub.Auth, Uplinks: c.Hub.Uplinks, Sessions: c.Hub.Sessions,
		TLS:       TLSFiles{Cert: c.NATS.TLS.Cert, Key: c.NATS.TLS.Key, CA: c.NATS.TLS.CA, Verify: c.NATS.TLS.Verify},
		Retention: HubRetention{MaxAge: c.Audit.MaxAge, MaxBytes: maxBytes},
		Logger:    log,
	}, nil
}

// Hub is a running hub server.
type Hub struct {
	opts      HubOptions
	ns        *server.Server
	clientURL string
	leafURL   string
	routeURL  string
}

// secured reports whether connections must authenticate.
func (o HubOptions) secured() bool {
	return len(o.Auth) > 0 || len(o.Uplinks) > 0 || len(o.Sessions) > 0
}

// Replicas is how many copies of the fleet's streams the cluster keeps:
// 3 with at least two routes (a cluster of three or more), else 1.
func (o HubOptions) Replicas() int {
	if len(o.Routes) >= 2 {
		return 3
	}
	return 1
}

// StartHub starts the hub server and returns once it accepts connections.
// The fleet's bucket and stream are made by EnsureFleet (they need the
// cluster's quorum).
func StartHub(o HubOptions) (*Hub, error) {
	if err := subject.CheckName("hub", o.Name); err != nil {
		return nil, err
	}
	id, err := newIdentities()
	if err != nil {
		return nil, err
	}
	sopts := &server.Options{}
	if err := sopts.ProcessConfigString(hubConfig(o, id)); err != nil {
		return nil, fmt.Errorf("hub nats config: %w", err)
	}
	sopts.NoSigs = true
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("new hub server: %w", err)
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(natsLogger{l: o.Logger, fatal: fatal}, enabled(o.Logger, zerolog.DebugLevel),
		enabled(o.Logger, zerolog.TraceLevel), false)
	go ns.Start()
	h := &Hub{opts: o, ns: ns}
	if err := h.waitReady(sopts, fatal); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	return h, nil
}

func (h *Hub) waitReady(sopts *server.Options, fatal <-chan string) error {
	if err := awaitReady(h.ns, "hub server "+h.opts.Name, fatal); err != nil {
		return err
	}
	addr, ok := h.ns.Addr().(*net.TCPAddr)
	if !ok {
		return errors.New("hub server has no client listener")
	}
	h.clientURL = "nats://" + reachable(sopts.Host, addr.Port)
	h.leafURL = "nats-leaf://" + reachable(sopts.LeafNode.Host, sopts.LeafNode.Port)
	if sopts.Cluster.Port > 0 {
		h.routeURL = "nats-route://" + reachable(sopts.Cluster.Host, sopts.Cluster.Port)
	}
	return nil
}

// ClientURL, LeafURL and RouteURL are the hub server's addresses
// (RouteURL "" when it is not clustered).
func (h *Hub) ClientURL() string { return h.clientURL }
func (h *Hub) LeafURL() string   { return h.leafURL }
func (h *Hub) RouteURL() string  { return h.routeURL }

// NATS is the underlying server.
func (h *Hub) NATS() *server.Server { return h.ns }

// Connect opens an in-process connection in account FLEET with every right
// (the hub's own part: it makes the fleet's streams).
func (h *Hub) Connect(name string) (*nats.Conn, error) {
	return nats.Connect("", nats.Name(name), nats.InProcessServer(h.ns), nats.NoReconnect())
}

// Shutdown stops the server; it returns when the server is down.
func (h *Hub) Shutdown() {
	h.ns.Shutdown()
	h.ns.WaitForShutdown()
}

// RouteUser is the user hub servers' routes authenticate as, with
// HubOptions.ClusterSecret as its password.
const RouteUser = "tandem-hub"

// routeURL is route r, with the cluster's credentials when it has a secret.
func (o HubOptions) routeURL(r string) string {
	if o.ClusterSecret == "" {
		return r
	}
	u, err := url.Parse(r)
	if err != nil {
		return r // config.ValidateHub checked it
	}
	u.User = url.UserPassword(RouteUser, o.ClusterSecret)
	return u.String()
}

// FleetKVConfigs are the hub's buckets: every pair's status, and every
// pair's last notification (for sessions connected to the hub, N5).
func (o HubOptions) FleetKVConfigs() []jetstream.KeyValueConfig {
	return []jetstream.KeyValueConfig{
		{Bucket: subject.FleetBucket, Description: "every pair's current status (tandem status --json)", History: 1,
			Storage: jetstream.FileStorage, Replicas: o.Replicas()},
		{Bucket: subject.StateBucket, Description: "every pair's last notification (SPEC §5 N5), for sessions on the hub", History: 1,
			Storage: jetstream.FileStorage, Replicas: o.Replicas()},
	}
}

// FleetStreamConfig is the hub's stream of every pair's events: deduplicated
// by event id (the uplinks publish with Nats-Msg-Id), deletes and purges
// refused, retention as the nodes' audit streams (SPEC §7 A3).
func (o HubOptions) FleetStreamConfig() jetstream.StreamConfig {
	maxBytes := o.Retention.MaxBytes
	if maxBytes <= 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        subject.FleetStream,
		Description: "every pair's events, as their uplinks deliver them",
		Subjects:    []string{subject.FleetEvents},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas(),
		MaxAge:      o.Retention.MaxAge,
		MaxBytes:    maxBytes,
		Duplicates:  o.duplicateWindow(),
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// FleetDuplicateWindow is how long the fleet stream remembers an event's
// id: both nodes of a pair forward the events of each (its own, and its
// mirror of the peer's), so an event is stored once as long as the two
// copies arrive within it — a node cut off from the hub for longer than
// this while its peer was not stores the peer's events of that time twice.
const FleetDuplicateWindow = time.Hour

// duplicateWindow is FleetDuplicateWindow, or the retention when shorter
// (JetStream refuses a window beyond MaxAge).
func (o HubOptions) duplicateWindow() time.Duration {
	if o.Retention.MaxAge > 0 && o.Retention.MaxAge < FleetDuplicateWindow {
		return o.Retention.MaxAge
	}
	return FleetDuplicateWindow
}

// EnsureFleet makes (or updates) the fleet's buckets and stream, trying
// again every second until ctx ends: in a cluster they need a quorum of the
// hub servers.
func (h *Hub) EnsureFleet(ctx context.Context) error {
	js, closeConn, err := h.jetStream("tandem hub " + h.opts.Name)
	if err != nil {
		return err
	}
	defer closeConn()
	for {
		err = h.ensureOnce(ctx, js)
		if err == nil {
			return nil
		}
		h.opts.Logger.Debug().Err(err).Msg("fleet streams not made yet")
		select {
		case <-ctx.Done():
			return fmt.Errorf("fleet streams: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// jetStream is an in-process connection to the hub server named name,
// and its JetStream; closeConn closes the connection.
func (h *Hub) jetStream(name string) (js jetstream.JetStream, closeConn func(), err error) {
	nc, err := h.Connect(name)
	if err != nil {
		return nil, nil, err
	}
	if js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, nil, err
	}
	return js, nc.Close, nil
}

func (h *Hub) ensureOnce(ctx context.Context, js jetstream.JetStream) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, kv := range h.opts.FleetKVConfigs() {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kv); err != nil {
			return fmt.Errorf("bucket %s: %w", kv.Bucket, err)
		}
	}
	if _, err := js.CreateOrUpdateStream(ctx, h.opts.FleetStreamConfig()); err != nil {
		return fmt.Errorf("stream %s: %w", subject.FleetStream, err)
	}
	return nil
}

// hubConfig is the nats-server configuration text of a hub server; the
// README shows the same for a plain nats-server cluster.
func hubConfig(o HubOptions, id identities) string {
	var b strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	line("server_name: %s", q(o.Name))
	line("listen: %s", q(o.Listen))
	line("ping_interval: %q", "2s")
	line("ping_max: 3")
	line("write_deadline: %s", q(writeDeadline))
	line("max_payload: 1MB")
	line("jetstream { store_dir: %s, domain: %s }", q(o.StoreDir), q(subject.HubDomain))
	line("system_account: %s", SysAccount)
	line("no_auth_user: %s", q(id.defaultPub)) // in process only when secured
	tls := ""
	if o.TLS.Cert != "" {
		tls = fmt.Sprintf("tls { %s }", leafTLS(o.TLS, false))
		line("tls { cert_file: %s, key_file: %s }", q(o.TLS.Cert), q(o.TLS.Key))
	}
	if len(o.Routes) > 0 {
		routes := make([]string, len(o.Routes))
		for i, r := range o.Routes {
			routes[i] = q(o.routeURL(r))
		}
		entries := []string{"name: " + q(HubCluster), "listen: " + q(o.ClusterListen), "routes: [" + strings.Join(routes, ", ") + "]"}
		if o.ClusterSecret != "" {
			entries = append(entries, fmt.Sprintf("authorization { user: %s, password: %s }", q(RouteUser), q(o.ClusterSecret)))
		}
		if tls != "" {
			entries = append(entries, tls)
		}
		line("cluster { %s }", strings.Join(entries, ", "))
	}
	line("leafnodes { listen: %s, no_advertise: true %s }", q(o.LeafListen), tls)
	b.WriteString(hubAccounts(o, id))
	return b.String()
}

func hubAccounts(o HubOptions, id identities) string {
	inProc := `allowed_connection_types: ["IN_PROCESS"]`
	users := []string{fmt.Sprintf("{nkey: %s, %s}", q(id.defaultPub), inProc)}
	if !o.secured() {
		users[0] = fmt.Sprintf("{nkey: %s}", q(id.defaultPub))
	}
	for _, role := range slices.Sorted(maps.Keys(o.Auth)) {
		users = append(users, userEntry(o.Auth[role], fleetPermissions(role)))
	}
	for _, pair := range slices.Sorted(maps.Keys(o.Uplinks)) {
		u := userEntry(o.Uplinks[pair], UplinkPermissions(pair))
		users = append(users, strings.Replace(u, `["STANDARD"]`, `["LEAFNODE"]`, 1))
	}
	for _, pair := range slices.Sorted(maps.Keys(o.Sessions)) {
		users = append(users, userEntry(o.Sessions[pair], SessionPermissions(pair)))
	}
	var b strings.Builder
	b.WriteString("accounts {\n")
	fmt.Fprintf(&b, "  %s { users: [{nkey: %s, %s}] }\n", SysAccount, q(id.sysPub), inProc)
	fmt.Fprintf(&b, "  %s {\n    jetstream: enabled\n    users: [\n", FleetAccount)
	for _, u := range users {
		fmt.Fprintf(&b, "      %s\n", u)
	}
	b.WriteString("    ]\n  }\n}\n")
	return b.String()
}

// UplinkInboxPrefix is the inbox prefix of pair's uplink on the hub: the
// only replies (to its publishes into the fleet's stream and buckets) it
// may receive.
func UplinkInboxPrefix(pair string) string { return "_INBOX_uplink_" + pair }

// UplinkPermissions are the permissions of pair's uplink on the hub: it
// publishes its own pair's events, notifications, status and last value,
// takes the admin requests and the session acknowledgements addressed to
// its own pair, and answers the requests into the fleet admins' inboxes.
// allow_responses alone does not let the answers through: nats-server
// applies a leaf user's permissions on the node's side of the link too,
// where no request was seen and no answer is allowed (measured: the admin
// got no answer at all), so the admins' inbox prefix is allowed outright.
func UplinkPermissions(pair string) permissions {
	return permissions{
		pub: []string{subject.Events(pair), subject.Notify(pair), subject.ViaHub(subject.FleetKey(pair)), subject.ViaHub(subject.StateKey(pair)),
			InboxPrefix(config.RoleAdmin) + ".>"},
		sub: []string{subject.AdminAll(pair, "*"), subject.License(pair, "*", "*"), subject.Acks(pair), subject.AckBatches(pair),
			UplinkInboxPrefix(pair) + ".>"},
		responses: true,
	}
}

// SessionPermissions are the permissions on the hub of pair's sessions
// (hub.sessions): as a node's session user, only that pair's notifications
// and last value (key <pair> of the state bucket, read by direct get), and
// its acknowledgements, which the pair's uplinks take down into the pair.
func SessionPermissions(pair string) permissions {
	stream := "KV_" + subject.StateBucket
	return permissions{
		pub: []string{subject.Acks(pair), subject.AckBatches(pair), "$JS.API.STREAM.INFO." + stream,
			"$JS.API.DIRECT.GET." + stream + ".$KV." + subject.StateBucket + "." + pair},
		sub: []string{subject.Notify(pair), InboxPrefix(config.RoleSession) + ".>"},
	}
}

// fleetRead is the JetStream API a fleet reader uses: stream and bucket
// info, message reads, and ordered consumers (fleet status, audit replay).
var fleetRead = []string{"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.INFO.*",
	"$JS.API.STREAM.MSG.GET.*", "$JS.API.DIRECT.GET.>", "$JS.API.CONSUMER.CREATE.*", "$JS.API.CONSUMER.CREATE.*.>",
	"$JS.API.CONSUMER.INFO.*.*", "$JS.API.CONSUMER.MSG.NEXT.*.*", "$JS.API.CONSUMER.DELETE.*.*", jsFlow}

// fleetPermissions are the hub users' permissions by fleet role.
func fleetPermissions(role string) permissions {
	inbox := InboxPrefix(config.RoleAdmin) + ".>" // the CLI's inbox
	switch role {
	case config.FleetAdmin:
		return permissions{
			pub: append([]string{subject.Root + ".*.admin.>", subject.Root + ".*.license.*.*"}, fleetRead...),
			sub: []string{subject.FleetEvents, subject.Root + ".*.notify", inbox},
		}
	case config.FleetReader:
		return permissions{pub: fleetRead, sub: []string{subject.FleetEvents, subject.Root + ".*.notify", inbox}}
	case config.FleetSession:
		stream := "KV_" + subject.StateBucket
		return permissions{
			pub: []string{subject.Acks("*"), subject.AckBatches("*"), "$JS.API.STREAM.INFO." + stream,
				"$JS.API.DIRECT.GET." + stream + ".>", "$JS.API.CONSUMER.CREATE." + stream + ".>", "$JS.FC." + stream + ".>"},
			sub: []string{subject.Notify("*"), InboxPrefix(config.RoleSession) + ".>"},
		}
	}
	panic(fmt.Sprintf("natsnode: no fleet permissions for role %q", role))
}

// StartHubCluster starts n hub servers hub1…hubN on loopback, routed to
// each other, with JetStream under dir/<name>, edit applied to each one's
// options (for tests, benchmarks and the demo). The cluster ports are picked
// free beforehand (routes name them); the other ports are random.
func StartHubCluster(n int, dir string, log zerolog.Logger, edit func(*HubOptions)) ([]*Hub, error) {
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var hubs []*Hub
	for i := range n {
		o := HubOptions{Name: fmt.Sprintf("hub%d", i+1), Listen: "127.0.0.1:-1", LeafListen: "127.0.0.1:-1",
			ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[i]), StoreDir: fmt.Sprintf("%s/hub%d", dir, i+1),
			Retention: HubRetention{MaxAge: 24 * time.Hour}, Logger: log.With().Str("hub", fmt.Sprintf("hub%d", i+1)).Logger()}
		for j, p := range ports {
			if j != i && n > 1 {
				o.Routes = append(o.Routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
			}
		}
		if edit != nil {
			edit(&o)
		}
		h, err := StartHub(o)
		if err != nil {
			for _, h := range hubs {
				h.Shutdown()
			}
			return nil, err
		}
		hubs = append(hubs, h)
	}
	return hubs, nil
}

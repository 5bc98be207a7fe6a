// Package config is a node's configuration (SPEC §8): one struct, its
// defaults in one place (Default), the cross-field rules in Validate, and
// loading from a YAML file, TANDEM_* environment variables and flags (load.go),
// in that order of precedence (flags win). The keys come from the struct's
// yaml tags (Keys), so the three sources cannot drift apart. Load takes the
// environment and the flags as arguments: only cmd/ reads the process's own.
package config

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/tandem-ha/tandem/pkg/member"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Role is fixed at install: master or standby (pkg/member, where the
// type lives; these names keep configuration code short).
type Role = member.Role

// Roles.
const (
	Master  = member.Master
	Standby = member.Standby
)

// Peer is the other node of the pair as the configuration names it: the
// key of hosts that is not this node; "" when hosts does not name it. Every
// service then learns it from the peer's heartbeats (pkg/heartbeat.Peer).
func (c Config) Peer() string {
	for n := range c.Hosts {
		if n != c.Node {
			return n
		}
	}
	return ""
}

// Failback policies (F9).
const (
	FailbackManual    = "manual"
	FailbackAutomatic = "automatic"
)

// Config is everything a node is told. Each leaf field's yaml tags, joined
// with dots, name its key (see Keys); its help tag is the key's flag help.
type Config struct {
	Pair        string            `yaml:"pair" help:"name of the pair ([a-z0-9][a-z0-9-]{0,31})"`
	Node        string            `yaml:"node" help:"name of this node ([a-z0-9][a-z0-9-]{0,31})"`
	Role        Role              `yaml:"role" help:"role fixed at install: master or standby"`
	DataDir     string            `yaml:"data_dir" help:"directory of the node's own state"`
	NATS        NATS              `yaml:"nats"`
	Heart       Heartbeat         `yaml:"heartbeat"`
	Failback    string            `yaml:"failback" help:"failback policy: manual or automatic"`
	Hooks       Hooks             `yaml:"hooks"`
	Checks      Checks            `yaml:"checks"`
	Witness     Witness           `yaml:"witness"`
	Hosts       map[string]string `yaml:"hosts" help:"client-facing host of each node, as node=host,node=host"`
	Database    Database          `yaml:"database"`
	Notifier    Notifier          `yaml:"notifier"`
	License     License           `yaml:"license"`
	Admin       Admin             `yaml:"admin"`
	Maintenance Maintenance       `yaml:"maintenance"`
	Log         Log               `yaml:"log"`
	Audit       Audit             `yaml:"audit"`
	Hub         Hub               `yaml:"hub"`
	// Insecure turns protected mode off: without nats.auth the node then
	// listens on non-loopback addresses too, open to anyone who reaches
	// them (warned at every start, shown in status).
	Insecure bool `yaml:"insecure" help:"allow non-loopback listeners without nats.auth (protected mode off: anyone on the network may connect)"`
}

// NATS says where the node's NATS server is.
type NATS struct {
	Listen     string `yaml:"listen" help:"client address of the embedded NATS server"`
	LeafListen string `yaml:"leaf_listen" help:"leafnode address of the embedded NATS server"`
	Peer       string `yaml:"peer" help:"the peer's leafnode URL, nats-leaf://host:port"`
	URL        string `yaml:"url" help:"URL of an external NATS to use instead of the embedded server"`
	Creds      string `yaml:"creds" help:"credentials file for nats.url: a .creds file (JWT) or an nkey seed file; overrides nats.creds_dir"`
	// CredsDir holds one nkey seed file per role, <role>.nk, as written by
	// `tandem auth init`: each service connecting with nats.url uses its
	// own, and the soliciting standby's leaf remote leaf.nk.
	CredsDir string `yaml:"creds_dir" help:"directory of the nkey seed files <role>.nk (tandem auth init): each service's credentials for nats.url, and leaf.nk for the leaf link"`
	// LeafCreds is the seed file the standby's leaf remote authenticates
	// with as role leaf; "" means <creds_dir>/leaf.nk when creds_dir is set.
	LeafCreds string `yaml:"leaf_creds" help:"nkey seed file the standby's leaf connection authenticates with (role leaf); default <creds_dir>/leaf.nk"`
	// Auth maps a role to the public nkey (U…) of its user; non-empty means
	// every TCP client and the peer's leaf connection must authenticate.
	Auth map[string]string `yaml:"auth" help:"role=public nkey (U…) of each NATS user the embedded server accepts; roles: admin, leaf, license, monitor, nats, notifier, printq, replicator, session"`
	// Sessions maps a session's name to the public nkey of its own user
	// (tandem auth session NAME): a key per client, revoked by removing its
	// line. Such a user may acknowledge only as that session.
	Sessions map[string]string `yaml:"sessions" help:"session name=public nkey (U…) of each per-client session user (tandem auth session NAME); remove a line to revoke"`
	TLS      TLS               `yaml:"tls"`
}

// TLS is the embedded server's certificate for client and leafnode
// connections, and the CA clients and the soliciting standby verify it with.
type TLS struct {
	Cert string `yaml:"cert" help:"PEM certificate of the embedded NATS server (client and leafnode ports; with nats.tls.verify also the standby's leaf client certificate)"`
	Key  string `yaml:"key" help:"PEM private key of nats.tls.cert"`
	CA   string `yaml:"ca" help:"PEM CA bundle that NATS server certificates are verified with (clients, the standby's leaf remote)"`
	// Verify requires mutual TLS on the leafnode port: the soliciting
	// standby presents its own nats.tls.cert. Clients are authenticated by
	// nkey (nats.auth), not by certificate.
	Verify bool `yaml:"verify" help:"require and verify the peer server's certificate on the leafnode port (mutual TLS between the two servers)"`
}

// Enabled reports whether the embedded server serves TLS.
func (t TLS) Enabled() bool { return t.Cert != "" }

// Auth roles: the NATS users nats.auth may name (permissions in
// pkg/natsnode/auth.go).
const (
	RoleAdmin      = "admin"
	RoleLeaf       = "leaf"
	RoleLicense    = "license"
	RoleMonitor    = "monitor"
	RoleNATS       = "nats"
	RoleNotifier   = "notifier"
	RolePrintq     = "printq"
	RoleReplicator = "replicator"
	RoleSession    = "session"
)

// AuthRoles lists every role nats.auth accepts, sorted.
var AuthRoles = []string{RoleAdmin, RoleLeaf, RoleLicense, RoleMonitor, RoleNATS, RoleNotifier, RolePrintq, RoleReplicator, RoleSession}

// ValidAuthRole reports whether role is one of AuthRoles.
func ValidAuthRole(role string) bool { return slices.Contains(AuthRoles, role) }

// ValidSessionName reports whether name is a session name: 1–64 of
// A-Z a-z 0-9 _ - (as tandem session --name).
func ValidSessionName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// LeafSeedFile is the seed file the soliciting leaf remote uses, "" for none.
func (n NATS) LeafSeedFile() string {
	if n.LeafCreds != "" || n.CredsDir == "" {
		return n.LeafCreds
	}
	return filepath.Join(n.CredsDir, RoleLeaf+".nk")
}

// CredsFile is the credentials file a client of the given role connects
// with: nats.creds if set, else <creds_dir>/<role>.nk, else "".
func (n NATS) CredsFile(role string) string {
	if n.Creds != "" || n.CredsDir == "" {
		return n.Creds
	}
	return filepath.Join(n.CredsDir, role+".nk")
}

// Heartbeat timing (F5, F6, F7, F16).
type Heartbeat struct {
	// Profile names a pair of interval and timeout (Profiles); Load fills
	// Interval and Timeout from it when the sources leave them unset (or 0).
	Profile  string        `yaml:"profile" help:"seed (1s interval, 3s timeout) or fast (25ms, 380ms: host loss in under 400ms, 300ms freezes tolerated); heartbeat.interval and .timeout override it"`
	Interval time.Duration `yaml:"interval" help:"time between heartbeats; unset: the profile's"`
	Timeout  time.Duration `yaml:"timeout" help:"silence after which the peer is lost (at least 2 × heartbeat.interval); unset: the profile's"`
	// Discovery is the start-up window (F1); 0 means 3 × Interval.
	Discovery time.Duration `yaml:"discovery" help:"start-up discovery window; 0 means 3 × heartbeat.interval"`
	// Settle is how long a healed link must be stable before a collision
	// of two actives is resolved (F7); 0 means 3 × Interval.
	Settle time.Duration `yaml:"settle" help:"how long a healed link must be stable before two actives are resolved; 0 means 3 × heartbeat.interval"`
}

// Hooks are the commands run on transitions (F11).
type Hooks struct {
	OnActive  string        `yaml:"on_active" help:"command run when this node becomes active"`
	OnPassive string        `yaml:"on_passive" help:"command run when this node becomes passive"`
	Timeout   time.Duration `yaml:"timeout" help:"longest a hook may run"`
}

// Checks are the health checks of the protected service (F15). In the file,
// "checks:" is either the list itself (the short form) or a mapping with the
// list under "list" and the other keys beside it:
//
//	checks:
//	  takeover_when_unhealthy: true
//	  list:
//	    - name: spooler
//	      http: http://127.0.0.1:631/
//
// The list is read from the file only; checks.takeover_when_unhealthy is a
// key like any other (environment, flags).
type Checks struct {
	TakeoverWhenUnhealthy bool    `yaml:"takeover_when_unhealthy" help:"an unhealthy passive node takes over from a lost peer all the same"`
	List                  []Check `yaml:"list" file:"only"`
}

// Check is one health check: exactly one of Exec, HTTP and TCP.
type Check struct {
	Name string `yaml:"name"`
	// Exec is a command run like the hooks are (exit 0 = healthy).
	Exec string `yaml:"exec,omitempty"`
	// HTTP is a URL; a 2xx answer is healthy.
	HTTP string `yaml:"http,omitempty"`
	// TCP is host:port; an accepted connection is healthy.
	TCP      string        `yaml:"tcp,omitempty"`
	Interval time.Duration `yaml:"interval"`
	Timeout  time.Duration `yaml:"timeout"` // 0 in the file: Interval
	Fall     int           `yaml:"fall"`    // consecutive failures before unhealthy
	Rise     int           `yaml:"rise"`    // consecutive successes before healthy again
}

// Check defaults (F15).
const (
	DefaultCheckInterval = time.Second
	DefaultCheckFall     = 3
	DefaultCheckRise     = 2
	// MaxChecks bounds the list: every check's state travels in each
	// heartbeat.
	MaxChecks = 16
)

// WithDefaults fills the fields the file left out: interval 1s, timeout
// the interval, fall 3, rise 2.
func (c Check) WithDefaults() Check {
	if c.Interval == 0 {
		c.Interval = DefaultCheckInterval
	}
	if c.Timeout == 0 {
		c.Timeout = c.Interval
	}
	if c.Fall == 0 {
		c.Fall = DefaultCheckFall
	}
	if c.Rise == 0 {
		c.Rise = DefaultCheckRise
	}
	return c
}

// Kind is "exec", "http" or "tcp" ("" when none or several are set).
func (c Check) Kind() string {
	kinds := []string{}
	for k, v := range map[string]string{"exec": c.Exec, "http": c.HTTP, "tcp": c.TCP} {
		if v != "" {
			kinds = append(kinds, k)
		}
	}
	if len(kinds) != 1 {
		return ""
	}
	return kinds[0]
}

// Target is what the check runs or reaches.
func (c Check) Target() string { return c.Exec + c.HTTP + c.TCP }

// validate names the check and the field at fault.
func (c Check) validate() error {
	at := fmt.Sprintf("checks: %q", c.Name)
	if !subject.ValidName(c.Name) {
		return fmt.Errorf("checks: name %q: want [a-z0-9][a-z0-9-]{0,31}", c.Name)
	}
	switch c.Kind() {
	case "":
		return fmt.Errorf("%s: set exactly one of exec, http and tcp", at)
	case "http":
		u, err := url.Parse(c.HTTP)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%s: http %q is not an http:// or https:// URL", at, c.HTTP)
		}
	case "tcp":
		if err := checkAddr(c.TCP, dialPort); err != nil {
			return fmt.Errorf("%s: tcp: %w", at, err)
		}
	}
	switch {
	case c.Interval < 10*time.Millisecond:
		return fmt.Errorf("%s: interval %v is below 10ms", at, c.Interval)
	case c.Timeout <= 0:
		return fmt.Errorf("%s: timeout %v must be positive", at, c.Timeout)
	case c.Fall < 1 || c.Rise < 1:
		return fmt.Errorf("%s: fall %d and rise %d must be at least 1", at, c.Fall, c.Rise)
	}
	return nil
}

func (c Checks) validate() []error {
	var errs []error
	if len(c.List) > MaxChecks {
		errs = append(errs, fmt.Errorf("checks: %d checks, at most %d", len(c.List), MaxChecks))
	}
	seen := map[string]bool{}
	for _, ch := range c.List {
		if seen[ch.Name] {
			errs = append(errs, fmt.Errorf("checks: %q given twice", ch.Name))
		}
		seen[ch.Name] = true
		if err := ch.validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Database is the application database the replicator keeps in sync.
type Database struct {
	Path   string   `yaml:"path" help:"path of the application database to replicate"`
	Tables []string `yaml:"tables" help:"tables to replicate, as a comma list"`
}

// Notifier settings.
type Notifier struct {
	PushListen      string        `yaml:"push_listen" help:"address of the push endpoint for clients that do not speak NATS (SSE)"`
	TokensFile      string        `yaml:"tokens_file" help:"file of bearer tokens the push endpoint accepts, one per line; default <data_dir>/notifier/push_tokens"`
	Reannounce      time.Duration `yaml:"reannounce" help:"how often the active node re-announces the current notification (N7)"`
	ConfigRefresh   time.Duration `yaml:"config_refresh" help:"how often the pair configuration is read again from the database"`
	ProgressTimeout time.Duration `yaml:"progress_timeout" help:"how long the notifier counts acknowledgements of one notification (N6)"`
	HostsTable      string        `yaml:"hosts_table" help:"application table of client-facing hosts: (node TEXT PRIMARY KEY, host TEXT)"`
	ResourcesTable  string        `yaml:"resources_table" help:"application table of resources: (node, name, address, PRIMARY KEY(node, name))"`
	TLS             PushTLS       `yaml:"tls"`
	MaxConns        int           `yaml:"max_conns" help:"open connections the push endpoint keeps; more are closed at once (1 to 1000000)"`
	StateConsumers  int           `yaml:"state_consumers" help:"consumers the state bucket's stream holds at most, every client's watches together (1 to 1000000)"`
}

// Defaults and upper bound of the notifier's integer keys. 1,000 state
// consumers hold a watch for each of 100 connections (10,000 sessions on
// 100 connections, SPEC §10) ten times over, so that the watches of clients
// that reconnected can wait out their inactivity threshold.
const (
	DefaultPushMaxConns   = 1024
	DefaultStateConsumers = 1000
	MaxNotifierInt        = 1000000
)

// PushTLS is the push endpoint's certificate: HTTPS instead of HTTP, so
// bearer tokens do not cross the network in clear text.
type PushTLS struct {
	Cert string `yaml:"cert" help:"PEM certificate of the push endpoint (HTTPS)"`
	Key  string `yaml:"key" help:"PEM private key of notifier.tls.cert"`
}

// License settings.
type License struct {
	PublicKey string        `yaml:"public_key" help:"the vendor's Ed25519 public key, which license signatures are checked against"`
	Grace     time.Duration `yaml:"grace" help:"how long the standby's licenses stay valid without contact with the master"`
}

// Admin is the HTTP address of /metrics, /healthz, /readyz and the live
// dashboard at /, with the dashboard's credentials and the address's TLS.
type Admin struct {
	Listen string `yaml:"listen" help:"address of /metrics, /healthz, /readyz and the dashboard at /"`
	// TokensFile and UsersFile are the dashboard's credentials: bearer
	// tokens, one per line, and user:password lines for basic auth. With
	// either, every dashboard request needs them and the actions are shown;
	// without, the dashboard is open (read-only) on a loopback address only.
	TokensFile string   `yaml:"tokens_file" help:"file of bearer tokens the dashboard accepts, one per line (# comments)"`
	UsersFile  string   `yaml:"users_file" help:"file of user:password lines the dashboard accepts as basic auth (# comments)"`
	TLS        AdminTLS `yaml:"tls"`
}

// AdminTLS is the admin address's certificate: HTTPS when set.
type AdminTLS struct {
	Cert string `yaml:"cert" help:"PEM certificate of the admin address (HTTPS for /metrics and the dashboard)"`
	Key  string `yaml:"key" help:"PEM private key of admin.tls.cert"`
}

// Maintenance settings (F10).
type Maintenance struct {
	// Default is how long maintenance lasts when no duration is given.
	Default time.Duration `yaml:"default" help:"how long maintenance lasts when no duration is given"`
	// Max is the longest maintenance that may be asked for.
	Max time.Duration `yaml:"max" help:"longest maintenance that may be asked for"`
}

// Audit is the retention of the event streams (SPEC §7 A3): by age, and by
// size as a number with an optional unit (KB, MB, GB, KiB, MiB, GiB, TiB);
// empty or 0 means no size limit.
type Audit struct {
	MaxAge   time.Duration `yaml:"max_age" help:"keep events this long (every stream and mirror)"`
	MaxBytes string        `yaml:"max_bytes" help:"largest size of each event stream, e.g. 10GiB; empty for no limit"`
}

// MaxBytesValue is MaxBytes in bytes, 0 for no limit.
func (a Audit) MaxBytesValue() (int64, error) {
	s := strings.TrimSpace(a.MaxBytes)
	if s == "" {
		return 0, nil
	}
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSpace(strings.TrimSuffix(s, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return 0, fmt.Errorf("audit.max_bytes: %q is not a size such as 512MiB", a.MaxBytes)
	}
	return n * mult, nil
}

// Hub is the fleet hub (SPEC §11): for a node, the uplink to it (url,
// creds); for `tandem hub`, the hub server itself (the other keys).
type Hub struct {
	URL   string `yaml:"url" help:"leafnode URLs of the fleet hub's servers, comma separated (nats-leaf://hub1:7422,…); empty: no uplink"`
	Creds string `yaml:"creds" help:"nkey seed file (or .creds) the uplink to the hub authenticates with (the pair's key in the hub's hub.uplinks)"`
	CA    string `yaml:"ca" help:"PEM CA bundle the uplink verifies the hub's certificate with (TLS to the hub)"`

	Name          string   `yaml:"name" help:"tandem hub: this hub server's name (stable across restarts)"`
	Listen        string   `yaml:"listen" help:"tandem hub: client address (fleet commands, sessions)"`
	LeafListen    string   `yaml:"leaf_listen" help:"tandem hub: leafnode address the pairs' nodes uplink to"`
	ClusterListen string   `yaml:"cluster_listen" help:"tandem hub: cluster route address"`
	Routes        []string `yaml:"routes" help:"tandem hub: route URLs of the other hub servers (nats-route://host:6222,…)"`
	// ClusterSecret is a file holding a secret every hub server of the
	// cluster shares: routes authenticate with it, in both directions.
	ClusterSecret string `yaml:"cluster_secret" help:"tandem hub: file with a secret shared by every hub server (e.g. openssl rand -hex 32); routes authenticate with it; without it the cluster address must be loopback"`
	// Auth maps a fleet role (admin, reader) to its public nkey; Uplinks a
	// pair to the public nkey its nodes' uplinks sign in with. Either makes
	// every connection authenticate.
	Auth    map[string]string `yaml:"auth" help:"tandem hub: fleet role=public nkey (U…): admin (every pair's admin verbs, fleet reads), reader (fleet reads only), session (sessions of every pair)"`
	Uplinks map[string]string `yaml:"uplinks" help:"tandem hub: pair=public nkey (U…) of each pair's uplink; an uplink publishes only its own pair's subjects"`
	// Sessions maps a pair to the public nkey of its sessions' user on the
	// hub: it reads only that pair's notifications and last value.
	Sessions map[string]string `yaml:"sessions" help:"tandem hub: pair=public nkey (U…) of the sessions of one pair: they read only that pair's notifications and last value"`
}

// Fleet roles of the hub's users (hub.auth).
const (
	FleetAdmin   = "admin"
	FleetReader  = "reader"
	FleetSession = "session"
)

// Log settings.
type Log struct {
	Format string `yaml:"format" help:"log format: json or console"`
	Level  string `yaml:"level" help:"log level: trace, debug, info, warn or error"`
}

// Default returns the defaults of every key.
func Default() Config {
	return Config{
		Role:    Master,
		DataDir: "./data",
		NATS: NATS{
			Listen:     "127.0.0.1:4222",
			LeafListen: "127.0.0.1:7422",
		},
		Heart:    Profiles[ProfileSeed],
		Failback: FailbackManual,
		Hooks:    Hooks{Timeout: 30 * time.Second},
		Notifier: Notifier{PushListen: "127.0.0.1:8009", Reannounce: 5 * time.Second, ConfigRefresh: 10 * time.Second,
			ProgressTimeout: 30 * time.Second, HostsTable: "hosts", ResourcesTable: "resources",
			MaxConns: DefaultPushMaxConns, StateConsumers: DefaultStateConsumers},
		License: License{Grace: 28 * 24 * time.Hour},
		Admin:   Admin{Listen: "127.0.0.1:8080"},
		Maintenance: Maintenance{
			Default: time.Hour,
			Max:     24 * time.Hour,
		},
		Log:     Log{Format: "json", Level: "info"},
		Audit:   Audit{MaxAge: 90 * 24 * time.Hour},
		Hub:     Hub{Listen: "127.0.0.1:4222", LeafListen: "127.0.0.1:7422", ClusterListen: "127.0.0.1:6222"},
		Witness: Witness{Listen: "127.0.0.1:4250"},
	}
}

// Heartbeat profiles (F16).
const (
	ProfileSeed = "seed"
	ProfileFast = "fast"
)

// Profiles are the heartbeat settings heartbeat.profile names. seed is the
// seed documents' 1 s / 3 s. fast detects a lost host in under 400 ms and
// still tolerates a 300 ms freeze of either node: the peer's longest silence
// during such a freeze is one interval before it plus the freeze (325 ms),
// which leaves 55 ms for the frozen node's first heartbeat after it resumes
// (it sends one at once, F12), on a machine where a resumed process may wait
// that long for a core. The peer takes over 380 ms after the last heartbeat
// it heard: 355–380 ms after the loss. README § Heartbeat profiles has the figures they were
// chosen from.
var Profiles = map[string]Heartbeat{
	ProfileSeed: {Profile: ProfileSeed, Interval: time.Second, Timeout: 3 * time.Second},
	ProfileFast: {Profile: ProfileFast, Interval: 25 * time.Millisecond, Timeout: 380 * time.Millisecond},
}

// WithProfile fills Interval and Timeout, where they are 0, from the
// profile. An unknown profile changes nothing (Validate names it).
func (h Heartbeat) WithProfile() Heartbeat {
	p, ok := Profiles[h.Profile]
	if !ok {
		return h
	}
	if h.Interval == 0 {
		h.Interval = p.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = p.Timeout
	}
	return h
}

// DiscoveryWindow is the effective F1 window.
func (h Heartbeat) DiscoveryWindow() time.Duration {
	if h.Discovery > 0 {
		return h.Discovery
	}
	return 3 * h.Interval
}

// SettleDelay is the effective F7 settle delay.
func (h Heartbeat) SettleDelay() time.Duration {
	if h.Settle > 0 {
		return h.Settle
	}
	return 3 * h.Interval
}

func (h Heartbeat) validate() []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, ok := Profiles[h.Profile]; !ok {
		add("heartbeat.profile: %q is neither %s nor %s", h.Profile, ProfileSeed, ProfileFast)
		return errs // the interval and the timeout it should have given are unknown
	}
	switch {
	case h.Interval < 10*time.Millisecond:
		add("heartbeat.interval: %v is below 10ms", h.Interval)
	case h.Timeout < 2*h.Interval:
		add("heartbeat.timeout: %v must be at least 2 × heartbeat.interval (%v)%s", h.Timeout, h.Interval, h.profileHint())
	}
	if h.Discovery < 0 {
		add("heartbeat.discovery: %v must not be negative (0 means 3 × heartbeat.interval)", h.Discovery)
	}
	if h.Settle < 0 {
		add("heartbeat.settle: %v must not be negative (0 means 3 × heartbeat.interval)", h.Settle)
	}
	return errs
}

// profileHint explains, for a profile other than the default, where a value
// the user did not set came from.
func (h Heartbeat) profileHint() string {
	p, ok := Profiles[h.Profile]
	if !ok || h.Profile == ProfileSeed {
		return ""
	}
	return fmt.Sprintf("; heartbeat.profile %s sets %v and %v, and an explicit heartbeat.interval or .timeout overrides only itself", h.Profile, p.Interval, p.Timeout)
}

// Embedded reports whether the node runs its own NATS server.
func (c Config) Embedded() bool { return c.NATS.URL == "" }

// Validate checks every key and the rules between keys. It names the key.
func (c Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := subject.CheckName("pair", c.Pair); err != nil {
		add("pair: %w", err)
	}
	if err := subject.CheckName("node", c.Node); err != nil {
		add("node: %w", err)
	}
	if c.Role != Master && c.Role != Standby {
		add("role: %q is neither master nor standby", c.Role)
	}
	if c.DataDir == "" {
		add("data_dir: empty")
	}
	if c.Embedded() {
		if err := checkAddr(c.NATS.Listen, natsPort); err != nil {
			add("nats.listen: %w", err)
		}
		if c.NATS.LeafListen != "" {
			if err := checkAddr(c.NATS.LeafListen, natsPort); err != nil {
				add("nats.leaf_listen: %w", err)
			}
		}
		if c.NATS.Peer != "" && !strings.Contains(c.NATS.Peer, "://") {
			add("nats.peer: %q is not a URL (nats-leaf://host:port)", c.NATS.Peer)
		}
	}
	for _, l := range []struct{ key, addr string }{{"admin.listen", c.Admin.Listen}, {"notifier.push_listen", c.Notifier.PushListen}} {
		if l.addr == "" || l.addr == "-" { // disabled
			continue
		}
		if err := checkAddr(l.addr, listenPort); err != nil {
			add("%s: %w", l.key, err)
		}
	}
	errs = append(errs, c.NATS.validateSecurity(c.Role)...)
	if _, err := c.Hub.URLs(); err != nil {
		add("hub.url: %w", err)
	}
	if (c.Admin.TLS.Cert == "") != (c.Admin.TLS.Key == "") {
		add("admin.tls.cert and admin.tls.key: set both or neither")
	}
	errs = append(errs, c.protectedMode()...)
	errs = append(errs, c.Heart.validate()...)
	if c.Failback != FailbackManual && c.Failback != FailbackAutomatic {
		add("failback: %q is neither manual nor automatic", c.Failback)
	}
	if c.Hooks.Timeout <= 0 {
		add("hooks.timeout: %v must be positive", c.Hooks.Timeout)
	}
	errs = append(errs, c.Checks.validate()...)
	errs = append(errs, c.Witness.validate()...)
	for n, host := range c.Hosts {
		if !subject.ValidName(n) {
			add("hosts: node name %q is invalid", n)
		}
		if host == "" {
			add("hosts: node %q has an empty host", n)
		}
	}
	if len(c.Hosts) > 0 {
		if _, ok := c.Hosts[c.Node]; !ok {
			add("hosts: no entry for this node %q", c.Node)
		}
		if len(c.Hosts) > 2 {
			add("hosts: a pair has two nodes, %d given", len(c.Hosts))
		}
	}
	for _, k := range []struct {
		key string
		d   time.Duration
	}{{"notifier.reannounce", c.Notifier.Reannounce}, {"notifier.config_refresh", c.Notifier.ConfigRefresh}, {"notifier.progress_timeout", c.Notifier.ProgressTimeout}} {
		if k.d <= 0 {
			add("%s: %v must be positive", k.key, k.d)
		}
	}
	for _, tbl := range []string{c.Notifier.HostsTable, c.Notifier.ResourcesTable} {
		if !validTable(tbl) {
			add("notifier: table name %q: want [A-Za-z_][A-Za-z0-9_]*", tbl)
		}
	}
	if n := c.Notifier.MaxConns; n < 1 || n > MaxNotifierInt {
		add("notifier.max_conns is %d: want 1 to %d", n, MaxNotifierInt)
	}
	if n := c.Notifier.StateConsumers; n < 1 || n > MaxNotifierInt {
		add("notifier.state_consumers is %d: want 1 to %d", n, MaxNotifierInt)
	}
	if (c.Notifier.TLS.Cert == "") != (c.Notifier.TLS.Key == "") {
		add("notifier.tls.cert and notifier.tls.key: set both or neither")
	}
	if c.License.Grace <= 0 {
		add("license.grace: %v must be positive", c.License.Grace)
	}
	if m := c.Maintenance; m.Default <= 0 {
		add("maintenance.default: %v must be positive", m.Default)
	} else if m.Max < m.Default {
		add("maintenance.max: %v must be at least maintenance.default (%v)", m.Max, m.Default)
	}
	if c.Audit.MaxAge <= 0 {
		add("audit.max_age: %v must be positive", c.Audit.MaxAge)
	}
	if _, err := c.Audit.MaxBytesValue(); err != nil {
		add("%w", err)
	}
	errs = append(errs, c.Log.validate()...)
	return errors.Join(errs...)
}

func (l Log) validate() []error {
	var errs []error
	switch l.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q is none of trace, debug, info, warn, error", l.Level))
	}
	if l.Format != "json" && l.Format != "console" {
		errs = append(errs, fmt.Errorf("log.format: %q is neither json nor console", l.Format))
	}
	return errs
}

func validTable(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func checkAddr(a string, lowest int) error {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%q: %w", a, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < lowest || n > 65535 {
		return fmt.Errorf("%q: the port is not a number from %d to 65535", a, lowest)
	}
	return nil
}

// The lowest ports checkAddr accepts: a NATS server's listener takes -1
// (any free port, as 0 does for the others), a dial target needs a port.
const (
	natsPort   = -1
	listenPort = 0
	dialPort   = 1
)

// validateSecurity checks nats.auth, nats.tls and nats.leaf_creds. Files are
// not read here: the server and the clients name the file when it is bad.
func (n NATS) validateSecurity(role Role) []error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	roles := make([]string, 0, len(n.Auth))
	for r := range n.Auth {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	seen := make(map[string]string) // public key → role
	for _, r := range roles {
		key := n.Auth[r]
		switch {
		case !ValidAuthRole(r):
			add("nats.auth.%s: unknown role (want one of %s)", r, strings.Join(AuthRoles, ", "))
		case !nkeys.IsValidPublicUserKey(key):
			add("nats.auth.%s: %q is not a public user nkey (U…, see tandem auth init)", r, key)
		case seen[key] != "":
			add("nats.auth.%s: same key as nats.auth.%s; give every role its own", r, seen[key])
		default:
			seen[key] = r
		}
	}
	for _, name := range slices.Sorted(maps.Keys(n.Sessions)) {
		key := n.Sessions[name]
		switch {
		case !ValidSessionName(name):
			add("nats.sessions.%s: want 1-64 of A-Z a-z 0-9 _ -", name)
		case !nkeys.IsValidPublicUserKey(key):
			add("nats.sessions.%s: %q is not a public user nkey (U…, see tandem auth session)", name, key)
		case seen[key] != "":
			add("nats.sessions.%s: same key as %s; give every session its own", name, seen[key])
		default:
			seen[key] = "nats.sessions." + name
		}
	}
	if len(n.Sessions) > 0 && len(n.Auth) == 0 {
		add("nats.sessions: needs nats.auth (the server accepts users only with nats.auth)")
	}
	if len(n.Auth) > 0 {
		if _, ok := n.Auth[RoleLeaf]; !ok && n.LeafListen != "" {
			add("nats.auth.leaf: required when nats.auth is set and nats.leaf_listen is open (the peer's leaf connection authenticates as leaf)")
		}
		if role == Standby && n.Peer != "" && n.LeafSeedFile() == "" {
			add("nats.leaf_creds: required on the standby when nats.auth is set (or set nats.creds_dir holding leaf.nk)")
		}
	}
	t := n.TLS
	if (t.Cert == "") != (t.Key == "") {
		add("nats.tls.cert and nats.tls.key: set both or neither")
	}
	if t.Verify && (t.CA == "" || t.Cert == "") {
		add("nats.tls.verify: needs nats.tls.ca and nats.tls.cert")
	}
	if t.Enabled() && t.CA == "" && role == Standby && n.Peer != "" {
		add("nats.tls.ca: required on the standby with nats.tls.cert (its leaf remote verifies the master's certificate)")
	}
	return errs
}

// Witness is the optional witness of the pair (F14): a `tandem witness` on a
// third machine that holds a lease for the active node. Off while URL is
// empty.
//
// `tandem witness` reads Listen and Pairs (see LoadWitness); a node reads
// the rest.
type Witness struct {
	URL      string `yaml:"url" help:"NATS URL of the pair's witness (tandem witness), nats://host:port or tls://host:port; empty: no witness (the seed behaviour)"`
	Creds    string `yaml:"creds" help:"credentials file for witness.url: an nkey seed file (tandem auth witness) or a .creds file (JWT)"`
	CA       string `yaml:"ca" help:"PEM CA bundle the witness's TLS certificate is verified with; default nats.tls.ca"`
	Required bool   `yaml:"required" help:"no node activates without the witness's lease (true), or fall back to the seed behaviour when it is unreachable (false)"`

	Listen string `yaml:"listen" help:"tandem witness: address of the witness's NATS server"`
	// Pairs maps a pair to the public nkey its nodes sign in with; set,
	// every connection must authenticate, and a pair's user may ask only
	// for its own pair's lease.
	Pairs map[string]string `yaml:"pairs" help:"tandem witness: pair=public nkey (U…) of each pair's nodes (tandem auth witness PAIR); a pair's nodes may ask only for their own pair's lease"`
}

func (w Witness) validate() []error {
	var errs []error
	if w.URL == "" {
		if w.Creds != "" || w.CA != "" || w.Required {
			errs = append(errs, errors.New("witness: creds, ca or required without witness.url"))
		}
		return errs
	}
	u, err := url.Parse(w.URL)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("witness.url: %w", err))
	case u.Scheme != "nats" && u.Scheme != "tls":
		errs = append(errs, fmt.Errorf("witness.url: %q is not a nats:// or tls:// URL", w.URL))
	case u.Host == "" || u.Port() == "":
		errs = append(errs, fmt.Errorf("witness.url: %q has no host:port", w.URL))
	}
	return errs
}

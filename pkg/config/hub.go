package config

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// The fleet hub's keys (SPEC §11). A node reads hub.url and hub.creds (its
// uplink); `tandem hub` reads the hub.* server keys, data_dir, nats.tls.*,
// audit.*, log.* and insecure, and nothing of a pair.

// FleetRoles are the roles hub.auth accepts, sorted.
var FleetRoles = []string{FleetAdmin, FleetReader, FleetSession}

// URLs splits hub.url into the hub servers' leafnode URLs; none without an
// uplink.
func (h Hub) URLs() ([]string, error) {
	if strings.TrimSpace(h.URL) == "" {
		return nil, nil
	}
	var urls []string
	for item := range strings.SplitSeq(h.URL, ",") {
		u := strings.TrimSpace(item)
		if !strings.Contains(u, "://") {
			return nil, fmt.Errorf("%q is not a URL (nats-leaf://host:port)", u)
		}
		urls = append(urls, u)
	}
	return urls, nil
}

// LoadHub builds the configuration of `tandem hub` as Load does a node's,
// and checks it with ValidateHub.
func LoadHub(file string, environ []string, flags map[string]string) (Config, error) {
	return load(file, environ, flags, Config.ValidateHub)
}

// HubSecured reports whether the hub requires credentials (hub.auth,
// hub.uplinks or hub.sessions set).
func (c Config) HubSecured() bool {
	return len(c.Hub.Auth) > 0 || len(c.Hub.Uplinks) > 0 || len(c.Hub.Sessions) > 0
}

// ValidateHub checks the keys `tandem hub` uses: the hub's name and
// addresses, its users, protected mode (without credentials every listener
// is loopback, unless insecure), TLS, retention and logging.
func (c Config) ValidateHub() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	h := c.Hub
	if err := subject.CheckName("hub", h.Name); err != nil {
		add("hub.name (--name): %w", err)
	}
	if c.DataDir == "" {
		add("data_dir (--data-dir): empty")
	}
	listeners := map[string]string{"hub.listen": h.Listen, "hub.leaf_listen": h.LeafListen, "hub.cluster_listen": h.ClusterListen}
	for _, key := range slices.Sorted(maps.Keys(listeners)) {
		addr := listeners[key]
		if err := checkAddr(addr, natsPort); err != nil {
			add("%s: %w", key, err)
			continue
		}
		if key == "hub.cluster_listen" {
			c.checkClusterListen(add)
			continue
		}
		if !c.Insecure && !c.HubSecured() && !Loopback(addr) {
			add("%s: %q is not a loopback address and neither hub.auth nor hub.uplinks is set (protected mode): "+
				"make keys with `tandem auth init` and set hub.auth (admin, reader) and hub.uplinks (pair=key), or listen on 127.0.0.1, "+
				"or set insecure: true to let anyone on the network in", key, addr)
		}
	}
	for _, r := range h.Routes {
		if !strings.Contains(r, "://") {
			add("hub.routes: %q is not a URL (nats-route://host:6222)", r)
		}
	}
	seen := map[string]string{}
	checkKey := func(what, key string) {
		switch {
		case !nkeys.IsValidPublicUserKey(key):
			add("%s: %q is not a public user nkey (U…, see tandem auth init)", what, key)
		case seen[key] != "":
			add("%s: same key as %s; give each its own", what, seen[key])
		default:
			seen[key] = what
		}
	}
	for _, role := range slices.Sorted(maps.Keys(h.Auth)) {
		if !slices.Contains(FleetRoles, role) {
			add("hub.auth.%s: unknown role (want one of %s)", role, strings.Join(FleetRoles, ", "))
			continue
		}
		checkKey("hub.auth."+role, h.Auth[role])
	}
	for _, byPair := range []struct {
		key  string
		keys map[string]string
	}{{"hub.uplinks", h.Uplinks}, {"hub.sessions", h.Sessions}} {
		key, keys := byPair.key, byPair.keys
		for _, pair := range slices.Sorted(maps.Keys(keys)) {
			if err := subject.CheckName("pair", pair); err != nil {
				add("%s: %w", key, err)
				continue
			}
			checkKey(key+"."+pair, keys[pair])
		}
	}
	t := c.NATS.TLS
	if (t.Cert == "") != (t.Key == "") {
		add("nats.tls.cert and nats.tls.key: set both or neither")
	}
	if c.Audit.MaxAge <= 0 {
		add("audit.max_age: %v must be positive", c.Audit.MaxAge)
	}
	if _, err := c.Audit.MaxBytesValue(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, c.Log.validate()...)...)
}

// checkClusterListen: routes carry every pair's data and the cluster's
// JetStream; a non-loopback cluster address needs hub.cluster_secret (the
// routes authenticate), whatever else is secured, unless insecure.
func (c Config) checkClusterListen(add func(string, ...any)) {
	h := c.Hub
	if h.ClusterSecret != "" {
		if _, err := ClusterSecret(h.ClusterSecret); err != nil {
			add("hub.cluster_secret: %w", err)
		}
		return
	}
	if !c.Insecure && !Loopback(h.ClusterListen) {
		add("hub.cluster_listen: %q is not a loopback address and hub.cluster_secret is not set (protected mode): "+
			"write one secret (e.g. openssl rand -hex 32) into a file on every hub server and set hub.cluster_secret to it, "+
			"or listen on 127.0.0.1, or set insecure: true to let anyone on the network join the cluster", h.ClusterListen)
	}
}

// ClusterSecret reads the hub cluster's shared secret from file: at least
// 16 characters, no white space inside.
func ClusterSecret(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	switch {
	case len(secret) < 16:
		return "", fmt.Errorf("%s: the secret is shorter than 16 characters", file)
	case strings.ContainsAny(secret, " \t\r\n\"'"):
		return "", fmt.Errorf("%s: the secret holds white space or quotes", file)
	}
	return secret, nil
}

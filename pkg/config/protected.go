package config

import (
	"fmt"
	"net"
)

// Protected mode (SPEC §9, after Redis's protected-mode): a node without
// credentials — no nats.auth, and for a service on an external NATS no
// nats.creds or nats.creds_dir either — listens on loopback only. A
// non-loopback listener is then a configuration error that says how to
// secure the node, unless the operator wrote insecure: true.

// Secured reports whether the node's NATS requires credentials: nats.auth
// for the embedded server, or credentials for an external nats.url.
func (c Config) Secured() bool {
	if len(c.NATS.Auth) > 0 {
		return true
	}
	return !c.Embedded() && (c.NATS.Creds != "" || c.NATS.CredsDir != "")
}

// Listeners are the node's listening addresses by key: the embedded
// server's client and leafnode ports, the admin endpoint (with the
// dashboard) and the push endpoint. Disabled ones ("" or "-") are left out.
func (c Config) Listeners() map[string]string {
	m := map[string]string{}
	add := func(key, addr string) {
		if addr != "" && addr != "-" {
			m[key] = addr
		}
	}
	if c.Embedded() {
		add("nats.listen", c.NATS.Listen)
		add("nats.leaf_listen", c.NATS.LeafListen)
	}
	add("admin.listen", c.Admin.Listen)
	add("notifier.push_listen", c.Notifier.PushListen)
	return m
}

// protectedMode refuses every non-loopback listener of a node without
// credentials, unless insecure is set.
func (c Config) protectedMode() []error {
	if c.Insecure || c.Secured() {
		return nil
	}
	var errs []error
	for _, key := range []string{"nats.listen", "nats.leaf_listen", "admin.listen", "notifier.push_listen"} {
		addr, ok := c.Listeners()[key]
		if !ok || Loopback(addr) {
			continue
		}
		errs = append(errs, fmt.Errorf("%s: %q is not a loopback address and nats.auth is not set (protected mode): "+
			"run `tandem auth init --dir /etc/tandem/nkeys` and paste the nats.auth block it prints into both nodes' configuration "+
			"(with nats.creds_dir for the services), or listen on 127.0.0.1, or set insecure: true to let anyone on the network in", key, addr))
	}
	return errs
}

// InsecureListeners are the non-loopback listeners of a node without
// credentials (those insecure: true lets through), sorted by key.
func (c Config) InsecureListeners() []string {
	if c.Secured() {
		return nil
	}
	var out []string
	for _, key := range []string{"nats.listen", "nats.leaf_listen", "admin.listen", "notifier.push_listen"} {
		if addr, ok := c.Listeners()[key]; ok && !Loopback(addr) {
			out = append(out, key+"="+addr)
		}
	}
	return out
}

// Loopback reports whether a listen address (host:port) binds loopback
// only: a loopback IP or "localhost". An empty host (":8009") binds every
// interface and is not loopback; so is any other name.
func Loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

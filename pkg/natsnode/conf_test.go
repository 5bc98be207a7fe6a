package natsnode

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func TestConfigTranslates(t *testing.T) {
	id, err := newIdentities()
	if err != nil {
		t.Fatal(err)
	}
	o := Options{
		Pair: "p", Node: "b", Listen: "127.0.0.1:-1", LeafListen: "0.0.0.0:-1",
		Peer: "nats-leaf://leaf:pw@10.0.0.1:7422", Solicit: true, StoreDir: `/tmp/a "b"\c`,
		Users:             []string{`{user: svc, password: "x"}`},
		LeafAuthorization: `user: leaf, password: "pw", account: TANDEM`,
		RequireAuth:       true,
	}
	var so server.Options
	if err := so.ProcessConfigString(serverConfig(o, id)); err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, serverConfig(o, id))
	}
	checks := map[string]bool{
		"server name":       so.ServerName == "p-b",
		"domain":            so.JetStreamDomain == "p-b",
		"store dir":         so.StoreDir == o.StoreDir,
		"ping interval":     so.PingInterval == time.Second,
		"ping max":          so.MaxPingsOut == 3,
		"write deadline":    so.WriteDeadline == 3*time.Second,
		"system account":    so.SystemAccount == SysAccount,
		"no auth user":      so.NoAuthUser == id.defaultPub,
		"no advertise":      so.LeafNode.NoAdvertise,
		"leaf reconnect":    so.LeafNode.ReconnectInterval == 100*time.Millisecond,
		"leaf auth account": so.LeafNode.Account == AppAccount && so.LeafNode.Username == "leaf",
		"one remote":        len(so.LeafNode.Remotes) == 1,
		"leaf compression":  uncompressed(so.LeafNode.Compression),
	}
	if len(so.LeafNode.Remotes) == 1 {
		r := so.LeafNode.Remotes[0]
		checks["remote compression"] = uncompressed(r.Compression)
		checks["remote account"] = r.LocalAccount == AppAccount
		checks["remote ignores discovered"] = r.IgnoreDiscoveredServers
		checks["remote url"] = len(r.URLs) == 1 && r.URLs[0].Host == "10.0.0.1:7422"
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("%s: not as configured", what)
		}
	}
}

func TestConfigWithoutLeafnodes(t *testing.T) {
	id, err := newIdentities()
	if err != nil {
		t.Fatal(err)
	}
	text := serverConfig(Options{Pair: "p", Node: "a", Listen: "127.0.0.1:-1", StoreDir: "/tmp/x"}, id)
	if strings.Contains(text, "leafnodes") {
		t.Errorf("leafnodes block without listener or remote:\n%s", text)
	}
	var so server.Options
	if err := so.ProcessConfigString(text); err != nil {
		t.Fatalf("config does not parse: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	good := Options{Pair: "p", Node: "a", Listen: "127.0.0.1:-1", StoreDir: "/tmp/x"}
	if err := good.validate(); err != nil {
		t.Fatalf("good options: %v", err)
	}
	bad := map[string]func(*Options){
		"pair":        func(o *Options) { o.Pair = "P" },
		"node":        func(o *Options) { o.Node = "" },
		"listen":      func(o *Options) { o.Listen = "nohost" },
		"leaf listen": func(o *Options) { o.LeafListen = "x" },
		"solicit":     func(o *Options) { o.Solicit = true },
		"store":       func(o *Options) { o.StoreDir = "" },
	}
	for what, edit := range bad {
		o := good
		edit(&o)
		if err := o.validate(); err == nil {
			t.Errorf("%s: bad options accepted", what)
		}
	}
	if _, err := Start(Options{}); err == nil {
		t.Error("Start accepted empty options")
	}
}

// uncompressed: the pair's link does not compress (see leafBlock).
func uncompressed(c server.CompressionOpts) bool { return c.Mode == server.CompressionOff }

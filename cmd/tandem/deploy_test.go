package main

import (
	"maps"
	"path/filepath"
	"testing"

	"github.com/tandem-ha/tandem/pkg/config"
)

// TestProductionExamples loads deploy/production/node-{a,b}.yaml, so the
// examples cannot rot: both validate, are a master and its standby, run
// with TLS and nkeys (SPEC §9: a production example is not open), and share
// one set of public keys.
func TestProductionExamples(t *testing.T) {
	var cfgs []config.Config
	for _, n := range []string{"a", "b"} {
		file := filepath.Join("..", "..", "deploy", "production", "node-"+n+".yaml")
		c, err := config.Load(file, nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if c.Node != n || !c.NATS.TLS.Enabled() || len(c.NATS.Auth) == 0 || c.NATS.TLS.CA == "" {
			t.Errorf("%s: node %q, TLS %+v, %d auth keys: want node %s with TLS and nats.auth", file, c.Node, c.NATS.TLS, len(c.NATS.Auth), n)
		}
		if !c.Embedded() {
			t.Errorf("%s: nats.url set; the split units set it in the environment", file)
		}
		if _, ok := c.NATS.Auth[config.RoleSession]; !ok {
			t.Errorf("%s: no session user", file)
		}
		cfgs = append(cfgs, c)
	}
	a, b := cfgs[0], cfgs[1]
	if a.Role != config.Master || b.Role != config.Standby || a.Pair != b.Pair {
		t.Errorf("roles %s/%s, pairs %s/%s: want master a and standby b of one pair", a.Role, b.Role, a.Pair, b.Pair)
	}
	if !maps.Equal(a.NATS.Auth, b.NATS.Auth) || !maps.Equal(a.Hosts, b.Hosts) {
		t.Error("the two nodes' nats.auth or hosts differ")
	}
	// The split layout's services get nats.url from the unit's environment.
	env := []string{"TANDEM_NATS_URL=nats://127.0.0.1:4222"}
	if _, err := config.Load(filepath.Join("..", "..", "deploy", "production", "node-b.yaml"), env, nil); err != nil {
		t.Errorf("with the split units' environment: %v", err)
	}
}

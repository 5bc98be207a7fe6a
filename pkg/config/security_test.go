package config

import (
	"testing"
)

const (
	keyA = "UAFNX4O2YOOKHH2IOO644KSQJC3RNHIBNPBNOCQYZJELB2ZBI33MBONW"
	keyB = "UB3YLTXV3MBSSOFJVPJJ4SOUNY2RG56JTRBJPWZ6N46WSQT6LBNFRYEJ"
)

func TestSecurityValidate(t *testing.T) {
	base := func() Config {
		c := Default()
		c.Pair, c.Node = "shop", "alpha"
		c.NATS.Auth = map[string]string{RoleLeaf: keyA, RoleSession: keyB}
		return c
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	tests := map[string]struct {
		edit func(*Config)
		want []string
	}{
		"unknown role":  {func(c *Config) { c.NATS.Auth["foo"] = "UXXX" }, []string{"nats.auth.foo: unknown role"}},
		"malformed key": {func(c *Config) { c.NATS.Auth[RoleAdmin] = "UABC" }, []string{"nats.auth.admin:", "not a public user nkey"}},
		"seed as key":   {func(c *Config) { c.NATS.Auth[RoleAdmin] = "SUAPB32C3FDWGJCWCEGV5PCNNPNTKO7KYF4VHTBD63WNJE4USXHGYMZ3EY" }, []string{"nats.auth.admin:"}},
		"shared key":    {func(c *Config) { c.NATS.Auth[RoleAdmin] = keyB }, []string{"nats.auth.session: same key as nats.auth.admin"}},
		"no leaf role":  {func(c *Config) { delete(c.NATS.Auth, RoleLeaf) }, []string{"nats.auth.leaf: required"}},
		"standby leaf":  {func(c *Config) { c.Role, c.NATS.Peer = Standby, "nats-leaf://a:7422" }, []string{"nats.leaf_creds: required"}},
		"cert alone":    {func(c *Config) { c.NATS.TLS.Cert = "/c" }, []string{"nats.tls.cert and nats.tls.key"}},
		"verify alone":  {func(c *Config) { c.NATS.TLS.Verify = true }, []string{"nats.tls.verify: needs"}},
		"standby no ca": {func(c *Config) {
			c.Role, c.NATS.Peer, c.NATS.CredsDir, c.NATS.TLS.Cert, c.NATS.TLS.Key = Standby, "nats-leaf://a:7422", "/k", "/c", "/k"
		}, []string{"nats.tls.ca: required"}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			wantErr(t, c.Validate(), tt.want...)
		})
	}
}

func TestSecurityFromEnv(t *testing.T) {
	env := append([]string{
		"TANDEM_NATS_AUTH=leaf=" + keyA + ",session=" + keyB,
		"TANDEM_NATS_TLS_VERIFY=true", "TANDEM_NATS_TLS_CERT=/c", "TANDEM_NATS_TLS_KEY=/k", "TANDEM_NATS_TLS_CA=/ca",
		"TANDEM_NATS_CREDS_DIR=/etc/tandem/nkeys",
	}, named...)
	c, err := Load("", env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !c.NATS.TLS.Verify || c.NATS.Auth[RoleSession] != keyB {
		t.Errorf("loaded %+v", c.NATS)
	}
	if got := c.NATS.CredsFile(RoleMonitor); got != "/etc/tandem/nkeys/monitor.nk" {
		t.Errorf("creds file %q", got)
	}
	if got := c.NATS.LeafSeedFile(); got != "/etc/tandem/nkeys/leaf.nk" {
		t.Errorf("leaf seed file %q", got)
	}
	_, err = Load("", append([]string{"TANDEM_NATS_TLS_VERIFY=yes please"}, named...), nil)
	wantErr(t, err, "TANDEM_NATS_TLS_VERIFY", "want true or false")
	_, err = Load(writeFile(t, "pair: shop\nnode: alpha\nnats:\n  tls:\n    verify: maybe\n"), nil, nil)
	wantErr(t, err, "nats.tls.verify", "want true or false")
}

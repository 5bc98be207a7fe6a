package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
)

func TestAuthInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nkeys")
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"auth", "init", "--dir", dir}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, r := range defaultAuthRoles() {
		p := filepath.Join(dir, natsnode.SeedFileName(r))
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", p, st.Mode().Perm())
		}
		if _, err := natsnode.CredsOption(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "printq.nk")); err == nil {
		t.Error("printq made without being asked for")
	}

	// The printed block is a valid configuration of both nodes.
	conf := "pair: shop\nnode: a\n" + out.String()
	file := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := config.Load(file, nil, map[string]string{"role": "standby", "nats.peer": "nats-leaf://a:7422"})
	if err != nil {
		t.Fatalf("printed block does not load: %v\n%s", err, conf)
	}
	if len(c.NATS.Auth) != len(defaultAuthRoles()) || c.NATS.CredsDir != dir {
		t.Errorf("loaded auth %v, creds_dir %q", c.NATS.Auth, c.NATS.CredsDir)
	}
	if _, err := natsnode.ClientOptions(c, config.RoleMonitor); err != nil {
		t.Errorf("client options of the printed block: %v", err)
	}

	// A second run refuses to overwrite, and writes nothing.
	out.Reset()
	errOut.Reset()
	if code := run(context.Background(), []string{"auth", "init", "--dir", dir, "--roles", "printq,admin"}, &out, &errOut); code != 1 {
		t.Fatalf("second run: exit %d", code)
	}
	if !strings.Contains(errOut.String(), "admin.nk exists") {
		t.Errorf("error %q", errOut.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "printq.nk")); err == nil {
		t.Error("printq.nk written by a refused run")
	}
}

func TestAuthInitUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want int
		msg  string
	}{
		{[]string{"auth"}, 2, "Usage:"},
		{[]string{"auth", "init"}, 1, "--dir is required"},
		{[]string{"auth", "init", "--dir", t.TempDir(), "--roles", "monitor,foo"}, 1, `"foo" is not a role`},
		{[]string{"auth", "init", "--dir", t.TempDir(), "--roles", "monitor,monitor"}, 1, "given twice"},
	} {
		var out, errOut bytes.Buffer
		if got := run(context.Background(), c.args, &out, &errOut); got != c.want || !strings.Contains(errOut.String(), c.msg) {
			t.Errorf("tandem %v: exit %d (%q), want %d with %q", c.args, got, errOut.String(), c.want, c.msg)
		}
	}
}

// TestCredsSeedFile checks that --creds takes an nkey seed file as well as
// a .creds file, and names a bad one.
func TestCredsSeedFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := natsnode.WriteSeeds(dir, []string{config.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	g := globals{creds: filepath.Join(dir, "admin.nk")}
	if _, err := g.authOptions(config.RoleAdmin); err != nil {
		t.Errorf("seed file: %v", err)
	}
	bad := filepath.Join(dir, "bad")
	if err := os.WriteFile(bad, []byte("nothing here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	g = globals{creds: bad}
	if _, err := g.authOptions(config.RoleAdmin); err == nil || !strings.Contains(err.Error(), bad) {
		t.Errorf("bad creds: %v", err)
	}
	g = globals{tlsCA: filepath.Join(dir, "missing.pem")}
	if _, err := g.authOptions(config.RoleAdmin); err == nil || !strings.Contains(err.Error(), "--tls-ca") {
		t.Errorf("missing CA: %v", err)
	}
}

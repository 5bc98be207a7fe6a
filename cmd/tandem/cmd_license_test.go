package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/config"
)

// TestLicenseCommands runs keygen → issue → add → list → check → status
// through run, against a master node running in process.
func TestLicenseCommands(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "vendor.key"), filepath.Join(dir, "vendor.pub")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(ctx, args, &out, &errOut); code != wantCode {
			t.Fatalf("tandem %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	cli(0, "license", "keygen", "--private", priv, "--public", pub)
	cli(1, "license", "keygen", "--private", priv, "--public", pub) // never overwrites a key

	n := startMaster(ctx, t, func(cfg *config.Config) { cfg.License.PublicKey = pub })
	server := n.Server().ClientURL()
	waitReady(t, n)

	text := cli(0, "license", "issue", "--key", priv, "--customer", "ACME GmbH", "--features", "audit,sessions",
		"--seats", "5", "--expires", time.Now().AddDate(1, 0, 0).Format("2006-01-02"), "--id", "acme-1")
	if !strings.Contains(text, "-----BEGIN TANDEM LICENSE-----") {
		t.Fatalf("issue printed %q", text)
	}
	file := filepath.Join(dir, "acme.license")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("no license here"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("A"), 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct{ file, want string }{{garbage, "malformed license"}, {big, "larger than"}} {
		if out := cli(1, "license", "add", bad.file, "--pair", "p", "--server", server); !strings.Contains(out, bad.want) {
			t.Errorf("add %s: %q, want %q", bad.file, out, bad.want)
		}
	}

	out := cli(0, "license", "add", file, "--pair", "p", "--server", server)
	if !strings.Contains(out, "license acme-1 added on a") {
		t.Fatalf("add: %q", out)
	}
	out = cli(0, "license", "list", "--pair", "p", "--server", server)
	if !strings.Contains(out, "node a (master): valid") || !strings.Contains(out, "acme-1") {
		t.Fatalf("list: %q", out)
	}
	if out := cli(0, "license", "list", "--pair", "p", "--server", server, "--json"); !strings.Contains(out, `"id": "acme-1"`) {
		t.Fatalf("list --json: %q", out)
	}
	out = cli(0, "license", "check", "audit", "--pair", "p", "--server", server)
	if !strings.Contains(out, "a (master): audit licensed: granted by license acme-1") {
		t.Fatalf("check audit: %q", out)
	}
	out = cli(1, "license", "check", "print", "--pair", "p", "--server", server)
	if !strings.Contains(out, `no license grants feature "print"`) {
		t.Fatalf("check print: %q", out)
	}
	out = cli(0, "status", "--pair", "p", "--server", server)
	if !strings.Contains(out, "license a: valid") {
		t.Fatalf("status: %q", out)
	}
}

// waitReady waits until every service of n answers /readyz.

package natsnode

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/config"
)

func TestCredsOption(t *testing.T) {
	dir := t.TempDir()
	if _, err := WriteSeeds(dir, []string{config.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jwt := write("user.creds", "-----BEGIN NATS USER JWT-----\neyJ0eXAi\n------END NATS USER JWT------\n")
	for path, ok := range map[string]bool{
		filepath.Join(dir, "admin.nk"):       true,
		jwt:                                  true,
		write("junk", "not a key\n"):         false,
		filepath.Join(dir, "missing.nk"):     false,
		write("account", "SAAFAKEACCOUNT\n"): false,
	} {
		opt, err := CredsOption(path)
		if ok && (err != nil || opt == nil) {
			t.Errorf("%s: %v", path, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), filepath.Base(path))) {
			t.Errorf("%s: error %v, want one naming the file", path, err)
		}
	}
}

func TestClientOptionsRole(t *testing.T) {
	c := config.Default()
	for _, role := range []string{config.RoleLeaf, "nobody"} {
		if _, err := ClientOptions(c, role); err == nil {
			t.Errorf("role %q accepted", role)
		}
	}
	opts, err := ClientOptions(c, config.RoleMonitor)
	if err != nil || len(opts) != 1 {
		t.Fatalf("no credentials, no TLS: %d options, %v", len(opts), err)
	}
	o := nats.GetDefaultOptions()
	if err := opts[0](&o); err != nil || o.InboxPrefix != "_INBOX_monitor" {
		t.Errorf("inbox prefix %q (%v), want _INBOX_monitor", o.InboxPrefix, err)
	}
	c.NATS.CredsDir = t.TempDir()
	if _, err := ClientOptions(c, config.RoleMonitor); err == nil || !strings.Contains(err.Error(), "monitor.nk") {
		t.Errorf("missing seed file: %v", err)
	}
}

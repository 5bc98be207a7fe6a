package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
)

// TestRefusedCredentials: a command run without credentials, with another
// role's, or with a key the server does not know, fails at once — not
// after its --timeout — with one line naming the credentials used, that
// they may not run it, and which key to use; not nats.go's raw "permissions
// violation" (whose subject is often not the cause). A real node's NATS
// server with nats.auth; the commands in process.
func TestRefusedCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	seeds := t.TempDir()
	auth, err := natsnode.WriteSeeds(seeds, []string{config.RoleAdmin, config.RoleLeaf, config.RoleMonitor, config.RoleSession})
	if err != nil {
		t.Fatal(err)
	}
	stranger := t.TempDir() // a key no node knows
	if _, err := natsnode.WriteSeeds(stranger, []string{config.RoleAdmin}); err != nil {
		t.Fatal(err)
	}
	cfg := loneMaster(t, "rc")
	cfg.NATS.Auth = auth
	n, _ := part(ctx, t, cfg, "nats")
	server := n.Server().ClientURL()
	seed := func(dir, role string) string { return filepath.Join(dir, natsnode.SeedFileName(role)) }

	const timeout = "20s" // what the old refusals waited out
	admin := "--creds <nats.creds_dir>/admin.nk"
	for _, c := range []struct {
		name  string
		creds string
		args  []string
		code  int
		want  []string
	}{
		{"audit replay with a session key", seed(seeds, config.RoleSession), []string{"audit", "replay", "--pair", "rc"}, 1,
			[]string{"tandem audit replay: the credentials " + seed(seeds, config.RoleSession) + " (user " + auth[config.RoleSession] + ") may not run this command", admin}},
		{"status with the monitor's key", seed(seeds, config.RoleMonitor), []string{"status", "--pair", "rc"}, 1,
			[]string{"tandem status: the credentials " + seed(seeds, config.RoleMonitor), "may not run this command", admin}},
		{"switchover with a session key", seed(seeds, config.RoleSession), []string{"switchover", "--pair", "rc"}, 1,
			[]string{"may not run this command", admin}},
		{"license list with a session key", seed(seeds, config.RoleSession), []string{"license", "list", "--pair", "rc"}, 1,
			[]string{"may not run this command", admin}},
		{"check with a session key", seed(seeds, config.RoleSession), []string{"check", "--pair", "rc"}, 3,
			[]string{"TANDEM UNKNOWN - pair rc: cannot ask: the credentials " + seed(seeds, config.RoleSession), admin}},
		{"status without credentials", "", []string{"status", "--pair", "rc"}, 1,
			[]string{"tandem status: the server requires credentials and none were given", admin}},
		{"status with an unknown key", seed(stranger, config.RoleAdmin), []string{"status", "--pair", "rc"}, 1,
			[]string{"the server does not accept the credentials " + seed(stranger, config.RoleAdmin), admin}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append(c.args, "--server", server, "--timeout", timeout)
			if c.creds != "" {
				args = append(args, "--creds", c.creds)
			}
			var out, errOut bytes.Buffer
			start := time.Now()
			code := run(ctx, args, &out, &errOut)
			took := time.Since(start)
			got := errOut.String()
			if c.code == 3 {
				got = out.String()
			}
			if code != c.code {
				t.Errorf("exit %d, want %d: %s%s", code, c.code, out.String(), errOut.String())
			}
			if code == 1 && out.Len() > 0 {
				t.Errorf("a refusal printed on stdout: %q", out.String())
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("no %q in %q", w, got)
				}
			}
			if strings.Contains(got, "ermissions Violation") || strings.Count(errOut.String(), "\n") > 1 {
				t.Errorf("raw or several lines: %q", errOut.String())
			}
			// A refusal is known at the first reply; the whole --timeout is
			// not waited out (a bound far above any refusal, far below 20 s).
			if took > 10*time.Second {
				t.Errorf("took %v: waited for the timeout", took)
			}
		})
	}
}

// TestExplainOnlyClientConnections: a server's own error that mentions an
// authorization violation (tandem node whose services cannot sign in) is
// not taken for the CLI's credentials.
func TestExplainOnlyClientConnections(t *testing.T) {
	err := errors.New("node a: connect to nats://127.0.0.1:4222: nats: Authorization Violation")
	if got := (&access{}).explain(err); got != err {
		t.Errorf("explained a command that made no client connection: %v", got)
	}
	a := &access{}
	a.use("", config.RoleAdmin)
	if got := a.explain(err); !strings.Contains(got.Error(), "requires credentials and none were given") {
		t.Errorf("a client's refused connection: %v", got)
	}
}

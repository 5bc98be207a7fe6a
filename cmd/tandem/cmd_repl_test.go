package main

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/config"
)

// TestReplCommands runs a pair of in-process nodes and drives replication
// through the CLI: verify (clean, then a named difference and a non-zero
// exit), pause/resume, and the replication lines of status.
func TestReplCommands(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 shell")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	shell := func(node, q string) {
		t.Helper()
		out, err := exec.Command(sqlite3, "-cmd", ".timeout 10000", filepath.Join(dir, node, "tandem.db"), q).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3 %s: %v: %s", q, err, out)
		}
	}
	cfg := func(name string, role config.Role) config.Config {
		c := config.Default()
		c.Pair, c.Node, c.Role, c.DataDir = "p", name, role, filepath.Join(dir, name)
		c.NATS.Listen, c.NATS.LeafListen = "127.0.0.1:-1", "127.0.0.1:-1"
		c.Heart.Interval, c.Heart.Timeout = 100*time.Millisecond, 400*time.Millisecond
		c.Admin.Listen, c.Notifier.PushListen = "127.0.0.1:0", "127.0.0.1:0"
		c.Hosts = map[string]string{"a": "a.test", "b": "b.test"}
		return c
	}
	for _, n := range []string{"a", "b"} {
		if err := exec.Command("mkdir", "-p", filepath.Join(dir, n)).Run(); err != nil {
			t.Fatal(err)
		}
		shell(n, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT)`)
	}
	a := startNode(t, ctx, cfg("a", config.Master))
	cb := cfg("b", config.Standby)
	cb.NATS.Peer = a.Server().LeafURL()
	startNode(t, ctx, cb)
	server := "--server=" + a.Server().ClientURL()
	cli := func(wantCode int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(ctx, append(args, server), &out, &errOut); code != wantCode {
			t.Fatalf("tandem %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
		}
		return out.String() + errOut.String()
	}
	shell("a", `INSERT INTO items VALUES(1, 'one'), (2, 'two')`)
	waitCLI(t, func() bool {
		var out, errOut bytes.Buffer
		return run(ctx, []string{"repl", "verify", "--pair", "p", "--attempts", "1", server}, &out, &errOut) == 0 &&
			strings.Contains(out.String(), "identical")
	})
	cli(0, "repl", "pause", "--pair", "p")
	shell("b", `UPDATE items SET name = 'changed' WHERE id = 2; INSERT INTO items VALUES(3, 'b only')`)
	out := cli(1, "repl", "verify", "--pair", "p", "--attempts", "1")
	if !strings.Contains(out, "items key 2: different contents") || !strings.Contains(out, "items key 3: only on b") {
		t.Fatalf("verify printed %q", out)
	}
	if out := cli(0, "status", "--pair", "p"); !strings.Contains(out, "replication") || !strings.Contains(out, "paused") {
		t.Fatalf("status printed %q", out)
	}
	cli(0, "repl", "resume", "--pair", "p")
	waitCLI(t, func() bool {
		var out, errOut bytes.Buffer
		return run(ctx, []string{"repl", "verify", "--pair", "p", "--attempts", "1", server}, &out, &errOut) == 0
	})
	if out := cli(0, "repl", "resync", "--pair", "p"); !strings.Contains(out, "resync started") {
		t.Fatalf("resync printed %q", out)
	}

	// resync --discard: b's bad writes, held back by a pause of b alone,
	// are thrown away — counted per table, recorded on both nodes.
	waitCLI(t, func() bool {
		var out, errOut bytes.Buffer
		return run(ctx, []string{"repl", "verify", "--pair", "p", "--attempts", "1", server}, &out, &errOut) == 0
	})
	// A node the pair does not have is refused, and nothing is paused.
	for _, verb := range []string{"pause", "resume", "resync"} {
		if out := cli(1, "repl", verb, "--pair", "p", "--node", "zz"); !strings.Contains(out, `unknown node "zz"`) {
			t.Errorf("repl %s --node zz printed %q", verb, out)
		}
	}
	if out := cli(0, "status", "--pair", "p"); strings.Contains(out, "paused") {
		t.Errorf("repl pause --node zz paused a node: %q", out)
	}
	cli(0, "repl", "pause", "--pair", "p", "--node", "b")
	shell("b", `UPDATE items SET name = 'garbage' WHERE id = 1`)
	for _, c := range []struct{ args, want string }{
		{"--discard", "--discard needs --from NODE"},
		{"--from zz --discard", `unknown node "zz"`},
		{"--from a --node a --discard", "cannot resync from itself"},
		{"--from b", "without --discard"},
	} {
		if out := cli(1, append([]string{"repl", "resync", "--pair", "p"}, strings.Fields(c.args)...)...); !strings.Contains(out, c.want) {
			t.Errorf("resync %s printed %q, want %q", c.args, out, c.want)
		}
	}
	if out := cli(0, "repl", "resync", "--pair", "p", "--from", "a", "--discard"); !strings.Contains(out, "items: 1 rows discarded") {
		t.Fatalf("resync --discard printed %q", out)
	}
	cli(0, "repl", "resume", "--pair", "p", "--node", "b")
	waitCLI(t, func() bool {
		var out, errOut bytes.Buffer
		return run(ctx, []string{"repl", "verify", "--pair", "p", "--attempts", "1", server}, &out, &errOut) == 0
	})
	for _, n := range []string{"a", "b"} {
		waitCLI(t, func() bool { // on a once b's conflict record is applied
			out, err := exec.Command(sqlite3, "-cmd", ".timeout 10000", filepath.Join(dir, n, "tandem.db"),
				`SELECT loser_row FROM _tandem_conflict WHERE kind = 'discard'`).CombinedOutput()
			return err == nil && strings.Contains(string(out), "garbage")
		})
	}
}

func startNode(t *testing.T, ctx context.Context, cfg config.Config) *node.Node {
	t.Helper()
	n := node.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel).With().Str("node", cfg.Node).Logger())
	nctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("node %s: %v", cfg.Node, err)
		}
	})
	select {
	case <-n.Started():
	case err := <-done:
		t.Fatalf("node %s did not start: %v", cfg.Node, err)
	}
	return n
}

func waitCLI(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/config"
)

// TestPairWithoutHostsReplicates: hosts is optional (SPEC §8), so a pair
// configured without it learns the peer's name from its heartbeats — every
// service the same way — and replicates; before, the replicator disabled
// itself.
func TestPairWithoutHostsReplicates(t *testing.T) {
	sqlite3, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 shell")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	query := func(node, q string) string {
		t.Helper()
		out, err := exec.Command(sqlite3, "-cmd", ".timeout 10000", filepath.Join(dir, node, "tandem.db"), q).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3 %s: %v: %s", q, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	cfg := func(name string, role config.Role) config.Config {
		c := config.Default()
		c.Pair, c.Node, c.Role, c.DataDir = "p", name, role, filepath.Join(dir, name)
		c.NATS.Listen, c.NATS.LeafListen = "127.0.0.1:-1", "127.0.0.1:-1"
		c.Heart.Interval, c.Heart.Timeout = 100*time.Millisecond, 400*time.Millisecond
		c.Admin.Listen, c.Notifier.PushListen = "127.0.0.1:0", "127.0.0.1:0"
		c.Hosts = nil
		return c
	}
	for _, n := range []string{"a", "b"} {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o750); err != nil {
			t.Fatal(err)
		}
		query(n, `CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT)`)
	}
	a := startNode(t, ctx, cfg("a", config.Master))
	// Alone, a has not heard its peer and cannot name it: status still
	// lists the standby (never heard, "?") and the replication section
	// (a's replicator answers "starting": it waits for the peer's name),
	// and check warns.
	for deadline := time.Now().Add(time.Minute); ; {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"status", "--pair", "p", "--server=" + a.Server().ClientURL()}, &out, &errOut)
		st := out.String()
		if code == 0 && strings.Contains(st, "active a\n") && strings.Contains(st, "a     starting") {
			if !strings.Contains(st, "?     standby  never heard") || !strings.Contains(st, "?     no answer") {
				t.Fatalf("status without the peer's name:\n%s", st)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of a alone (exit %d):\n%s%s", code, st, errOut.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"check", "--pair", "p", "--server=" + a.Server().ClientURL()}, &out, &errOut); code != 1 ||
		!strings.Contains(out.String(), "the standby (not heard since its peer started") {
		t.Fatalf("check of a alone: exit %d, %q %q", code, out.String(), errOut.String())
	}
	cb := cfg("b", config.Standby)
	cb.NATS.Peer = a.Server().LeafURL()
	startNode(t, ctx, cb)
	query("a", `INSERT INTO items VALUES(1, 'from a')`)
	query("b", `INSERT INTO items VALUES(2, 'from b')`)
	// Generous: a first snapshot takes seconds on a loaded machine.
	for deadline := time.Now().Add(2 * time.Minute); query("a", `SELECT count(*) FROM items`) != "2" ||
		query("b", `SELECT count(*) FROM items`) != "2"; {
		if time.Now().After(deadline) {
			t.Fatal("the rows did not reach both nodes")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for deadline := time.Now().Add(time.Minute); ; {
		out.Reset()
		errOut.Reset()
		if run(ctx, []string{"repl", "verify", "--pair", "p", "--attempts", "1", "--server=" + a.Server().ClientURL()}, &out, &errOut) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("repl verify:\n%s%s", out.String(), errOut.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
)

// TestStatusNamesUnansweredParts: a part of a node whose service does not
// answer is not just absent from tandem status --json: the node's
// "unanswered" names it (by its key), and the table says "no answer from".
// Real parts of a split node: its NATS server (which answers for audit) and
// its monitor, then its license service too; no replicator, no notifier.
func TestStatusNamesUnansweredParts(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := loneMaster(t, "un")
	cfg.Hosts = map[string]string{"a": "a.test"}
	nats, _ := part(ctx, t, cfg, "nats")
	cfg.NATS.URL = nats.Server().ClientURL()
	part(ctx, t, cfg, "monitor")

	// await polls tandem status --json until node a's unanswered is want.
	await := func(want ...string) api.PairStatus {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var out, errOut bytes.Buffer
			code := run(ctx, []string{"status", "--pair", "un", "--server", cfg.NATS.URL, "--timeout", "500ms", "--json"}, &out, &errOut)
			var ps api.PairStatus
			if code == 0 && json.Unmarshal(out.Bytes(), &ps) == nil && len(ps.Nodes) > 0 && slices.Equal(ps.Nodes[0].Unanswered, want) {
				if !strings.Contains(out.String(), `"unanswered": [`) {
					t.Errorf("no unanswered key in the JSON:\n%s", out.String())
				}
				return ps
			}
			if time.Now().After(deadline) {
				t.Fatalf("node a's unanswered never became %q: exit %d\n%s%s", want, code, out.String(), errOut.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ps := await("license", "replication", "sessions")
	if a := ps.Nodes[0]; a.Node != "a" || !a.Reachable || a.Audit == nil || a.License != nil {
		t.Errorf("node a: %+v", a)
	}
	// The peer that was never heard answered nothing.
	if len(ps.Nodes) != 2 || ps.Nodes[1].Node != "" || len(ps.Nodes[1].Unanswered) != len(statusParts) {
		t.Errorf("the unheard peer: %+v", ps.Nodes)
	}
	var table, errOut bytes.Buffer
	if code := run(ctx, []string{"status", "--pair", "un", "--server", cfg.NATS.URL, "--timeout", "500ms"}, &table, &errOut); code != 0 ||
		!strings.Contains(table.String(), "no answer from a: license, replication, sessions\n") {
		t.Errorf("table: exit %d\n%s%s", code, table.String(), errOut.String())
	}

	part(ctx, t, cfg, "license")
	if a := await("replication", "sessions").Nodes[0]; a.License == nil {
		t.Errorf("the license service answered, yet no license part: %+v", a)
	}
}

// loneMaster is the configuration of a master "a" of pair with no peer,
// every address a free loopback port, for its parts run in process (part).
func loneMaster(t *testing.T, pair string) config.Config {
	cfg := config.Default()
	cfg.Pair, cfg.Node, cfg.Role, cfg.DataDir = pair, "a", config.Master, filepath.Join(t.TempDir(), "a")
	cfg.NATS.Listen, cfg.NATS.LeafListen = "127.0.0.1:-1", "127.0.0.1:-1"
	cfg.Heart.Interval, cfg.Heart.Timeout = 100*time.Millisecond, time.Second
	cfg.Admin.Listen, cfg.Notifier.PushListen = "127.0.0.1:0", "127.0.0.1:0"
	return cfg
}

package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/config"
)

// part runs one part of a split node (tandem run nats|monitor|…) in process
// until stop is called; stop reports an error the part returned.
func part(ctx context.Context, t *testing.T, cfg config.Config, name string) (*node.Node, func()) {
	t.Helper()
	n := node.New(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel).With().Str("part", cfg.Node+"/"+name).Logger())
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		if name == "nats" {
			done <- n.RunNATS(pctx)
		} else {
			done <- n.RunService(pctx, name)
		}
	}()
	select {
	case <-n.Started():
	case err := <-done:
		cancel()
		t.Fatalf("%s of %s did not start: %v", name, cfg.Node, err)
	}
	var stopped bool
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s of %s: %v", name, cfg.Node, err)
		}
	}
	t.Cleanup(stop)
	return n, stop
}

// The split layout (deploy/): each node's NATS server and its services run
// apart, the services with nats.url. The monitor learns of the leaf link
// from what its NATS process relays, so a crash of the master's server —
// link closed, port refused — fails over on the relayed probe, not on the
// heartbeat timeout, and the audit trail says so.
func TestSplitNodeFailsOverOnRelayedLink(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := func(name string, role config.Role) config.Config {
		cfg := config.Default()
		cfg.Pair, cfg.Node, cfg.Role, cfg.DataDir = "sp", name, role, filepath.Join(t.TempDir(), name)
		cfg.NATS.Listen, cfg.NATS.LeafListen = "127.0.0.1:-1", "127.0.0.1:-1"
		// The timeout is long, so that only the relayed probe can explain a
		// prompt failover; nothing here measures how prompt.
		cfg.Heart.Interval, cfg.Heart.Timeout = 100*time.Millisecond, 20*time.Second
		cfg.Heart.Discovery = time.Second
		cfg.Admin.Listen, cfg.Notifier.PushListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Hosts = map[string]string{"a": "a.test", "b": "b.test"}
		return cfg
	}
	a, b := base("a", config.Master), base("b", config.Standby)
	natsA, stopNatsA := part(ctx, t, a, "nats")
	b.NATS.Peer = natsA.Server().LeafURL()
	natsB, _ := part(ctx, t, b, "nats")
	a.NATS.URL, b.NATS.URL = natsA.Server().ClientURL(), natsB.Server().ClientURL()
	_, stopMonA := part(ctx, t, a, "monitor")
	for _, s := range node.Services[1:] {
		part(ctx, t, a, s)
		part(ctx, t, b, s)
	}
	part(ctx, t, b, "monitor")

	status := func(server, want string) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var out, errOut bytes.Buffer
			code := run(ctx, []string{"status", "--pair", "sp", "--server", server, "--timeout", "500ms"}, &out, &errOut)
			if code == 0 && strings.Contains(out.String(), want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status never showed %q: %s %s", want, out.String(), errOut.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	status(natsA.Server().ClientURL(), "active a")
	status(natsB.Server().ClientURL(), "b     standby  passive")

	// The master's server crashes (its sockets close); its monitor, left
	// without a server, is stopped.
	natsA.Kill()
	stopMonA()
	stopNatsA()
	status(natsB.Server().ClientURL(), "active b")
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"audit", "replay", "--pair", "sp", "--node", "b", "--type", "tandem.node.activated",
		"--server", natsB.Server().ClientURL()}, &out, &errOut); code != 0 {
		t.Fatalf("audit replay: exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "refused the connection") {
		t.Fatalf("b's activation does not come from the relayed probe:\n%s", out.String())
	}
}

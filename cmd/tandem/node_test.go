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

// startMaster runs a lone master node "a" of pair "p" in process, with short
// heartbeats and random ports, edited by edit, until the test ends; it
// returns once the node is active.
func startMaster(ctx context.Context, t *testing.T, edit func(*config.Config)) *node.Node {
	t.Helper()
	return startMasterNode(ctx, t, edit, nil)
}

// startMasterNode is startMaster with editNode applied to the node before
// it runs. With nats.auth set it does not wait for the node to be active
// (tandem status without credentials cannot ask it).
func startMasterNode(ctx context.Context, t *testing.T, edit func(*config.Config), editNode func(*node.Node)) *node.Node {
	t.Helper()
	cfg := config.Default()
	cfg.Pair, cfg.Node, cfg.Role, cfg.DataDir = "p", "a", config.Master, filepath.Join(t.TempDir(), "a")
	cfg.NATS.Listen, cfg.NATS.LeafListen = "127.0.0.1:-1", ""
	cfg.Heart.Interval, cfg.Heart.Timeout = 100*time.Millisecond, 400*time.Millisecond
	cfg.Admin.Listen, cfg.Notifier.PushListen = "127.0.0.1:0", "127.0.0.1:0"
	if edit != nil {
		edit(&cfg)
	}
	n := node.New(cfg, zerolog.Nop())
	if editNode != nil {
		editNode(n)
	}
	nctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	})
	select {
	case <-n.Started():
	case err := <-done:
		t.Fatalf("node did not start: %v", err)
	}
	if len(cfg.NATS.Auth) == 0 {
		waitReady(t, n)
	}
	return n
}

// waitReady waits until `tandem status` shows node a active.
func waitReady(t *testing.T, n *node.Node) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out, errOut bytes.Buffer
		if run(context.Background(), []string{"status", "--pair", "p", "--server", n.Server().ClientURL(), "--timeout", "500ms"}, &out, &errOut) == 0 &&
			strings.Contains(out.String(), "active a") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not active: %s %s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

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
	"github.com/tandem-ha/tandem/pkg/natsnode"
)

// A node configured with nats.url runs no server of its own: it uses the
// external one, where its events land and through which the CLI reaches it.
func TestNodeOnExternalNATS(t *testing.T) {
	srv, err := natsnode.Start(natsnode.Options{Pair: "p", Node: "ext", Listen: "127.0.0.1:-1",
		StoreDir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	cfg := config.Default()
	cfg.Pair, cfg.Node, cfg.Role, cfg.DataDir = "p", "a", config.Master, filepath.Join(t.TempDir(), "a")
	cfg.NATS.URL = srv.ClientURL()
	cfg.Heart.Interval, cfg.Heart.Timeout = 100*time.Millisecond, 400*time.Millisecond
	cfg.Admin.Listen, cfg.Notifier.PushListen = "127.0.0.1:0", "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := node.New(cfg, zerolog.Nop())
	nctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- n.Run(nctx) }()
	select {
	case <-n.Started():
	case err := <-done:
		stop()
		t.Fatalf("node did not start: %v", err)
	}
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	}()
	if n.Server() != nil {
		t.Fatal("a node with nats.url started a server of its own")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"status", "--pair", "p", "--server", srv.ClientURL(), "--timeout", "500ms"}, &out, &errOut)
		if code == 0 && strings.Contains(out.String(), "active a") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node a never active through the external server: %s %s", out.String(), errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"audit", "replay", "--pair", "p", "--type", "tandem.node.activated", "--server", srv.ClientURL()}, &out, &errOut); code != 0 ||
		!strings.Contains(out.String(), "F2") {
		t.Fatalf("events on the external server: exit %d\n%s%s", code, out.String(), errOut.String())
	}
}

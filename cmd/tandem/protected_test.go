package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
)

// A node without nats.auth asked to listen on every interface refuses to
// start, names the listener and says how to secure it; nothing listens.
func TestProtectedModeRefusesOpenNode(t *testing.T) {
	for _, line := range []string{
		"nats:\n  leaf_listen: 0.0.0.0:7422\n",
		"nats:\n  listen: 0.0.0.0:4222\n",
		"admin:\n  listen: :8080\n",
		"notifier:\n  push_listen: 0.0.0.0:8009\n",
	} {
		dir := t.TempDir()
		file := filepath.Join(dir, "node.yaml")
		conf := "pair: p\nnode: a\ndata_dir: " + filepath.Join(dir, "data") + "\n" + line
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var out, errOut bytes.Buffer
		code := run(ctx, []string{"node", "--config", file}, &out, &errOut)
		cancel()
		if code == 0 {
			t.Fatalf("%q: node started open", line)
		}
		for _, want := range []string{"protected mode", "tandem auth init", "nats.auth", "insecure: true"} {
			if !strings.Contains(errOut.String(), want) {
				t.Errorf("%q: error %q does not say %q", line, errOut.String(), want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
			t.Errorf("%q: the refused node made its data directory (%v)", line, err)
		}
	}
}

// lockedBuffer is a log sink the node's goroutines may write concurrently.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// insecure: true is warned at start and shown in the status JSON; a node
// without it does not say insecure.
func TestInsecureWarnedAndInStatus(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		var logs lockedBuffer
		cfg := config.Default()
		cfg.Pair, cfg.Node, cfg.DataDir = "p", "a", filepath.Join(t.TempDir(), "a")
		cfg.NATS.Listen, cfg.NATS.LeafListen = "127.0.0.1:-1", ""
		cfg.Heart.Interval, cfg.Heart.Timeout = 100*time.Millisecond, 400*time.Millisecond
		cfg.Admin.Listen, cfg.Notifier.PushListen = "127.0.0.1:0", "127.0.0.1:0"
		cfg.Insecure = insecure
		n := node.New(cfg, zerolog.New(&logs))
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		select {
		case <-n.Started():
		case err := <-done:
			t.Fatalf("node did not start: %v", err)
		}
		waitReady(t, n)
		var out, errOut bytes.Buffer
		if code := run(ctx, []string{"status", "--pair", "p", "--json", "--server", n.Server().ClientURL()}, &out, &errOut); code != 0 {
			t.Fatalf("status: %s", errOut.String())
		}
		var st api.PairStatus
		if err := json.Unmarshal(out.Bytes(), &st); err != nil {
			t.Fatal(err)
		}
		if len(st.Nodes) == 0 || st.Nodes[0].Insecure != insecure {
			t.Errorf("insecure=%v: status %s", insecure, out.String())
		}
		if got := strings.Contains(logs.String(), "protected mode is off"); got != insecure {
			t.Errorf("insecure=%v: warned %v: %s", insecure, got, logs.String())
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	}
}

// The Compose pair's configurations listen on every interface of their
// containers without nats.auth: they must say insecure: true, or the pair
// would not start (protected mode).
func TestComposeConfigsLoad(t *testing.T) {
	for _, n := range []string{"a", "b"} {
		file := filepath.Join("..", "..", "deploy", "compose", n+".yaml")
		for _, env := range [][]string{nil, {"TANDEM_NATS_URL=nats://nats-" + n + ":4222"}} {
			c, err := config.Load(file, env, nil)
			if err != nil {
				t.Fatalf("%s %v: %v", file, env, err)
			}
			if !c.Insecure || len(c.InsecureListeners()) == 0 {
				t.Errorf("%s: insecure %v, open listeners %v", file, c.Insecure, c.InsecureListeners())
			}
		}
	}
}

// A data directory the node cannot write says so at start, and an unknown
// TANDEM_* variable (a typo) is reported.
func TestDataDirAndUnknownEnvReported(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "data")
	if err := os.WriteFile(notDir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(file, []byte("pair: p\nnode: a\ndata_dir: "+notDir+"\nnats:\n  listen: 127.0.0.1:-1\n  leaf_listen: \"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TANDEM_HEARTBEAT_INTERVALL", "1s")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"node", "--config", file}, &out, &errOut); code == 0 {
		t.Fatal("a node started on a data_dir that is a file")
	}
	for _, want := range []string{"data_dir " + notDir, "fix the directory's owner or mode", "TANDEM_HEARTBEAT_INTERVALL", "unknown TANDEM_"} {
		if !strings.Contains(errOut.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, errOut.String())
		}
	}
}

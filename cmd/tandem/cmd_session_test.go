package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/config"
)

// syncBuffer is a bytes.Buffer safe for the session's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Len is how much has been written so far, a mark for Since.
func (s *syncBuffer) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Len()
}

// Since is what has been written after mark.
func (s *syncBuffer) Since(mark int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b.Bytes()[min(mark, s.b.Len()):])
}

// TestSessionCommand runs `tandem session` against a master node running in
// process (monitor and notifier): the master activates alone (F2), the
// session's printer on the standby's host moves to the master's host, the
// switch is printed as a JSON line, and `tandem status` counts the session.
func TestSessionCommand(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg := config.Default()
	cfg.Pair, cfg.Node, cfg.Role, cfg.DataDir = "p", "a", config.Master, filepath.Join(dir, "a")
	cfg.NATS.Listen, cfg.NATS.LeafListen = "127.0.0.1:-1", ""
	cfg.Heart.Interval, cfg.Heart.Timeout = 100*time.Millisecond, 400*time.Millisecond
	cfg.Admin.Listen, cfg.Notifier.PushListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Hosts = map[string]string{"a": "print-a", "b": "print-b"}
	n := node.New(cfg, zerolog.Nop())
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
	server := n.Server().ClientURL()

	var out syncBuffer
	var errOut bytes.Buffer
	sctx, sstop := context.WithCancel(ctx)
	sdone := make(chan int, 1)
	go func() {
		sdone <- run(sctx, []string{"session", "--server", server, "--pair", "p", "--name", "ts1",
			"--resource", `\\print-b\Floor3`, "--resource", `\\files\Scan`}, &out, &errOut)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "\n") {
		if time.Now().After(deadline) {
			t.Fatalf("no switch printed; stderr: %s", errOut.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	var line switchLine
	if err := json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &line); err != nil {
		t.Fatal(err)
	}
	if line.Session != "ts1" || line.Epoch == 0 || line.From != "b" || line.To != "a" || len(line.Resources) != 1 ||
		line.Resources[0].From != `\\print-b\Floor3` || line.Resources[0].To != `\\print-a\Floor3` {
		t.Fatalf("switch line %+v", line)
	}

	for {
		var sout, serr bytes.Buffer
		if code := run(ctx, []string{"status", "--server", server, "--pair", "p"}, &sout, &serr); code == 0 &&
			strings.Contains(sout.String(), "\nsessions\n") && strings.Contains(sout.String(), "configuration") {
			fields := strings.Fields(sout.String()[strings.Index(sout.String(), "\nsessions\n"):])
			// sessions NODE EPOCH KNOWN ACKNOWLEDGED NOTIFIED ALL ACKED SOURCE PUSH CLIENTS | a <epoch> 1 1 …
			if len(fields) > 14 && fields[11] == "a" && fields[13] == "1" && fields[14] == "1" {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("status does not count the session")
		}
		time.Sleep(20 * time.Millisecond)
	}
	sstop()
	if code := <-sdone; code != 0 {
		t.Fatalf("session exit %d: %s", code, errOut.String())
	}
}

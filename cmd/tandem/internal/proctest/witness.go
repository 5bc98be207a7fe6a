//go:build linux

package proctest

import (
	"bufio"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Witness is a `tandem witness` process (F14).
type Witness struct {
	URL string // nats://127.0.0.1:port, for the nodes' witness.url
	cmd *exec.Cmd
}

// StartWitness runs `tandem witness` on a free loopback port with a fresh
// data directory, waits until it listens, and kills it at t's cleanup.
func StartWitness(t T, bin string, wait time.Duration) *Witness {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proctest: witness port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "witness", "--listen", addr, "--data-dir", filepath.Join(t.TempDir(), "witness"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("proctest: witness: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("proctest: witness: %v", err)
	}
	w := &Witness{URL: "nats://" + addr, cmd: cmd}
	t.Cleanup(w.Kill)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "witness listening on ") {
				close(ready)
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(wait):
		t.Fatalf("proctest: the witness did not start within %v", wait)
	}
	return w
}

// Kill kills the witness with SIGKILL and reaps it; a second call does
// nothing.
func (w *Witness) Kill() {
	if w.cmd.ProcessState != nil {
		return
	}
	_ = w.cmd.Process.Signal(syscall.SIGKILL)
	_ = w.cmd.Wait()
}

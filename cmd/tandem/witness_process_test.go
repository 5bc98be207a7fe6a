//go:build linux

package main

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/proctest"
)

// startWitnessProc runs `tandem witness` on a free loopback port and returns
// its URL and process (killed at cleanup).
func startWitnessProc(t *testing.T, bin string) (string, *exec.Cmd) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "witness", "--listen", addr, "--data-dir", filepath.Join(t.TempDir(), "witness"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "witness listening on ") {
				ready <- sc.Text()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(waitLimit):
		t.Fatal("the witness did not start")
	}
	return "nats://" + addr, cmd
}

// TestProcessWitness: a pair with a witness (F14). A crashed master (its
// port refuses the connection) still fails over at once — the standby
// takes the lease over; with the witness killed, the active standby stays
// active (witness.required false: the seed behaviour) and says so in a
// tandem.witness.unreachable event.
func TestProcessWitness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	bin := proctest.Build(t)
	url, wit := startWitnessProc(t, bin)
	p, st := proctest.StartActive(t, proctest.Options{
		Binary: bin, Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit,
		Extra: func(string) map[string]any { return map[string]any{"witness.url": url} },
	})
	crashMaster(t, p, st)

	// The witness dies: the standby stays active, in the same epoch.
	before := p.Status(time.Second)
	if err := wit.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	mark := p.Watch().Mark()
	p.AwaitBeats(mark, 20, waitLimit, proctest.Match{Node: standby})
	for _, b := range p.Watch().Since(mark) {
		if b.Node == standby && (b.State != "active" || b.Epoch != before.Epoch) {
			t.Fatalf("with the witness killed the standby left the active role: %v", b)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for {
		log, _ := os.ReadFile(p.Node(standby).LogPath)
		if strings.Contains(string(log), "witness.unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tandem.witness.unreachable in %s's log", standby)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	checkInvariants(t, p)
}

//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/proctest"
)

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
	wit := proctest.StartWitness(t, bin, waitLimit)
	p, st := proctest.StartActive(t, proctest.Options{
		Binary: bin, Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit,
		Extra: func(string) map[string]any { return map[string]any{"witness.url": wit.URL} },
	})
	crashMaster(t, p, st)

	// The witness dies: the standby stays active, in the same epoch, and
	// says so.
	before := p.Status(time.Second)
	logBefore, _ := os.ReadFile(p.Node(standby).LogPath)
	wit.Kill()
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
		if len(log) > len(logBefore) && strings.Contains(string(log[len(logBefore):]), "witness.unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tandem.witness.unreachable in %s's log after the witness was killed", standby)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	// tandem check names it (the dead master makes the verdict critical).
	deadline = time.Now().Add(waitLimit)
	for {
		r := p.CLI("check", "--pair", p.Name, "--server", p.Servers(standby))
		if r.Code >= 1 && strings.Contains(r.Stdout, "witness unreachable from "+standby) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem check with the witness dead: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}
	checkInvariants(t, p)
}

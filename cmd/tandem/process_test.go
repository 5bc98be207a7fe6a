package main

// Process tests: a pair of real `tandem node` processes, killed, frozen,
// restarted and stopped the way an operator's machine does it (see
// internal/proctest). They assert what happens, never how fast: every wait is
// bounded by waitLimit only so that a broken build fails instead of hanging.

import (
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// waitLimit bounds every wait. It is no statement about speed.
const waitLimit = 30 * time.Second

// Short heartbeats keep the tests quick; nothing asserts on them. The
// timeout and the discovery window are long on purpose: no step of these
// tests waits for the timeout (a crash and a clean stop close the link, which
// fails over at once), only the first start of the master waits for the
// window (F2), and on a loaded 2-core machine a starved process must not look
// dead to its peer, or absent to a peer that starts: that would be a
// legitimate failover (F6) or activation (F2) the test does not expect.
var testHeartbeat = proctest.Heartbeat{Interval: 100 * time.Millisecond, Timeout: 3 * time.Second, Discovery: 2 * time.Second}

const (
	master  = "alpha"
	standby = "bravo"
)

// startPair starts a pair with the given failback policy, the master first,
// and waits until the master is active and the standby passive.
func startPair(t *testing.T, failback string) (*proctest.Pair, proctest.Status) {
	t.Helper()
	return proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby,
		Heartbeat: testHeartbeat, Failback: failback, Wait: waitLimit,
	})
}

// crashMaster kills the active master with SIGKILL and waits until the
// standby says it is active in a higher epoch (F6). It returns that beat.
func crashMaster(t *testing.T, p *proctest.Pair, before proctest.Status) proctest.Beat {
	t.Helper()
	mark := p.Watch().Mark()
	p.Kill9(master)
	b, _ := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: standby, State: "active", MinEpoch: before.Epoch + 1})
	st := p.WaitStatus("standby active, master unreachable", waitLimit, func(s proctest.Status) bool {
		m, ok := s.Get(master)
		return s.Active != nil && *s.Active == standby && ok && !m.Reachable
	})
	if st.Epoch <= before.Epoch {
		t.Fatalf("after the crash the pair is in epoch %d, before it was %d", st.Epoch, before.Epoch)
	}
	return b
}

func TestProcessFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	t.Run("manual", testFailbackManual)
	t.Run("automatic", testFailbackAutomatic)
}

// testFailbackManual: kill -9 of the active master, the standby takes over;
// the master comes back passive and stays so (F9 manual); a switchover is
// refused through the standby, naming the master, and works through the
// master (F8); SIGTERM stops each node cleanly.
func testFailbackManual(t *testing.T) {
	p, st := startPair(t, "manual")
	took := crashMaster(t, p, st)

	mark := p.Watch().Mark()
	p.Restart(master)
	p.AwaitBeat(mark, waitLimit, proctest.Match{Node: master, State: "passive"})
	p.WaitStable(standby, waitLimit)

	// Over ten of its heartbeats (more than the settle delay and the
	// timeout), heard through the standby's server, the master stays passive
	// and the standby active in the same epoch.
	mark = p.Watch().Mark()
	p.AwaitBeats(mark, 10, waitLimit, proctest.Match{Node: master, Via: standby})
	for _, b := range p.Watch().Since(mark) {
		if b.Node == master && b.State != "passive" || b.Node == standby && (b.State != "active" || b.Epoch != took.Epoch) {
			t.Fatalf("with failback manual, after the master's return: %v", b)
		}
	}

	checkSwitchoverRefused(t, p)
	checkSwitchoverThroughMaster(t, p, took.Epoch)

	// SIGTERM of the active node: it exits 0, and the standby takes over.
	mark = p.Watch().Mark()
	before := p.Status(time.Second)
	p.Term(master)
	p.AwaitBeat(mark, waitLimit, proctest.Match{Node: standby, State: "active", MinEpoch: before.Epoch + 1})
	p.Term(standby)
	checkInvariants(t, p)
}

// checkSwitchoverRefused: `tandem switchover` through the standby's server
// fails with a one-line error that names the master (F8).
func checkSwitchoverRefused(t *testing.T, p *proctest.Pair) {
	t.Helper()
	r := p.CLI("switchover", "--pair", p.Name, "--server", p.Servers(standby))
	if r.Code == 0 || r.Code == -1 {
		t.Fatalf("switchover through the standby: exit status %d (%v), want a refusal; stdout %q, stderr %q", r.Code, r.Err, r.Stdout, r.Stderr)
	}
	line := strings.TrimSuffix(r.Stderr, "\n")
	if line == "" || strings.Contains(line, "\n") {
		t.Errorf("switchover through the standby: stderr is not one line: %q", r.Stderr)
	}
	if !strings.Contains(line, master) {
		t.Errorf("switchover through the standby: the error does not name the master %s: %q", master, line)
	}
	if st := p.Status(time.Second); !st.Stable(standby) {
		t.Errorf("a refused switchover changed the pair: %v", st)
	}
}

// checkSwitchoverThroughMaster: `tandem switchover` through the master's
// server makes the (passive) master active in a new epoch.
func checkSwitchoverThroughMaster(t *testing.T, p *proctest.Pair, epoch uint64) {
	t.Helper()
	mark := p.Watch().Mark()
	r := p.CLI("switchover", "--pair", p.Name, "--server", p.Servers(master))
	if r.Code != 0 {
		t.Fatalf("switchover through the master: exit status %d (%v); stdout %q, stderr %q", r.Code, r.Err, r.Stdout, r.Stderr)
	}
	b, _ := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: master, State: "active", MinEpoch: epoch + 1})
	if !strings.Contains(r.Stdout, master) {
		t.Errorf("switchover through the master: output does not name the new active node %s: %q", master, r.Stdout)
	}
	p.WaitStable(master, waitLimit)
	checkHandover(t, p, mark, b)
}

// checkHandover: the node that gave up the active role sent no active
// heartbeat after the new active node's first one (F8: the active side turns
// passive first). Both senders share this machine's clock.
func checkHandover(t *testing.T, p *proctest.Pair, mark int, first proctest.Beat) {
	t.Helper()
	for _, b := range p.Watch().Since(mark) {
		if b.Node != first.Node && b.State == "active" && b.Sent.After(first.Sent) {
			t.Errorf("both active: %v sent at %s, after %v at %s", b, b.Sent.Format(time.RFC3339Nano), first, first.Sent.Format(time.RFC3339Nano))
		}
	}
}

// testFailbackAutomatic: kill -9 of the active master, the standby takes
// over; the master comes back passive (F3) and then takes the active role
// back through a coordinated switchover (F9 automatic, F8).
func testFailbackAutomatic(t *testing.T) {
	p, st := startPair(t, "automatic")
	took := crashMaster(t, p, st)

	mark := p.Watch().Mark()
	p.Restart(master)
	p.AwaitBeat(mark, waitLimit, proctest.Match{Node: master, State: "passive"})
	back, _ := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: master, State: "active", MinEpoch: took.Epoch + 1})
	for _, b := range p.Watch().Since(mark) {
		if b.Node == master && b.State == "active" && b.Sent.Before(back.Sent) {
			t.Fatalf("the returning master was active before its failback: %v", b)
		}
	}
	p.WaitStable(master, waitLimit)
	checkHandover(t, p, mark, back)

	p.Term(standby)
	p.Term(master)
	checkInvariants(t, p)
}

func checkInvariants(t *testing.T, p *proctest.Pair) {
	t.Helper()
	if n := p.CheckInvariants(); n == 0 {
		t.Error("no heartbeat recorded: the invariants were not checked")
	}
}

package main

// The fast heartbeat profile (F16) on real `tandem node` processes: freezes
// of the active node shorter than the timeout, on a machine whose two cores
// are saturated, make no failover; a frozen passive node does not mistake
// its own freeze for its peer's death (F12), and a frozen active node longer
// than the timeout is taken over.

import (
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// startFast starts a pair at heartbeat.profile fast. The discovery window is
// long so that a starved standby is not absent at the start (F2): start-up
// is not what these tests are about.
func startFast(t *testing.T) (*proctest.Pair, proctest.Status) {
	t.Helper()
	return proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Wait: waitLimit,
		Heartbeat: proctest.Heartbeat{Discovery: 2 * time.Second},
		Extra:     func(string) map[string]any { return map[string]any{"heartbeat.profile": "fast"} },
	})
}

// TestFastProfileNoFalseFailover: 75 s with four CPU burners on the two
// cores and a 300 ms SIGSTOP of the active node every 10 s, at the fast
// profile (25 ms heartbeats, 380 ms timeout): no node activates, and the
// frozen node noticed each of its freezes (F12). A freeze the loaded harness
// could not end within 350 ms (the timeout less one interval, less 5 ms for
// the resumed node's first heartbeat) may be taken for a death by right: an
// activation in its wake is logged, not counted. The 10-minute version is a
// benchmark (benchrun: false-failovers).
func TestFastProfileNoFalseFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes and CPU burners for 75 s")
	}
	p, st := startFast(t)
	before := stalls(t, p, master)
	r := p.Stress(master, st.Epoch, proctest.Stress{Burners: 4, Every: 10 * time.Second, Freeze: 300 * time.Millisecond,
		Tolerated: tolerated, For: 75 * time.Second})
	t.Logf("stress: %v", r)
	if r.Freezes-r.Overlong < 4 {
		t.Fatalf("only %d of %d freezes lasted at most %v (the harness itself is starved): the run proves nothing", r.Freezes-r.Overlong, r.Freezes, tolerated)
	}
	if r.FalseFailovers != 0 {
		t.Errorf("%d false failovers (epochs %v) in %d freezes of %v", r.FalseFailovers, r.Epochs, r.Freezes, r.Frozen)
	}
	if got := stalls(t, p, master) - before; got < float64(r.Freezes) {
		t.Errorf("the master counted %v stalls in %d freezes of itself", got, r.Freezes)
	}
	if now := p.Status(5 * time.Second); !now.Stable(master) || now.Epoch != st.Epoch {
		t.Errorf("after the stress the pair is %v, before %v", now, st)
	}
	checkInvariants(t, p)
}

// TestFastProfileFrozenSelfVsPeer: SIGSTOP of the passive node for 6 s
// (longer than the leaf link's keepalive: the active node's server closes
// the link) does not make it take over when it resumes: it finds its own
// timers ran late, and waits for the link to be redialled and the active
// node to be heard again (F12, F6). SIGSTOP of the active node for a second
// is its peer's silence: the passive node takes over while it is still
// frozen.
func TestFastProfileFrozenSelfVsPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	p, st := startFast(t)
	const selfFreeze, peerFreeze = 6 * time.Second, time.Second

	before := stalls(t, p, standby)
	p.Stop(standby)
	time.Sleep(selfFreeze) // the standby's freeze
	p.Cont(standby)
	// Forty of its heartbeats later (a second: more than twice the
	// timeout, and the link's redial), the standby is still passive in the
	// same pair epoch.
	mark := p.Watch().Mark()
	for _, b := range p.AwaitBeats(mark, 40, waitLimit, proctest.Match{Node: standby, Via: standby}) {
		if b.State != "passive" {
			t.Fatalf("the standby took its own freeze for its peer's death: %v", b)
		}
	}
	if got := stalls(t, p, standby) - before; got < 1 {
		t.Errorf("the standby counted no stall after a %v freeze", selfFreeze)
	}
	if now := p.Status(5 * time.Second); !now.Stable(master) || now.Epoch != st.Epoch {
		t.Fatalf("after the standby's freeze the pair is %v, before %v", now, st)
	}

	mark = p.Watch().Mark()
	stopped := p.Stop(master)
	b, _ := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: standby, State: "active", Via: standby, MinEpoch: st.Epoch + 1})
	time.Sleep(peerFreeze - time.Since(stopped)) // the rest of the master's freeze
	resumed := p.Cont(master)
	if !b.Recv.Before(resumed) {
		t.Errorf("the standby took over only %v after the master's freeze began, once it had ended (after %v)",
			b.Recv.Sub(stopped), resumed.Sub(stopped))
	}
	t.Logf("frozen master taken over after %v", b.Recv.Sub(stopped))
	p.WaitStable(master, waitLimit) // F7: the master stays active
	checkInvariants(t, p)
}

// tolerated is the longest freeze the fast profile must survive in the
// test: the timeout (380 ms) less one interval (25 ms), less 5 ms for the
// resumed node's first heartbeat to arrive.
const tolerated = 350 * time.Millisecond

// stalls is node's tandem_monitor_stalls_total.
func stalls(t *testing.T, p *proctest.Pair, node string) float64 {
	t.Helper()
	m, err := p.Metrics(node)
	if err != nil {
		t.Fatalf("metrics of %s: %v", node, err)
	}
	return m["tandem_monitor_stalls_total"]
}

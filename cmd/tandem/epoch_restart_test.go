package main

import (
	"testing"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// TestProcessEpochAfterWholePairRestart: a whole-pair restart in the wrong
// order never takes the pair's epoch back (F1). The master is active in
// epoch E and the standby hears it; both stop, the standby first, so that it
// never took over; the standby starts again alone and activates (F2). Its
// new epoch must be above E: the standby persisted the epoch it heard, not
// only its own. Before, it activated in epoch 1 below the master's 2, and a
// receiver that ignores anything older than the newest epoch it has seen
// (the notifier's session moves, fencing by epoch) would have taken the new
// active node's messages for stale ones. The master then returns passive
// beside it (F3).
func TestProcessEpochAfterWholePairRestart(t *testing.T) {
	p, st := startPair(t, "manual")
	e := st.Epoch
	// The standby has heard the master active in e: its own status says so.
	p.WaitStatus("the standby hears the master active", waitLimit, func(s proctest.Status) bool {
		r, ok := s.Replies[standby]
		return ok && r.Peer != nil && r.Peer.State == "active" && r.Peer.Epoch == e
	})

	p.Term(standby)
	p.Term(master)

	mark := p.Watch().Mark()
	p.StartNode(standby)
	b, _ := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: standby, State: "active"})
	if b.Epoch <= e {
		t.Errorf("the standby, started alone after the master was active in epoch %d, activated in epoch %d: the pair's epoch went back", e, b.Epoch)
	}

	mark = p.Watch().Mark()
	p.StartNode(master)
	p.AwaitBeat(mark, waitLimit, proctest.Match{Node: master, State: "passive"})
	after := p.WaitStable(standby, waitLimit)
	if after.Epoch != b.Epoch {
		t.Errorf("after the master's return the pair is in epoch %d, want the standby's %d", after.Epoch, b.Epoch)
	}
	p.Term(master)
	p.Term(standby)
	checkInvariants(t, p)
}

//go:build linux

package proctest

import (
	"testing"
	"time"
)

// TestTakeovers: a passive node turning active is a failover; the master
// raising the epoch it is already active in (F7) is not, nor a beat at or
// below the starting epoch.
func TestTakeovers(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	seq := []struct {
		node, state string
		epoch       uint64
	}{
		{"a", "active", 2}, {"b", "passive", 0},
		{"b", "active", 3}, // a frozen: b takes over
		{"a", "active", 2}, // a resumes
		{"a", "active", 4}, // F7: the master stays active
		{"b", "passive", 3},
		{"b", "active", 5}, // again
		{"a", "active", 6},
	}
	var beats []Beat
	for i, s := range seq {
		at := t0.Add(time.Duration(i) * time.Millisecond)
		// Each beat is recorded twice (via both servers), out of order.
		b := Beat{Node: s.node, State: s.state, Epoch: s.epoch, Sent: at, Recv: at}
		beats = append([]Beat{b}, append(beats, b)...)
	}
	got := takeovers(beats, 2)
	if len(got) != 2 || got[0].Node != "b" || got[0].Epoch != 3 || got[1].Epoch != 5 {
		t.Errorf("takeovers = %v, want b in epochs 3 and 5", got)
	}
}

package failover

import (
	"testing"

	"github.com/tandem-ha/tandem/pkg/member"
)

// drain carries out m's Ready as the driver would, and returns its last
// persist (zero when none).
func drain(m *Machine) (last Ready) {
	for m.HasReady() {
		rd := m.Ready()
		m.Advance()
		if rd.PersistEpoch {
			last = rd
		}
	}
	return last
}

func reserveConfig(role member.Role, epoch, seen, reserved uint64) Config {
	return Config{Self: "n", Peer: "p", Role: role, Epoch: epoch, Seen: seen, Reserved: reserved,
		HeartbeatTicks: 1, TimeoutTicks: 3, DiscoveryTicks: 3, SettleTicks: 3, ConfirmTicks: 3}
}

// activateAlone ticks m through its discovery window, in which it hears no
// peer (F2), and returns the persist of its activation.
func activateAlone(t *testing.T, m *Machine) Ready {
	t.Helper()
	var rd Ready
	for range 10 {
		m.Tick()
		if p := drain(m); p.PersistEpoch {
			rd = p
		}
		if m.State() == Active {
			return rd
		}
	}
	t.Fatalf("not active after its discovery window: %s", m.State())
	return rd
}

// TestReservedEpoch: every write reserves the epoch of the node's next
// activation; an activation into it may be announced before it is written;
// a node starts above the reservation of its previous run, which it may
// have used unrecorded; an active node reserves nothing beyond its epoch.
func TestReservedEpoch(t *testing.T) {
	m, err := New(reserveConfig(member.Master, 0, 0, 0))
	if err != nil {
		t.Fatal(err)
	}
	start := drain(m)
	if !start.PersistEpoch || start.Reserve != 2 {
		t.Fatalf("a fresh master's start writes %+v, want a reservation of epoch 2", start)
	}
	act := activateAlone(t, m)
	if act.Epoch != 2 || act.Seen != 2 || act.Reserve != 2 {
		t.Fatalf("activation writes %+v, want epoch 2, seen 2, nothing reserved beyond it", act)
	}
	if !act.PersistAfterSend(2) {
		t.Error("an activation into the reserved epoch 2 must not wait for the disk")
	}
	if act.PersistAfterSend(0) {
		t.Error("an activation into epoch 2 with nothing reserved on disk must be written first")
	}

	// A standby whose last run reserved 5 (and may have used it): it
	// reserves 7 at its start and activates into 7, not 5.
	s, err := New(reserveConfig(member.Standby, 1, 4, 5))
	if err != nil {
		t.Fatal(err)
	}
	if rd := drain(s); rd.Reserve != 7 {
		t.Fatalf("the standby's start reserves %d, want 7 (above the 5 it had reserved)", rd.Reserve)
	}
	if act := activateAlone(t, s); act.Epoch != 7 {
		t.Fatalf("the standby activated into %d, want 7", act.Epoch)
	}

	// A peer's newer epoch is written before it is acted on, whatever is
	// reserved.
	seen := Ready{PersistEpoch: true, Epoch: 2, Seen: 9, Reserve: 10}
	if seen.PersistAfterSend(100) {
		t.Error("a newer epoch seen from the peer must be written first")
	}
	if (Ready{Epoch: 2, Seen: 2}).PersistAfterSend(100) {
		t.Error("nothing to persist: PersistAfterSend must be false")
	}
}

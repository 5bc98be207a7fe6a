package failover

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/tandem-ha/tandem/pkg/pairtest"
)

// TestRandomFaults drives the pair through random cuts, heals, kills,
// restarts, pauses, switchovers and maintenance, and checks after every step
// that no two nodes were active in one epoch and that no epoch was used
// before it was persisted. Half the runs have a health check that flips at
// random (F15). At the end the link is healed, both nodes run and are
// healthy, and the pair must settle to exactly one active node.
func TestRandomFaults(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomRun(t, seed) })
	}
}

// TestRandomFaultsRealTicks is the same with the driver's tick scale (20
// ticks per heartbeat interval, timeouts of three intervals), where most
// ticks are quiet: the harness checks on every tick that the ticks Quiet
// promises are quiet are (checkQuiet).
func TestRandomFaultsRealTicks(t *testing.T) {
	quiet := 0
	for seed := uint64(1); seed <= 30; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			quiet += randomRunWith(t, seed, func(r *rand.Rand) Config {
				return Config{HeartbeatTicks: 20, TimeoutTicks: 60, DiscoveryTicks: 60, SettleTicks: 60, ConfirmTicks: 60,
					FailbackAutomatic: r.IntN(2) == 0}
			}, 3000, 40)
		})
	}
	if quiet == 0 {
		t.Fatal("no tick was ever quiet: the check proved nothing")
	}
	t.Logf("%d quiet ticks verified", quiet)
}

func randomRun(t *testing.T, seed uint64) {
	randomRunWith(t, seed, func(r *rand.Rand) Config {
		c := Config{HeartbeatTicks: 1 + r.IntN(2), DiscoveryTicks: 3, SettleTicks: 3, ConfirmTicks: 4, FailbackAutomatic: r.IntN(2) == 0}
		c.TimeoutTicks = 3 * c.HeartbeatTicks
		return c
	}, 400, 1)
}

// randomRunWith runs steps random steps with the configuration cfg makes,
// a step of time being 1 to burst ticks, and returns how many quiet ticks
// the harness verified.
func randomRunWith(t *testing.T, seed uint64, cfg func(*rand.Rand) Config, steps, burst int) int {
	r := rand.New(rand.NewPCG(seed, seed))
	h := &harness{t: t}
	h.cfg = cfg(r)
	if r.IntN(2) == 0 {
		h.cfg.Checks = []CheckConfig{{Name: "x", Fall: 1 + r.IntN(3), Rise: 1 + r.IntN(2)}}
		h.cfg.TakeoverWhenUnhealthy = r.IntN(2) == 0
	}
	h.nodes = map[string]*simNode{"a": {name: "a", role: "master"}, "b": {name: "b", role: "standby"}}
	h.actives = &pairtest.Actives{}
	names := []string{"a", "b"}
	for step := 0; step < steps; step++ {
		n := h.nodes[names[r.IntN(2)]]
		op := r.IntN(100)
		switch {
		case op < 55:
			for range 1 + r.IntN(burst) {
				h.tick()
			}
		case op < 62:
			h.cut = !h.cut
		case op < 67 && n.m != nil:
			n.m = nil
			if p := h.peerOf(n); p.m != nil && !h.cut && r.IntN(2) == 0 {
				h.step(p, LinkDown{Gone: true})
			}
		case op < 75 && n.m == nil:
			h.start(n)
		case op < 80 && n.m != nil && n.paused == 0:
			n.paused = 1 + r.IntN(12)
			n.pausedN = n.paused
		case op < 85:
			h.step(n, Switchover{})
		case op < 88:
			h.step(n, SetMaintenance{On: r.IntN(2) == 0, For: 1 + r.IntN(10)})
		case op < 90:
			h.step(n, SyncState{InSync: r.IntN(3) > 0})
		case op < 92:
			h.step(n, LinkDown{})
		case op < 94:
			h.step(n, LinkUp{})
		case op < 98 && len(h.cfg.Checks) > 0:
			h.step(n, CheckResult{Name: "x", OK: r.IntN(2) == 0})
		}
		if err := h.checkInvariants(); err != nil {
			t.Fatalf("seed %d: %v\n%s", seed, err, h.out.String())
		}
	}
	// Heal everything and let it settle: exactly one active.
	h.cut = false
	for _, n := range h.nodes {
		if n.m == nil {
			h.start(n)
		}
		n.paused = 0
		h.step(n, SetMaintenance{On: false})
		h.step(n, SyncState{InSync: true})
		for range 2 {
			if len(h.cfg.Checks) > 0 {
				h.step(n, CheckResult{Name: "x", OK: true})
			}
		}
	}
	for i := 0; i < max(60, 10*h.cfg.TimeoutTicks); i++ {
		h.tick()
		if err := h.checkInvariants(); err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
	}
	var active []string
	for _, name := range names {
		if h.nodes[name].m.State() == Active {
			active = append(active, name)
		}
	}
	if len(active) != 1 {
		t.Fatalf("seed %d: after healing, active nodes %v (want exactly one)\n%s", seed, active, h.out.String())
	}
	if h.cfg.FailbackAutomatic && active[0] != "a" {
		t.Fatalf("seed %d: failback automatic, but %s is active after settling", seed, active[0])
	}
	return h.quietTicks
}

//go:build linux

package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// waitLimit bounds every wait of a benchmark; a run that needs longer fails
// the benchmark instead of hanging it.
const waitLimit = 60 * time.Second

// Product defaults the targets are stated for (SPEC §3, §10).
const (
	defaultInterval = time.Second
	defaultTimeout  = 3 * time.Second
	crashTarget     = 10 * time.Millisecond // SPEC §10: p95 ≤ 10 ms
)

// randomPhase waits a random part of a heartbeat interval, so that a fault
// lands anywhere in the heartbeat cycle: the runs follow the pair's settling,
// which happens at a fixed phase of it.
func randomPhase() {
	time.Sleep(rand.N(defaultInterval)) // deliberate: the fault's random instant
}

// startPair starts a pair with the product's default settings, the master
// first, and waits until the master is active and the standby passive.
func startPair(t proctest.T, e env) (*proctest.Pair, proctest.Status) {
	return proctest.StartActive(t, proctest.Options{Binary: e.bin, Pair: "bench", Wait: waitLimit})
}

// crashFailover: kill -9 of the active node's process, at a random phase of
// the heartbeat cycle, timed from just before the kill to the arrival of the
// survivor's first heartbeat saying active, at a client of the survivor's own
// server. The killed node is restarted (it comes back passive: failback
// manual) and is the survivor of the next run. The survivor's own phase
// metrics are reported beside, as it records them.
func crashFailover(t proctest.T, e env) []row {
	p, st := startPair(t, e)
	return crashRuns(t, e, p, st, "crash failover: kill -9 → peer's heartbeat says active")
}

// crashFailoverWitness is crashFailover with a witness configured (F14):
// the survivor takes the lease over before it activates.
func crashFailoverWitness(t proctest.T, e env) []row {
	p, st := proctest.StartActive(t, proctest.Options{Binary: e.bin, Pair: "bench", Wait: waitLimit, Witness: &proctest.WitnessOptions{}})
	return crashRuns(t, e, p, st, "crash failover with a witness (F14)")
}

func crashRuns(t proctest.T, e env, p *proctest.Pair, st proctest.Status, what string) []row {
	active := p.Master
	var total, detection, activation []float64
	for i := range e.runs {
		survivor := p.Peer(active)
		before := scrapePhases(t, p, survivor)
		randomPhase()
		mark := p.Watch().Mark()
		killed := p.Kill9(active)
		b, _ := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: survivor, State: "active", Via: survivor, MinEpoch: st.Epoch + 1})
		took := b.Recv.Sub(killed)
		total = append(total, took.Seconds())
		after := awaitPhases(t, p, survivor, before)
		det, okDet := after.delta(before, "detection")
		act, okAct := after.delta(before, "activation")
		if okDet && okAct {
			detection, activation = append(detection, det), append(activation, act)
		}
		fmt.Fprintf(e.log, "  run %2d: kill -9 %s → %s active in epoch %d after %v (its metrics: detection %s, activation %s)\n",
			i+1, active, survivor, b.Epoch, took.Round(time.Microsecond), fmtPhase(det, okDet), fmtPhase(act, okAct))
		p.StartNode(active)
		active = survivor
		st = p.WaitStable(active, waitLimit)
	}
	return []row{
		{what: what, unit: seconds, samples: total,
			target: &target{"p95", crashTarget.Seconds()}},
		{what: `  survivor's failover_phase_seconds{phase="detection"}`, unit: seconds, samples: detection},
		{what: `  survivor's failover_phase_seconds{phase="activation"}`, unit: seconds, samples: activation},
	}
}

// lastBeat is the last of beats that matches m.
func lastBeat(beats []proctest.Beat, m proctest.Match) (proctest.Beat, bool) {
	match := m.Func()
	for i := len(beats) - 1; i >= 0; i-- {
		if match(beats[i]) {
			return beats[i], true
		}
	}
	return proctest.Beat{}, false
}

// phases are the sums and counts of the survivor's
// tandem_monitor_failover_phase_seconds histogram.
type phases map[string]float64

const phaseMetric = "tandem_monitor_failover_phase_seconds"

func scrapePhases(t proctest.T, p *proctest.Pair, node string) phases {
	m, err := p.Metrics(node)
	if err != nil {
		t.Logf("metrics of %s: %v", node, err)
		return nil
	}
	out := phases{}
	for _, ph := range []string{"detection", "activation"} {
		for _, part := range []string{"_sum", "_count"} {
			key := fmt.Sprintf("%s%s{phase=%q}", phaseMetric, part, ph)
			out[ph+part] = m[key]
		}
	}
	return out
}

// awaitPhases scrapes node's phases until both have one more observation
// than before: the survivor records them after it has sent the heartbeat
// the run is timed by. It gives up after a few seconds.
func awaitPhases(t proctest.T, p *proctest.Pair, node string, before phases) phases {
	deadline := time.Now().Add(5 * time.Second)
	for {
		after := scrapePhases(t, p, node)
		_, det := after.delta(before, "detection")
		_, act := after.delta(before, "activation")
		if det && act || time.Now().After(deadline) {
			return after
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// delta is the phase's duration in seconds when exactly one was observed
// between the two scrapes.
func (after phases) delta(before phases, phase string) (float64, bool) {
	if after == nil || before == nil || after[phase+"_count"]-before[phase+"_count"] != 1 {
		return 0, false
	}
	return after[phase+"_sum"] - before[phase+"_sum"], true
}

func fmtPhase(v float64, ok bool) string {
	if !ok {
		return "?"
	}
	return time.Duration(v * float64(time.Second)).Round(time.Microsecond).String()
}

// idleCost: an idle, linked pair at the default heartbeats, measured over
// e.idle: each node's CPU time over the whole period as a share of one core
// (the target: SPEC §10's "≤ 1 % of one core" is a node's average cost while
// idle), and, for information, the same in three windows, with the resident
// memory at the end of each. A window's share moves in steps of one clock
// tick (10 ms of CPU: 0.1 % of a 10 s window) and with whatever else the
// machine runs in it, so its maximum says more about the machine than about
// the node. A failover while idle fails the benchmark.
func idleCost(t proctest.T, e env) []row {
	p, st := startPair(t, e)
	const windows = 3
	var perWindow, rss []float64
	first := usage(t, p)
	from := first
	for w := range windows {
		time.Sleep(e.idle / windows) // the measurement window itself
		to := usage(t, p)
		for _, n := range []string{p.Master, p.Standby} {
			share := proctest.CPUShare(from[n], to[n]) * 100
			perWindow, rss = append(perWindow, share), append(rss, float64(to[n].RSS))
			fmt.Fprintf(e.log, "  window %d, %s: CPU %.3f %% of one core, RSS %.1f MiB\n", w+1, n, share, float64(to[n].RSS)/(1<<20))
		}
		from = to
	}
	var whole []float64
	for _, n := range []string{p.Master, p.Standby} {
		share := proctest.CPUShare(first[n], from[n]) * 100
		whole = append(whole, share)
		fmt.Fprintf(e.log, "  %s over %v: CPU %.3f %% of one core\n", n, e.idle, share)
	}
	if now := p.Status(time.Second); !now.Stable(p.Master) || now.Epoch != st.Epoch {
		t.Errorf("the idle pair changed: before %v, after %v", st, now)
	}
	return []row{
		{what: fmt.Sprintf("idle pair, %v: CPU per node (one core)", e.idle), unit: percent, samples: whole,
			target: &target{"max", 1}},
		{what: fmt.Sprintf("idle pair: CPU per node per %v window (one core)", e.idle/windows), unit: percent, samples: perWindow},
		{what: fmt.Sprintf("idle pair, %v: resident memory per node", e.idle), unit: bytes, samples: rss,
			target: &target{"max", 100 << 20}},
	}
}

func usage(t proctest.T, p *proctest.Pair) map[string]proctest.Usage {
	out := map[string]proctest.Usage{}
	for _, n := range []string{p.Master, p.Standby} {
		u, err := p.Usage(n)
		if err != nil {
			t.Fatalf("usage of %s: %v", n, err)
		}
		out[n] = u
	}
	return out
}

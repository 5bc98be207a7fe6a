//go:build linux

package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/config"
)

// A lost host sends no reset: the peer learns of it only from the silence
// (F6). These benchmarks lose the active node's host in two ways — its
// process frozen with SIGSTOP (a hung VM), or its link cut silently in
// network namespaces (a pulled cable) — at both heartbeat profiles (F16),
// and count the failovers that should not happen: freezes shorter than the
// timeout on a machine whose cores are saturated.

// fault is how a host is lost.
type fault int

const (
	sigstop fault = iota // the process frozen
	linkCut              // the link between the namespaces drops every packet
)

func (f fault) String() string {
	if f == linkCut {
		return "silent link cut"
	}
	return "SIGSTOP"
}

// profileOptions are a pair's options at a heartbeat profile. The discovery
// window is long at every profile: a starved node must not look absent at
// the start, which is not what is measured.
func profileOptions(e env, profile string, netns bool) proctest.Options {
	return proctest.Options{Binary: e.bin, Pair: "bench", Wait: waitLimit, Netns: netns,
		Heartbeat: proctest.Heartbeat{Discovery: 2 * time.Second},
		Extra:     func(string) map[string]any { return map[string]any{"heartbeat.profile": profile} }}
}

// hostLossTarget is SPEC §10's bound for a profile: fast ≤ 400 ms, seed ≤
// the timeout + 100 ms.
func hostLossTarget(profile string) *target {
	if profile == config.ProfileFast {
		return &target{"p95", 0.400}
	}
	return &target{"p95", (config.Profiles[profile].Timeout + 100*time.Millisecond).Seconds()}
}

func hostLossAll(t proctest.T, e env) []row {
	rows := hostLoss(t, e, config.ProfileFast, sigstop)
	if err := proctest.NetnsAvailable(); err != nil {
		msg := "not run: " + err.Error()
		return append(rows,
			row{what: "host loss, fast: silent link cut → peer's heartbeat says active", failure: msg},
			row{what: "host loss, seed: silent link cut → peer's heartbeat says active", failure: msg})
	}
	rows = append(rows, hostLoss(t, e, config.ProfileFast, linkCut)...)
	return append(rows, hostLoss(t, e, config.ProfileSeed, linkCut)...)
}

// silentFailover is the seed profile's SIGSTOP (the product's default).
func silentFailover(t proctest.T, e env) []row {
	return hostLoss(t, e, config.ProfileSeed, sigstop)
}

// hostLoss: the active node's host lost (f), at a random phase of the
// heartbeat cycle, timed from just before the fault to the arrival of the
// peer's first heartbeat saying active, at a client of the peer's own
// server; and, independent of the phase, from the arrival of the lost
// node's last heartbeat there (the silence the peer measures). The fault is
// then undone; the pair settles with the master active (F7) before the next
// run.
func hostLoss(t proctest.T, e env, profile string, f fault) []row {
	p, st := proctest.StartActive(t, profileOptions(e, profile, f == linkCut))
	interval := config.Profiles[profile].Interval
	var total, silence []float64
	for i := range e.runs {
		active := p.Master
		survivor := p.Peer(active)
		time.Sleep(rand.N(interval)) // deliberate: the fault's random instant
		mark := p.Watch().Mark()
		var lost time.Time
		if f == linkCut {
			lost = p.Cut()
		} else {
			lost = p.Stop(active)
		}
		b, next := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: survivor, State: "active", Via: survivor, MinEpoch: st.Epoch + 1})
		if f == linkCut {
			p.Heal()
		} else {
			p.Cont(active)
		}
		took := b.Recv.Sub(lost)
		total = append(total, took.Seconds())
		last, ok := lastBeat(p.Watch().Since(0)[:next], proctest.Match{Node: active, Via: survivor})
		quiet := "?"
		if ok {
			silence = append(silence, b.Recv.Sub(last.Recv).Seconds())
			quiet = b.Recv.Sub(last.Recv).Round(time.Millisecond).String()
		}
		fmt.Fprintf(e.log, "  run %2d, %s: %s of %s → %s active in epoch %d after %v (%s after %s's last heartbeat); undone, settling\n",
			i+1, profile, f, active, survivor, b.Epoch, took.Round(time.Millisecond), quiet, active)
		st = p.WaitStable(p.Master, waitLimit)
	}
	stopPair(p)
	what := fmt.Sprintf("host loss, %s: %s → peer's heartbeat says active", profile, f)
	if profile == config.ProfileSeed && f == sigstop {
		what = "silent failover (seed): SIGSTOP → peer's heartbeat says active"
	}
	return []row{
		{what: what, unit: seconds, samples: total, target: hostLossTarget(profile)},
		{what: "  the same, from the lost node's last heartbeat", unit: seconds, samples: silence},
	}
}

// Stress settings of SPEC §10's false-failover row.
const (
	stressBurners = 4 // two per core
	stressEvery   = 30 * time.Second
	stressFreeze  = 300 * time.Millisecond
)

// falseFailovers: at each profile, a stable pair for e.stress with
// stressBurners CPU burners and a stressFreeze SIGSTOP of the active node
// every stressEvery. Nothing dies, so every activation is a false failover.
// One sample per profile: the count (target 0).
func falseFailovers(t proctest.T, e env) []row {
	var rows []row
	for _, profile := range []string{config.ProfileFast, config.ProfileSeed} {
		p, st := proctest.StartActive(t, profileOptions(e, profile, false))
		// A freeze longer than the timeout less one interval (less 5 ms
		// for the resumed node's first heartbeat) may be taken for a
		// death by right.
		hb := config.Profiles[profile]
		r := p.Stress(p.Master, st.Epoch, proctest.Stress{Burners: stressBurners, Every: stressEvery, Freeze: stressFreeze,
			Tolerated: hb.Timeout - hb.Interval - 5*time.Millisecond, For: e.stress})
		fmt.Fprintf(e.log, "  %s: %v\n", profile, r)
		if r.Freezes == 0 {
			t.Errorf("%s: no freeze in %v", profile, e.stress)
		}
		rows = append(rows, row{what: fmt.Sprintf("false failovers, %s, %v: %d burners + %v SIGSTOP of the active every %v (%d freezes)",
			profile, e.stress, stressBurners, stressFreeze, stressEvery, r.Freezes),
			unit: count, samples: []float64{float64(r.FalseFailovers)}, target: &target{"max", 0}})
		if p.CheckInvariants() == 0 {
			t.Errorf("%s: no heartbeat recorded", profile)
		}
		stopPair(p)
	}
	return rows
}

// stopPair ends both nodes of a pair the benchmark is done with, so that
// they do not load the machine during the next measurement.
func stopPair(p *proctest.Pair) {
	for _, n := range []string{p.Standby, p.Master} {
		if p.Running(n) {
			p.Term(n)
		}
	}
}

//go:build linux

package proctest

import (
	"fmt"
	"os/exec"
	"sort"
	"syscall"
	"time"
)

// Burn starts n processes that each keep one CPU busy (a shell's empty
// loop), as the rest of a loaded machine does, and returns a func that
// kills them; the harness's cleanup kills them too. Each is started with
// Pdeathsig=SIGKILL and killed by its PID.
func Burn(t T, n int) (stop func()) {
	t.Helper()
	var procs []*proc
	for range n {
		cmd := exec.Command("sh", "-c", "while :; do :; done")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatalf("proctest: a CPU burner: %v", err)
		}
		pr := &proc{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), done: make(chan struct{})}
		track(pr)
		go func() {
			pr.waitErr = cmd.Wait()
			untrack(pr)
			close(pr.done)
		}()
		procs = append(procs, pr)
	}
	stop = func() {
		for _, pr := range procs {
			if err := pr.kill(10 * time.Second); err != nil {
				t.Errorf("proctest: a CPU burner: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return stop
}

// Stress describes a run of freezes of the active node while the machine is
// loaded: every Every, the node last seen active is frozen with SIGSTOP for
// Freeze, for For in all, with Burners CPU burners running throughout.
//
// On a loaded machine the harness itself may be late to resume a node: a
// freeze that lasted longer than Tolerated (default Freeze + 20 ms) may be
// taken for a death by right, and an activation during it or within a
// second after it is counted apart (Overlong), not as a false failover.
type Stress struct {
	Burners   int
	Every     time.Duration
	Freeze    time.Duration
	Tolerated time.Duration
	For       time.Duration
}

// StressResult is what a Stress run saw.
type StressResult struct {
	Freezes int
	// Frozen are the freezes' real lengths, SIGSTOP to SIGCONT, as the
	// harness managed them on the loaded machine.
	Frozen []time.Duration
	// FalseFailovers counts the epochs a passive node activated into
	// during the run (takeovers, not the master's F7 repair), except in
	// the wake of an overlong freeze: no node died, so each is a failover
	// that should not have happened.
	FalseFailovers int
	// Epochs are those epochs.
	Epochs []uint64
	// Overlong counts the freezes longer than Stress.Tolerated, and
	// OverlongEpochs the activations in their wake.
	Overlong       int
	OverlongEpochs []uint64
	// Beats is the number of heartbeats recorded during the run.
	Beats int
}

// freeze is one freeze of a Stress run.
type freeze struct{ stopped, resumed time.Time }

func (r StressResult) String() string {
	longest := time.Duration(0)
	for _, d := range r.Frozen {
		longest = max(longest, d)
	}
	return fmt.Sprintf("%d freezes (longest %v; %d longer than tolerated, followed by %d activations), %d false failovers (epochs %v), %d heartbeats",
		r.Freezes, longest.Round(time.Millisecond), r.Overlong, len(r.OverlongEpochs), r.FalseFailovers, r.Epochs, r.Beats)
}

// Stress runs s on a pair that is stable in epoch (the active node is the
// one given), and returns what happened. It leaves the pair running, with
// every process resumed.
func (p *Pair) Stress(active string, epoch uint64, s Stress) StressResult {
	p.t.Helper()
	if s.Tolerated == 0 {
		s.Tolerated = s.Freeze + 20*time.Millisecond
	}
	if s.Burners > 0 {
		defer Burn(p.t, s.Burners)()
	}
	mark := p.watch.Mark()
	var r StressResult
	var overlong []freeze
	end := time.Now().Add(s.For)
	next := time.Now().Add(s.Every)
	for time.Until(next) > 0 && next.Before(end) {
		time.Sleep(time.Until(next)) // the freeze's schedule
		next = next.Add(s.Every)
		node := p.lastActive(mark, active)
		f := freeze{stopped: p.Stop(node)}
		time.Sleep(s.Freeze - time.Since(f.stopped)) // the freeze itself
		f.resumed = p.Cont(node)
		r.Freezes++
		r.Frozen = append(r.Frozen, f.resumed.Sub(f.stopped))
		if f.resumed.Sub(f.stopped) > s.Tolerated {
			overlong = append(overlong, f)
		}
	}
	time.Sleep(time.Until(end)) // the rest of the run, under load
	beats := p.watch.Since(mark)
	r.Beats, r.Overlong = len(beats), len(overlong)
	for _, b := range takeovers(beats, epoch) {
		if inWake(b.Recv, overlong) {
			r.OverlongEpochs = append(r.OverlongEpochs, b.Epoch)
		} else {
			r.Epochs = append(r.Epochs, b.Epoch)
		}
	}
	r.FalseFailovers = len(r.Epochs)
	return r
}

// takeovers are the first beats of a passive node turned active in an epoch
// above epoch: failovers. A node that was already active and raises its
// epoch (the master resolving two actives, F7) is not one.
func takeovers(beats []Beat, epoch uint64) []Beat {
	sort.SliceStable(beats, func(i, j int) bool { return beats[i].Sent.Before(beats[j].Sent) })
	last := map[string]string{} // node → state of its previous beat
	seen := map[uint64]bool{}
	var out []Beat
	for _, b := range beats {
		prev, known := last[b.Node]
		last[b.Node] = b.State
		if b.State != "active" || b.Epoch <= epoch || seen[b.Epoch] || !known || prev == "active" {
			continue
		}
		seen[b.Epoch] = true
		out = append(out, b)
	}
	return out
}

// inWake reports whether t falls during one of freezes or within a second
// after it.
func inWake(t time.Time, freezes []freeze) bool {
	for _, f := range freezes {
		if !t.Before(f.stopped) && t.Before(f.resumed.Add(time.Second)) {
			return true
		}
	}
	return false
}

// lastActive is the node of the last active beat in the highest epoch since
// mark, or def.
func (p *Pair) lastActive(mark int, def string) string {
	node, top := def, uint64(0)
	for _, b := range p.watch.Since(mark) {
		if b.State == "active" && b.Epoch >= top {
			node, top = b.Node, b.Epoch
		}
	}
	return node
}

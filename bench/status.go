//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

func init() {
	benchmarks = append(benchmarks, benchmark{"status",
		"tandem status (the binary, a new process each time) with both nodes up, then with the active node killed", statusTimes})
}

// Targets of SPEC §10 (measured before: 58 ms both up, 7.1 s with a node dead).
const (
	statusUpTarget   = 100 * time.Millisecond
	statusDeadTarget = 300 * time.Millisecond
)

// statusTimes: `tandem status --pair P --server <both nodes>` timed from
// the command's start to its exit, as an operator's shell sees it; first
// with both nodes up, then after a kill -9 of the active master (the
// standby took over; the first URL given is the dead node's, refused).
func statusTimes(t proctest.T, e env) []row {
	p, st := startPair(t, e)
	servers := p.Servers(p.Master, p.Standby)
	var start []float64
	for range e.runs {
		t0 := time.Now()
		if r := p.CLI("--version"); r.Code != 0 {
			t.Fatalf("tandem --version: exit %d: %s", r.Code, r.Stderr)
		}
		start = append(start, time.Since(t0).Seconds())
	}
	up := timeStatus(t, e, p, servers, "")
	mark := p.Watch().Mark()
	p.Kill9(p.Master)
	p.AwaitBeat(mark, waitLimit, proctest.Match{Node: p.Standby, State: "active", Via: p.Standby, MinEpoch: st.Epoch + 1})
	dead := timeStatus(t, e, p, servers, p.Master)
	return []row{
		{what: "tandem --version (the process's start and exit alone)", unit: seconds, samples: start},
		{what: "tandem status, both nodes up", unit: seconds, samples: up, target: &target{"p95", statusUpTarget.Seconds()}},
		{what: "tandem status, the active node killed", unit: seconds, samples: dead, target: &target{"p95", statusDeadTarget.Seconds()}},
	}
}

// timeStatus runs tandem status e.runs times; each must answer and, when
// dead is set, show that node as unreachable.
func timeStatus(t proctest.T, e env, p *proctest.Pair, servers, dead string) []float64 {
	var out []float64
	for i := range e.runs {
		start := time.Now()
		r := p.CLI("status", "--pair", p.Name, "--server", servers)
		took := time.Since(start)
		if r.Code != 0 {
			t.Fatalf("tandem status: exit %d: %s", r.Code, r.Stderr)
		}
		if dead != "" && !strings.Contains(r.Stdout, "last active") {
			t.Fatalf("tandem status does not show %s as unreachable:\n%s", dead, r.Stdout)
		}
		out = append(out, took.Seconds())
		fmt.Fprintf(e.log, "  run %2d: %v\n", i+1, took.Round(time.Millisecond))
	}
	return out
}

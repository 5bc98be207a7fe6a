//go:build linux

// Command benchrun measures the figures of SPEC §10 on real `tandem node`
// processes and prints them beside their targets (`make bench`):
//
//	go run ./cmd/tandem/internal/benchrun -tandem ./bin/tandem [-runs 20] [-only crash-failover,idle]
//
// Each benchmark is an entry of the registry (benchmarks): a function that
// runs pairs through internal/proctest and returns rows of samples. The
// table shows, per row, the number of samples, p50, p95 and max (nearest
// rank), the target and the verdict. The figures are what was measured on
// this machine, with the product's default heartbeat settings; a missed
// target is reported, not hidden, and does not change the exit status. The
// exit status is 1 when a benchmark could not run.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// env is what every benchmark is given.
type env struct {
	bin  string        // the tandem binary
	runs int           // samples per failover benchmark
	idle time.Duration // length of the idle measurement
	// stress is the length of each false-failover run
	stress time.Duration
	log    io.Writer // progress lines
}

// benchmark is one entry of the registry.
type benchmark struct {
	name  string // for -only
	about string
	run   func(t proctest.T, e env) []row
}

// explicitOnly are the benchmarks that run only when -only names them: they
// need more than Tandem (make bench-peers installs it).
var explicitOnly = map[string]bool{"peers": true}

// benchmarks is the registry, in the order the table shows them. Later
// rows of SPEC §10 (sessions, replication, audit) join it as their services
// arrive.
var benchmarks = []benchmark{
	{"crash-failover", "kill -9 of the active node's process → the peer's first active heartbeat", crashFailover},
	{"crash-failover-witness", "the same with a witness configured (F14): the peer takes the lease over first", crashFailoverWitness},
	{"silent-failover", "SIGSTOP of the active node's process → the peer's first active heartbeat", silentFailover},
	{"host-loss", "host loss at the fast profile (SIGSTOP, silent cut in network namespaces) and a silent cut at seed → the peer's first active heartbeat", hostLossAll},
	{"false-failovers", "both cores saturated by CPU burners plus a 300 ms SIGSTOP of the active node every 30 s, at the fast and seed profiles: failovers counted", falseFailovers},
	{"peers", "keepalived and Redis Sentinel through the same kill -9 and SIGSTOP as Tandem, beside Tandem's figures (make bench-peers; only with -only)", peers},
	{"idle", "an idle pair: CPU and resident memory per node", idleCost},
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, out, errOut io.Writer) int {
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(errOut)
	bin := fs.String("tandem", "./bin/tandem", "the tandem binary to measure")
	runs := fs.Int("runs", 20, "samples per failover benchmark")
	only := fs.String("only", "", "comma list of benchmarks to run (default all): "+names())
	idle := fs.Duration("idle", 30*time.Second, "how long the idle pair is measured")
	stress := fs.Duration("stress", 10*time.Minute, "how long each false-failover run lasts, per profile")
	bare := fs.String("bare-replay", "", "internal: the floor of audit-replay, run as a process of its own")
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile (the sessions' clients, the floors) to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *bare != "" {
		if err := bareConsume(*bare); err != nil {
			fmt.Fprintln(errOut, "benchrun: bare replay:", err)
			return 1
		}
		return 0
	}
	selected, err := selectBenchmarks(*only)
	if err != nil {
		fmt.Fprintln(errOut, "benchrun:", err)
		return 2
	}
	if *runs < 1 || *idle < time.Second || *stress < time.Minute {
		fmt.Fprintln(errOut, "benchrun: -runs must be at least 1, -idle at least 1s and -stress at least 1m")
		return 2
	}
	path, err := filepath.Abs(*bin)
	if err == nil {
		_, err = os.Stat(path)
	}
	if err != nil {
		fmt.Fprintf(errOut, "benchrun: the tandem binary: %v (run make build, or pass -tandem)\n", err)
		return 2
	}
	if *cpuProfile != "" {
		stop, err := profileCPU(*cpuProfile)
		if err != nil {
			fmt.Fprintln(errOut, "benchrun:", err)
			return 2
		}
		defer stop()
	}
	e := env{bin: path, runs: *runs, idle: *idle, stress: *stress, log: errOut}
	var rows []row
	failed := false
	for _, b := range selected {
		fmt.Fprintf(errOut, "benchrun: %s: %s\n", b.name, b.about)
		var got []row
		err := proctest.Run(b.name, errOut, func(t proctest.T) { got = b.run(t, e) })
		if err != nil {
			failed = true
			got = append(got, row{what: b.name, failure: err.Error()})
		}
		rows = append(rows, got...)
	}
	printReport(out, e, rows)
	if failed {
		return 1
	}
	return 0
}

func names() string {
	var n []string
	for _, b := range benchmarks {
		n = append(n, b.name)
	}
	return strings.Join(n, ", ")
}

func selectBenchmarks(only string) ([]benchmark, error) {
	if only == "" {
		var out []benchmark
		for _, b := range benchmarks {
			if !explicitOnly[b.name] {
				out = append(out, b)
			}
		}
		return out, nil
	}
	var out []benchmark
	for _, name := range strings.Split(only, ",") {
		name = strings.TrimSpace(name)
		found := false
		for _, b := range benchmarks {
			if b.name == name {
				out, found = append(out, b), true
			}
		}
		if !found {
			return nil, fmt.Errorf("no benchmark %q (have %s)", name, names())
		}
	}
	return out, nil
}

// profileCPU starts a CPU profile written to path; stop ends it.
func profileCPU(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

//go:build linux

// Package proctest runs a Tandem pair as real `tandem node` processes, the
// way an operator runs it, and breaks it the way production does: kill -9
// (Kill9), a frozen process (Stop, Cont), a clean shutdown (Term) and a
// return (Restart). It is the harness of the process tests of cmd/tandem and
// of the benchmarks (internal/benchrun).
//
// A Pair writes two node configurations with free loopback ports and data
// directories under the harness's temporary directory, starts each node in
// its own process group with its output in a log file, and keeps one NATS
// connection to each node's own server. On those connections it records
// every heartbeat of the pair (Watch), timestamped on arrival, so that a test
// can wait for a state change and check the invariants at the end
// (CheckInvariants), and asks each node for its status (Status) without
// starting a CLI process.
//
// The harness stops only the processes it started, by their PID, at the
// harness's cleanup (also after a failure, when it also prints the tail of
// every node's log). As a last resort against a test binary that dies
// without cleanup (a -timeout panic), every node is started with
// Pdeathsig=SIGKILL. Every wait is bounded: a condition is polled, or a
// heartbeat awaited, until a deadline, and the test fails instead of hanging.
// Nothing waits by sleeping for a fixed time.
//
// # Concurrency
//
// A Pair is driven by one goroutine, the test's (T.Fatalf must be called
// from it): its methods are not safe for concurrent use. Per process, one
// goroutine waits for the exit and closes proc.done; the NATS subscriptions
// append to the Watch, which is safe for concurrent use.
//
// # Use outside tests
//
// T is the part of testing.TB the harness needs. Standalone (Run) provides
// one for programs such as the benchmarks, where Fatalf ends the function
// given to Run.
package proctest

import (
	"time"
)

// Default node names of a Pair: the master and the standby.
const (
	DefaultMaster  = "a"
	DefaultStandby = "b"
)

// T is the part of testing.TB the harness uses.
type T interface {
	Helper()
	Logf(format string, args ...any)
	Errorf(format string, args ...any)
	Fatalf(format string, args ...any)
	Cleanup(func())
	TempDir() string
	Failed() bool
}

// Heartbeat is the heartbeat section of both nodes' configuration. A zero
// field is left out of the file, so the product's default applies.
type Heartbeat struct {
	Interval  time.Duration
	Timeout   time.Duration
	Discovery time.Duration
	Settle    time.Duration
}

// Hooks is the hooks section of both nodes' configuration.
type Hooks struct {
	OnActive  string
	OnPassive string
	Timeout   time.Duration
}

// Options describe a pair.
type Options struct {
	// Binary is the tandem binary; "" builds it once per process (Build).
	Binary string
	// Pair is the pair's name; "" means "p1".
	Pair string
	// Master and Standby name the nodes; "" means "a" and "b".
	Master, Standby string
	Heartbeat       Heartbeat
	// Hosts is the hosts key (node → client-facing host); nil means
	// <node>.test for each node.
	Hosts map[string]string
	// Failback is "manual" or "automatic"; "" leaves the product default.
	Failback string
	Hooks    Hooks
	// LogLevel of the nodes; "" means info.
	LogLevel string
	// Extra returns more configuration keys for a node, as dotted keys
	// ("maintenance.default") and their values; nil for none.
	Extra func(node string) map[string]any
	// Netns runs each node in a network namespace of its own, the two
	// joined by a veth pair that Cut, CutOneWay and Heal break and mend
	// (Linux, root, ip and iptables: see NetnsAvailable). The nodes then
	// listen on their link addresses (with insecure: true: the link is
	// private to the pair), and the CLI runs in the master's namespace.
	Netns bool
	// Witness runs a `tandem witness` for the pair (Pair.Witness) and sets
	// both nodes' witness.url to it; with Netns in a third namespace that
	// each node reaches over a link of its own, which Cut does not touch.
	// Extra may set witness.creds and witness.required.
	Witness *WitnessOptions
	// Wait bounds every wait of the harness that has no bound of its own
	// (start-up, shutdown); 0 means 30 s.
	Wait time.Duration
}

func (o Options) withDefaults() Options {
	if o.Pair == "" {
		o.Pair = "p1"
	}
	if o.Master == "" {
		o.Master = DefaultMaster
	}
	if o.Standby == "" {
		o.Standby = DefaultStandby
	}
	if o.LogLevel == "" {
		o.LogLevel = "info"
	}
	if o.Wait <= 0 {
		o.Wait = 30 * time.Second
	}
	return o
}

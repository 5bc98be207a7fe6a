//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// The fleet rows of SPEC §10: three real `tandem hub` processes, routed;
// one real pair (two `tandem node` processes uplinked with hub.url) and
// 999 simulated pairs. A simulated pair is what an idle pair's uplink sends:
// its status object (two nodes, as `tandem status --json`) written into the
// fleet bucket every 10 s, each pair at its own phase, over 10 client
// connections of this process spread over the hub servers (not 999 leafnode
// connections: the hub's cost of a leaf connection's pings is not counted).
func init() {
	benchmarks = append(benchmarks, benchmark{"fleet",
		"1,000 pairs on a 3-server hub (1 real, 999 simulated): fleet status, activation → fleet view, hub CPU", fleetHub})
}

const (
	fleetPairs         = 1000
	fleetStatusTarget  = time.Second
	fleetViewTarget    = 500 * time.Millisecond
	fleetCPUTarget     = 100.0 // % of one core, the three hub servers together
	simulatedEvery     = 10 * time.Second
	simulatedConns     = 10
	fleetClientTimeout = "10s"
)

func fleetHub(t proctest.T, e env) []row {
	hubs := proctest.StartHubs(t, e.bin, 3)
	clients := proctest.HubURLs(hubs, false)
	// The hub processes are still starting: connect in the background.
	nc, err := nats.Connect(clients, nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect to the hub: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	var kv jetstream.KeyValue
	deadline := time.Now().Add(2 * waitLimit)
	for kv == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		kv, _ = js.KeyValue(ctx, subject.FleetBucket)
		cancel()
		if kv == nil && time.Now().After(deadline) {
			t.Fatalf("the hub made no fleet bucket in %v", 2*waitLimit)
		}
		time.Sleep(200 * time.Millisecond)
	}
	stop := simulatePairs(t, clients, fleetPairs-1)
	defer stop()
	p, st := proctest.StartActive(t, proctest.Options{Binary: e.bin, Pair: "real", Wait: waitLimit,
		Extra: func(string) map[string]any { return map[string]any{"hub.url": proctest.HubURLs(hubs, true)} }})
	waitView(t, kv, p.Name, p.Master, st.Epoch)
	fmt.Fprintf(e.log, "  %d simulated pairs and pair %s on the hub\n", fleetPairs-1, p.Name)

	var status []float64
	for i := range e.runs {
		t0 := time.Now()
		r := p.CLI("fleet", "status", "--json", "--server", clients, "--timeout", fleetClientTimeout)
		took := time.Since(t0)
		var v struct{ Pairs []json.RawMessage }
		if r.Code != 0 || json.Unmarshal([]byte(r.Stdout), &v) != nil || len(v.Pairs) < fleetPairs {
			t.Fatalf("tandem fleet status: exit %d, %d pairs: %s", r.Code, len(v.Pairs), r.Stderr)
		}
		status = append(status, took.Seconds())
		fmt.Fprintf(e.log, "  fleet status %2d: %d pairs in %v\n", i+1, len(v.Pairs), took.Round(time.Millisecond))
	}

	var view []float64
	active := p.Master
	for i := range e.runs {
		survivor := p.Peer(active)
		killed := p.Kill9(active)
		seen := waitView(t, kv, p.Name, survivor, st.Epoch+1)
		view = append(view, seen.Sub(killed).Seconds())
		fmt.Fprintf(e.log, "  run %2d: kill -9 %s → fleet view shows %s active after %v\n", i+1, active, survivor, seen.Sub(killed).Round(time.Millisecond))
		p.StartNode(active)
		active = survivor
		st = p.WaitStable(active, waitLimit)
	}

	var cpu []float64
	const windows = 3
	for w := range windows {
		from := hubUsage(t, hubs)
		time.Sleep(e.idle / windows)
		to := hubUsage(t, hubs)
		share := 0.0
		for i := range hubs {
			share += proctest.CPUShare(from[i], to[i]) * 100
		}
		cpu = append(cpu, share)
		fmt.Fprintf(e.log, "  window %d: the three hub servers together %.2f %% of one core\n", w+1, share)
	}
	return []row{
		{what: "fleet: tandem fleet status, 1,000 pairs on a 3-server hub", unit: seconds, samples: status,
			target: &target{"p95", fleetStatusTarget.Seconds()}},
		{what: "fleet: kill -9 of a pair's active node → fleet view shows the new active", unit: seconds, samples: view,
			target: &target{"p95", fleetViewTarget.Seconds()}},
		{what: fmt.Sprintf("fleet: hub CPU, 3 servers together, 1,000 idle pairs, %v", e.idle), unit: percent, samples: cpu,
			target: &target{"max", fleetCPUTarget}},
	}
}

func hubUsage(t proctest.T, hubs []*proctest.Hub) []proctest.Usage {
	out := make([]proctest.Usage, len(hubs))
	for i, h := range hubs {
		u, err := proctest.ReadUsage(h.Cmd.Process.Pid)
		if err != nil {
			t.Fatalf("hub usage: %v", err)
		}
		out[i] = u
	}
	return out
}

// waitView watches pair's key in the fleet bucket until it names active at
// epoch ≥ minEpoch, and returns when that entry arrived.
func waitView(t proctest.T, kv jetstream.KeyValue, pair, active string, minEpoch uint64) time.Time {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	w, err := kv.Watch(ctx, pair)
	if err != nil {
		t.Fatalf("watch %s: %v", pair, err)
	}
	defer w.Stop() //nolint:errcheck
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			var ps api.PairStatus
			if json.Unmarshal(e.Value(), &ps) == nil && ps.Active != nil && *ps.Active == active && ps.Epoch >= minEpoch {
				return time.Now()
			}
		case <-ctx.Done():
			t.Fatalf("the fleet view never showed %s active on %s (epoch ≥ %d)", pair, active, minEpoch)
		}
	}
}

// simulatePairs writes n idle pairs' status into the fleet bucket, each
// every simulatedEvery at its own phase, over simulatedConns connections;
// stop ends it.
func simulatePairs(t proctest.T, servers string, n int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for c := range simulatedConns {
		nc, err := nats.Connect(servers)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		wg.Go(func() {
			defer nc.Close()
			var mine []int
			for i := c; i < n; i += simulatedConns {
				mine = append(mine, i)
			}
			tk := time.NewTicker(simulatedEvery / time.Duration(len(mine)))
			defer tk.Stop()
			for k := 0; ; k++ {
				i := mine[k%len(mine)]
				_, _ = nc.Request(subject.FleetKey(fmt.Sprintf("sim-%04d", i)), simulatedStatus(i), 5*time.Second)
				select {
				case <-ctx.Done():
					return
				case <-tk.C:
				}
			}
		})
	}
	// The first round at once, so every pair is in the bucket.
	nc, err := nats.Connect(servers)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	for i := range n {
		if _, err := nc.Request(subject.FleetKey(fmt.Sprintf("sim-%04d", i)), simulatedStatus(i), 5*time.Second); err != nil {
			t.Fatalf("simulated pair %d: %v", i, err)
		}
	}
	return func() { cancel(); wg.Wait() }
}

// simulatedStatus is an idle pair's status as its uplink writes it.
func simulatedStatus(i int) []byte {
	a := "a"
	age := int64(400)
	ps := api.PairStatus{Pair: fmt.Sprintf("sim-%04d", i), Epoch: 2, Active: &a, Nodes: []api.NodeStatus{
		{Node: "a", Role: "master", State: "active", Epoch: 2, Reachable: true, Server: fmt.Sprintf("sim-%04d-a", i),
			Replication: &api.ReplStatus{Node: "a", Role: "master", State: "running"},
			Sessions:    &api.SessionStatus{Node: "a", Epoch: 2, Active: "a", Known: 40, Acknowledged: 40},
			License:     &api.LicenseState{Node: "a", Role: "master", Status: "valid", Licenses: 1}},
		{Node: "b", Role: "standby", State: "passive", Epoch: 2, Reachable: true, HeartbeatAgeMS: &age, Server: fmt.Sprintf("sim-%04d-b", i),
			Replication: &api.ReplStatus{Node: "b", Role: "standby", State: "running"},
			Sessions:    &api.SessionStatus{Node: "b", Epoch: 2, Active: "a", Known: 40, Acknowledged: 40},
			License:     &api.LicenseState{Node: "b", Role: "standby", Status: "valid", Licenses: 1}},
	}}
	b, _ := json.Marshal(ps)
	return b
}

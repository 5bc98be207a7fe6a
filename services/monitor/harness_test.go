package monitor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/pairtest"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/monitor"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
)

const pairName = "p"

// waitLimit bounds every wait: tests fail instead of hanging, and never use
// it to prove speed.
const waitLimit = 20 * time.Second

// world is a pair of real NATS servers with a monitor on each node.
type world struct {
	t     *testing.T
	pair  *pairtest.Pair
	nodes map[string]*tnode
	inv   *invariants
	edit  func(*config.Config)
	// prepare, when set, sees each node's monitor before it runs.
	prepare func(node string, s *monitor.Service)
}

// tnode is one node's monitor and what the test observes of it.
type tnode struct {
	name    string
	dir     string
	reg     *prometheus.Registry
	svc     *monitor.Service
	nc      *nats.Conn
	emitter *bus.Emitter
	run     *pairtest.Running // the service, while it runs
	rec     pairtest.Recorder // the node's events, as published
	evSub   *nats.Subscription
}

func newWorld(t *testing.T, edit func(*config.Config)) *world {
	w := &world{t: t, pair: pairtest.Start(t, pairName), nodes: map[string]*tnode{}, edit: edit}
	w.nodes["a"] = &tnode{name: "a", dir: t.TempDir()}
	w.nodes["b"] = &tnode{name: "b", dir: t.TempDir()}
	w.inv = &invariants{}
	t.Cleanup(func() {
		for _, n := range w.nodes {
			w.stop(n.name)
		}
		if err := w.inv.err(); err != nil {
			t.Error(err)
		}
	})
	return w
}

func (w *world) config(node string) config.Config {
	c := pairtest.NodeConfig(pairName, node, w.nodes[node].dir)
	c.Heart.Interval = 100 * time.Millisecond
	c.Heart.Timeout = 400 * time.Millisecond
	c.NATS.Peer = w.pair.PeerLeafURL(node)
	c.Hooks.Timeout = 10 * time.Second
	if w.edit != nil {
		w.edit(&c)
	}
	return c
}

// start runs node's monitor against its server, with the real event
// publisher into the node's JetStream stream.
func (w *world) start(node string) *tnode {
	t := w.t
	n := w.nodes[node]
	srv := w.pair.Server(node)
	nc, err := srv.Connect("monitor-" + node)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.NewWithDomain(nc, srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := audit.EnsureOriginStream(ctx, js, pairName, node, audit.Retention{}); err != nil {
		t.Fatal(err)
	}
	log := pairtest.Logger(t).With().Str("node", node).Logger()
	pub, err := bus.NewPublisher(js, bus.DefaultPublisherConfig(), log)
	if err != nil {
		t.Fatal(err)
	}
	n.nc, n.emitter, n.reg = nc, bus.NewEmitter(pub, zerolog.Nop(), 1024), prometheus.NewRegistry()
	n.rec.Reset()
	n.evSub, err = nc.Subscribe(subject.EventsOf(pairName, node), n.rec.Record)
	if err != nil {
		t.Fatal(err)
	}
	cfg := w.config(node)
	n.svc, err = monitor.New(monitor.Options{Config: cfg, Conn: nc, Link: monitor.LeafLink(srv, cfg.NATS.Peer),
		Events: n.emitter, Log: log, Registry: n.reg})
	if err != nil {
		t.Fatal(err)
	}
	if w.prepare != nil {
		w.prepare(node, n.svc)
	}
	n.run = pairtest.Go(n.svc.Run)
	w.inv.watch(n)
	return n
}

// stop ends node's monitor (as its process ending would).
func (w *world) stop(node string) {
	n := w.nodes[node]
	if n.run == nil {
		return
	}
	if err := n.run.Stop(w.t, "monitor "+node, waitLimit); err != nil {
		w.t.Errorf("monitor %s: %v", node, err)
	}
	w.inv.unwatch(n)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = n.emitter.Close(ctx)
	cancel()
	_ = n.evSub.Unsubscribe()
	n.nc.Close()
	n.run = nil
}

// crash kills node: its NATS server dies abruptly and its monitor with it.
func (w *world) crash(node string) {
	w.pair.Kill(node)
	w.stop(node)
}

func (w *world) status(node string) failover.Status { return w.nodes[node].svc.Status() }

// waitState waits until node is in state, and returns its status.
func (w *world) waitState(node string, state failover.State) failover.Status {
	w.t.Helper()
	var st failover.Status
	w.waitFor(fmt.Sprintf("%s %s", node, state), func() bool {
		st = w.status(node)
		return st.State == state
	})
	return st
}

// waitSteady waits until a is active, b passive, and each node's view of
// the other agrees; it returns a's status.
func (w *world) waitSteady() failover.Status {
	w.t.Helper()
	w.waitFor("a active and b passive, as both see it", func() bool {
		a, b := w.status("a"), w.status("b")
		return a.State == failover.Active && b.State == failover.Passive &&
			a.PeerState == failover.Passive && b.PeerState == failover.Active && b.PeerEpoch == a.Epoch
	})
	return w.status("a")
}

func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	pairtest.WaitFor(w.t, waitLimit, what, cond, func() string {
		return fmt.Sprintf("a: %+v, b: %+v", w.safeStatus("a"), w.safeStatus("b"))
	})
}

func (w *world) safeStatus(node string) any {
	if n := w.nodes[node]; n.svc != nil {
		return n.svc.Status()
	}
	return nil
}

// waitEvent waits for an event of typ on node whose reason contains want.
func (w *world) waitEvent(node, typ, want string) event.Envelope {
	w.t.Helper()
	var found event.Envelope
	w.waitFor(fmt.Sprintf("event %s %q on %s", typ, want, node), func() bool {
		var ok bool
		found, ok = w.nodes[node].rec.Find(typ, want)
		return ok
	})
	return found
}

func (n *tnode) count(typ string) int { return n.rec.Count(typ) }

// admin sends an admin request to node's monitor through nc.
func admin(t *testing.T, nc *nats.Conn, node, verb string, req any) (map[string]any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var out map[string]any
	err := reply.Request(ctx, nc, subject.Admin(pairName, node, verb), req, &out)
	return out, err
}

func reason(e event.Envelope) string {
	var d struct {
		Reason string `json:"reason"`
	}
	_ = json.Unmarshal(e.Data, &d)
	return d.Reason
}

// invariants samples both monitors and feeds every active node to
// pairtest.Actives (two nodes active in one epoch is a failure). It also
// counts moments with both nodes active at once.
type invariants struct {
	actives  pairtest.Actives
	mu       sync.Mutex // guards the fields below
	bothSeen int
	nodes    map[string]*tnode
	stop     chan struct{}
	wg       sync.WaitGroup
}

func (v *invariants) watch(n *tnode) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.nodes == nil {
		v.nodes = map[string]*tnode{}
		v.stop = make(chan struct{})
		v.wg.Add(1)
		go v.loop(v.stop)
	}
	v.nodes[n.name] = n
}

func (v *invariants) unwatch(n *tnode) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.sampleLocked()
	delete(v.nodes, n.name)
}

func (v *invariants) loop(stop <-chan struct{}) {
	defer v.wg.Done()
	tk := time.NewTicker(time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			v.mu.Lock()
			v.sampleLocked()
			v.mu.Unlock()
		}
	}
}

func (v *invariants) sampleLocked() {
	active := 0
	for name, n := range v.nodes {
		st := n.svc.Status()
		if st.State != failover.Active {
			continue
		}
		active++
		_ = v.actives.Active(name, st.Epoch) // kept for err
	}
	if active == 2 {
		v.bothSeen++
	}
}

func (v *invariants) both() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.bothSeen
}

func (v *invariants) err() error {
	v.mu.Lock()
	if v.stop != nil {
		close(v.stop)
		v.stop = nil
	}
	v.mu.Unlock()
	v.wg.Wait()
	return v.actives.Err()
}

// metricValue sums the samples of a counter or gauge in node's registry.
func metricValue(t *testing.T, n *tnode, name string) float64 {
	t.Helper()
	return pairtest.MetricSum(t, n.reg, name)
}

package notifier_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/pairtest"
	"github.com/tandem-ha/tandem/pkg/session"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/notifier"
)

// TestMain checks for leaked goroutines. nats-server's mirror setup leaves
// one goroutine waiting out its own timer when the origin's server shut down
// mid-setup (a killed node); it ends by itself and is not ours.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*stream).setupMirrorConsumer.func3"))
}

const (
	pairName = "p"
	token    = "s3cret-token"
	// waitLimit bounds every wait: tests fail instead of hanging, and never
	// use it to prove speed.
	waitLimit = 30 * time.Second
)

// dbConfig is the pair configuration in the database the replicators read:
// the label printer has another name on b (a rename).
var dbConfig = api.PairConfig{
	Hosts: map[string]string{"a": "print-a", "b": "print-b"},
	Resources: []api.Resource{
		{Node: "a", Name: "Floor3", Address: `\\print-a\Floor3`},
		{Node: "b", Name: "Floor3", Address: `\\print-b\Floor3`},
		{Node: "a", Name: "Label", Address: "ipp://print-a:631/printers/Label"},
		{Node: "b", Name: "Label", Address: "ipp://print-b:631/printers/Label-B"},
	},
}

// world is a real pair of NATS servers with each node's event stream, its
// mirror of the peer's, and a notifier on each node.
type world struct {
	t     testing.TB
	pair  *pairtest.Pair
	nodes map[string]*tnode
}

type tnode struct {
	name    string
	dir     string
	nc      *nats.Conn
	js      jetstream.JetStream
	emitter *bus.Emitter
	reg     *prometheus.Registry
	svc     *notifier.Service
	run     *pairtest.Running // the service, while it runs
	repl    func()            // stops node's repl.config responder, if it runs
	rec     pairtest.Recorder // the node's events
	evSub   *nats.Subscription
}

func newWorld(t testing.TB) *world {
	w := &world{t: t, pair: pairtest.Start(t, pairName), nodes: map[string]*tnode{}}
	for _, n := range []string{"a", "b"} {
		w.nodes[n] = &tnode{name: n, dir: t.TempDir()}
	}
	t.Cleanup(func() {
		for _, n := range w.nodes {
			w.stop(n.name)
			w.stopReplicator(n.name)
			w.disconnect(n.name)
		}
	})
	for _, n := range []string{"a", "b"} {
		w.connect(n)
	}
	return w
}

func (w *world) config(node string) config.Config {
	c := pairtest.NodeConfig(pairName, node, w.nodes[node].dir)
	c.Hosts = map[string]string{"a": "print-a", "b": "print-b"}
	return c
}

// connect opens node's connection, event stream, mirror and emitter.
func (w *world) connect(node string) {
	t, n := w.t, w.nodes[node]
	srv := w.pair.Server(node)
	nc, err := srv.Connect("notifier-test-" + node)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.NewWithDomain(nc, srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	peer := map[string]string{"a": "b", "b": "a"}[node]
	if err := audit.EnsureOrigin(ctx, js, pairName, node, audit.Retention{}); err != nil {
		t.Fatal(err)
	}
	if err := audit.EnsureMirror(ctx, js, pairName, node, peer, audit.Retention{}); err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(js, bus.DefaultPublisherConfig(), pairtest.Logger(t))
	if err != nil {
		t.Fatal(err)
	}
	n.nc, n.js, n.emitter = nc, js, bus.NewEmitter(pub, pairtest.Logger(t), 1024)
	n.rec.Reset()
	n.evSub, err = nc.Subscribe(subject.EventsOf(pairName, node), n.rec.Record)
	if err != nil {
		t.Fatal(err)
	}
}

func (w *world) disconnect(node string) {
	n := w.nodes[node]
	if n.nc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = n.emitter.Close(ctx)
	cancel()
	n.nc.Close()
	n.nc = nil
}

func (n *tnode) eventsOf(typ string) []event.Envelope { return n.rec.OfType(typ) }

// report waits for n's first tandem.failover.notified and returns its data.
func (n *tnode) report(t testing.TB) event.Notified {
	t.Helper()
	waitFor(t, "tandem.failover.notified from "+n.name, func() bool { return len(n.eventsOf(event.FailoverNotified)) > 0 })
	var d event.Notified
	if err := json.Unmarshal(n.eventsOf(event.FailoverNotified)[0].Data, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// start runs node's notifier; edit may change its options.
func (w *world) start(node string, edit func(*notifier.Options)) *tnode {
	t, n := w.t, w.nodes[node]
	n.reg = prometheus.NewRegistry()
	o := notifier.Options{
		Config: w.config(node), Conn: n.nc, JS: n.js, Events: n.emitter,
		PushListen: "127.0.0.1:0", Tokens: []string{token},
		Reannounce: 300 * time.Millisecond, ConfigRefresh: 100 * time.Millisecond, ProgressTimeout: 10 * time.Second,
		Log: pairtest.Logger(t).With().Str("node", node).Logger(), Registry: n.reg,
	}
	if edit != nil {
		edit(&o)
	}
	svc, err := notifier.New(o)
	if err != nil {
		t.Fatal(err)
	}
	n.svc, n.run = svc, pairtest.Go(svc.Run)
	select {
	case <-svc.Started():
	case <-n.run.Exited():
		t.Fatalf("notifier %s: %v", node, n.run.Err())
	case <-time.After(waitLimit):
		t.Fatalf("notifier %s did not start", node)
	}
	return n
}

// stop ends node's notifier.
func (w *world) stop(node string) {
	n := w.nodes[node]
	if n.run == nil {
		return
	}
	if err := n.run.Stop(w.t, "notifier "+node, waitLimit); err != nil {
		w.t.Errorf("notifier %s: %v", node, err)
	}
	n.run = nil
}

// crash kills node: its NATS server dies abruptly, its notifier with it.
func (w *world) crash(node string) {
	w.pair.Kill(node)
	w.stop(node)
	w.stopReplicator(node)
	w.disconnect(node)
}

// serveReplicator answers node's repl.config with pc, as node's
// replicator does when its database holds pc (pairtest.ServeReplConfig: the
// notifier's module does not depend on the replicator), and waits until the
// notifier's source reads it.
func (w *world) serveReplicator(node string, pc api.PairConfig) {
	t, n := w.t, w.nodes[node]
	n.repl = pairtest.ServeReplConfig(t, n.nc, pairName, node, pc)
	src := notifier.NATSConfig{Conn: n.nc, Pair: pairName, Node: node}
	waitFor(t, "the replicator of "+node+" answers repl.config", func() bool {
		rctx, rcancel := context.WithTimeout(context.Background(), time.Second)
		defer rcancel()
		_, err := src.Read(rctx)
		return err == nil
	})
}

// stopReplicator stops answering node's repl.config, as its replicator
// stopping would.
func (w *world) stopReplicator(node string) {
	n := w.nodes[node]
	if n.repl != nil {
		n.repl()
		n.repl = nil
	}
}

// activate publishes node's activation into node's event stream, exactly
// as node's monitor does (the failover itself is the monitor's, tested
// there).
func (w *world) activate(node string, epoch uint64, outage bool) event.Envelope {
	w.t.Helper()
	reason := "F4: the peer is passive; the master activates"
	if outage {
		reason = "F6: outage: the peer refused the connection"
	}
	e, err := event.New(pairName, node, "monitor", event.NodeActivated, epoch, time.Now(),
		map[string]any{"reason": reason, "from": "passive", "outage": outage})
	if err != nil {
		w.t.Fatal(err)
	}
	n := w.nodes[node]
	n.emitter.Emit(e)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := n.emitter.Flush(ctx); err != nil {
		w.t.Fatal(err)
	}
	return e
}

func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	pairtest.WaitFor(t, waitLimit, what, cond)
}

// waitEpoch waits until node's notifier knows epoch.
func (w *world) waitEpoch(node string, epoch uint64) api.Notification {
	w.t.Helper()
	var n api.Notification
	waitFor(w.t, fmt.Sprintf("notifier %s at epoch %d", node, epoch), func() bool {
		var ok bool
		n, ok = w.nodes[node].svc.Current()
		return ok && n.Epoch == epoch
	})
	return n
}

func metric(t testing.TB, n *tnode, name string) float64 {
	t.Helper()
	return pairtest.MetricSum(t, n.reg, name)
}

// sessionsOn activates node in epoch, starts sessions on conns
// connections (newFleet) and waits until node's notifier counts every one
// acknowledged.
func (w *world) sessionsOn(node string, epoch uint64, sessions, conns int, prefix string) *fleet {
	w.t.Helper()
	w.activate(node, epoch, false)
	w.waitEpoch(node, epoch)
	f := w.newFleet(sessions, conns, prefix)
	waitFor(w.t, fmt.Sprintf("notifier %s counts the %d sessions acknowledged", node, sessions), func() bool {
		return w.nodes[node].svc.Status().Acknowledged == sessions
	})
	return f
}

// fleet is many sessions on a few connections, as terminal servers hold
// them, each recording every change it applies.
type fleet struct {
	clients  []*session.Client
	sessions []*session.Session
	mu       sync.Mutex // guards changes
	changes  map[string][]session.Change
}

// sessionConns are the connections every test session starts with: two on
// the master's host with settings, one elsewhere.
func sessionConns() []session.Connection {
	return []session.Connection{
		{Address: `\\print-a\Floor3`, Default: true, Options: map[string]string{"duplex": "long-edge", "color": "false"}},
		{Address: "ipp://print-a:631/printers/Label", Options: map[string]string{"tray": "2"}},
		{Address: `\\files\Scanner`},
	}
}

// newFleet starts sessions on conns connections; connection i dials a
// first when i is even, b first when odd, so both servers hold sessions.
func (w *world) newFleet(sessions, conns int, prefix string) *fleet {
	t := w.t
	f := &fleet{changes: map[string][]session.Change{}}
	t.Cleanup(f.close)
	urls := []string{w.pair.Master.ClientURL(), w.pair.Standby.ClientURL()}
	for i := range conns {
		order := urls
		if i%2 == 1 {
			order = []string{urls[1], urls[0]}
		}
		c, err := session.Dial(order, pairName, nats.DontRandomize())
		if err != nil {
			t.Fatal(err)
		}
		f.clients = append(f.clients, c)
	}
	for i := range sessions {
		c := f.clients[i%conns]
		s, err := c.Add(fmt.Sprintf("%s%05d", prefix, i), sessionConns(), f.record)
		if err != nil {
			t.Fatal(err)
		}
		f.sessions = append(f.sessions, s)
	}
	return f
}

func (f *fleet) record(c session.Change) {
	f.mu.Lock()
	f.changes[c.Session] = append(f.changes[c.Session], c)
	f.mu.Unlock()
}

func (f *fleet) close() {
	for _, c := range f.clients {
		c.Close()
	}
	f.clients = nil
}

// allAt reports whether every session is at epoch and its change to epoch
// was recorded (onChange runs after the session's acknowledgement is sent).
func (f *fleet) allAt(epoch uint64) bool {
	for _, s := range f.sessions {
		if s.Epoch() != epoch {
			return false
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.sessions {
		if !recorded(f.changes[s.Name()], epoch) {
			return false
		}
	}
	return true
}

// recorded reports whether changes has one to epoch; it looks from the
// newest (callbacks of two epochs may run in either order).
func recorded(changes []session.Change, epoch uint64) bool {
	for i := len(changes) - 1; i >= 0; i-- {
		if changes[i].Epoch == epoch {
			return true
		}
	}
	return false
}

// switchesOf returns how many applied changes of name switched something.
func (f *fleet) switchesOf(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := 0
	for _, c := range f.changes[name] {
		if len(c.Switched) > 0 {
			k++
		}
	}
	return k
}

// sseClient follows a node's push endpoint like a browser's EventSource:
// on a broken stream it reconnects (to the next URL) with Last-Event-ID.
type sseClient struct {
	urls []string
	mu   sync.Mutex // guards the fields below
	last uint64
	got  []api.Notification
}

func (c *sseClient) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; ctx.Err() == nil; i++ {
		_ = c.once(ctx, c.urls[i%len(c.urls)])
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond): // EventSource's retry
		}
	}
}

func (c *sseClient) once(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/pairs/"+pairName+"/events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	c.mu.Lock()
	if c.last > 0 {
		req.Header.Set("Last-Event-ID", fmt.Sprint(c.last))
	}
	c.mu.Unlock()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	var id uint64
	var data string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			_, _ = fmt.Sscan(line[4:], &id)
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		case line == "" && data != "":
			n, err := api.DecodeNotification([]byte(data))
			if err == nil {
				c.mu.Lock()
				c.got = append(c.got, n)
				c.last = id
				c.mu.Unlock()
			}
			data = ""
		}
	}
	return sc.Err()
}

func (c *sseClient) epochs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, n := range c.got {
		out = append(out, n.Epoch)
	}
	return out
}

func (c *sseClient) lastNotification() (api.Notification, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.got) == 0 {
		return api.Notification{}, false
	}
	return c.got[len(c.got)-1], true
}

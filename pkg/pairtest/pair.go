// Package pairtest runs a real pair of Tandem NATS servers inside a test
// process, with the faults a pair meets in production: a partition of the
// link (Cut, Heal), a dead process (Kill), and its return (Restart). Service
// tests start a Pair, connect their services to Pair.Server(node), and break
// it (STYLE §13).
//
// The master "a" listens for the leaf link; the standby "b" solicits it
// through Proxy, which forwards to the master's leaf port. A second proxy,
// Back, forwards to the standby's own leaf listener: it carries no link, only
// the master's probes of its peer (PeerLeafURL), so that a Cut looks the same
// from both nodes (ProbePeer says Unknown on both sides, Gone after Kill).
//
// A Pair is driven by the test goroutine: its methods are not safe for
// concurrent use, and Restart replaces Master or Standby.
package pairtest

import (
	"fmt"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/natsnode"
)

// Node names of a Pair.
const (
	Master  = "a"
	Standby = "b"
)

// linkTimeout bounds the wait for the link in Start and Restart.
const linkTimeout = 10 * time.Second

// Pair is a running master and standby joined by a leafnode link.
type Pair struct {
	Name    string
	Master  *natsnode.Server
	Standby *natsnode.Server
	Proxy   *Proxy // the leaf link: standby → Proxy → master's leaf port
	Back    *Proxy // probes only: master → Back → standby's leaf port

	opts  map[string]natsnode.Options // per node, with the ports fixed
	wiped int                         // RestartEmpty's stores so far
}

// Start starts pair's master and standby on random loopback ports with
// JetStream in t.TempDir(), waits until they are linked, and shuts everything
// down at t's cleanup.
func Start(t testing.TB, pair string) *Pair {
	t.Helper()
	log := Logger(t)
	// The stores first: cleanups run last in, first out, so the servers
	// are shut down before their directories are removed.
	masterStore, standbyStore := t.TempDir(), t.TempDir()
	p := &Pair{Name: pair, opts: make(map[string]natsnode.Options)}
	t.Cleanup(p.close)
	p.Master = p.start(t, natsnode.Options{
		Pair: pair, Node: Master, Listen: "127.0.0.1:-1", LeafListen: "127.0.0.1:-1",
		StoreDir: masterStore, Logger: log.With().Str("pair", pair).Str("node", Master).Logger(),
	})
	p.Proxy = newProxy(t, hostPort(t, p.Master.LeafURL()))
	p.Standby = p.start(t, natsnode.Options{
		Pair: pair, Node: Standby, Listen: "127.0.0.1:-1", LeafListen: "127.0.0.1:-1",
		Peer: p.Proxy.URL(), Solicit: true,
		StoreDir: standbyStore, Logger: log.With().Str("pair", pair).Str("node", Standby).Logger(),
	})
	p.Back = newProxy(t, hostPort(t, p.Standby.LeafURL()))
	p.WaitLinked(t, linkTimeout)
	return p
}

// start starts a node and remembers its options with the ports it got, so
// that Restart reuses them.
func (p *Pair) start(t testing.TB, o natsnode.Options) *natsnode.Server {
	t.Helper()
	s, err := natsnode.Start(o)
	if err != nil {
		t.Fatalf("start %s of pair %s: %v", o.Node, p.Name, err)
	}
	o.Listen = hostPort(t, s.ClientURL())
	o.LeafListen = hostPort(t, s.LeafURL())
	p.opts[o.Node] = o
	return s
}

func newProxy(t testing.TB, backend string) *Proxy {
	t.Helper()
	pr, err := NewProxy(backend)
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

// close shuts down both servers and both proxies (whatever was started).
func (p *Pair) close() {
	for _, s := range []*natsnode.Server{p.Master, p.Standby} {
		if s != nil {
			s.Shutdown()
		}
	}
	for _, pr := range []*Proxy{p.Proxy, p.Back} {
		if pr != nil {
			_ = pr.Close()
		}
	}
}

// Server is the current server of node ("a" or "b").
func (p *Pair) Server(node string) *natsnode.Server {
	switch node {
	case Master:
		return p.Master
	case Standby:
		return p.Standby
	}
	panic(fmt.Sprintf("pairtest: no node %q in a pair (want %q or %q)", node, Master, Standby))
}

// PeerLeafURL is the URL through which node reaches its peer's leaf port:
// Proxy for the standby, Back for the master. Probes use it.
func (p *Pair) PeerLeafURL(node string) string {
	if node == Standby {
		return p.Proxy.URL()
	}
	p.Server(node) // panics on a bad name
	return p.Back.URL()
}

// Cut partitions the pair silently: both proxies stop forwarding.
func (p *Pair) Cut() {
	p.Proxy.Cut()
	p.Back.Cut()
}

// Heal ends the partition; the leaf link reconnects by itself (WaitLinked).
func (p *Pair) Heal() {
	p.Proxy.Heal()
	p.Back.Heal()
}

// Kill shuts node's server down abruptly: its sockets close, as when its
// process dies. Killing a dead node does nothing.
func (p *Pair) Kill(node string) { p.Server(node).Shutdown() }

// Restart starts node's server again on the same ports and store, killing
// it first if it runs. It does not wait for the link (WaitLinked).
func (p *Pair) Restart(t testing.TB, node string) {
	t.Helper()
	p.Kill(node)
	s := p.start(t, p.opts[node])
	if node == Master {
		p.Master = s
	} else {
		p.Standby = s
	}
}

// RestartEmpty restarts node like Restart, on an empty store: as when its
// data directory was lost. The new store is inside the old one, removed
// with it after the servers are shut down.
func (p *Pair) RestartEmpty(t testing.TB, node string) {
	t.Helper()
	o := p.opts[node]
	p.wiped++
	o.StoreDir = filepath.Join(o.StoreDir, fmt.Sprintf("wiped-%d", p.wiped))
	p.opts[node] = o
	p.Restart(t, node)
}

// WaitLinked waits until both servers report the link up and a request
// crosses it each way, failing t after timeout.
func (p *Pair) WaitLinked(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !p.Master.Linked() || !p.Standby.Linked() {
		if time.Now().After(deadline) {
			t.Fatalf("pair %s not linked within %v (a: %v, b: %v)",
				p.Name, timeout, p.Master.Linked(), p.Standby.Linked())
		}
		time.Sleep(5 * time.Millisecond)
	}
	p.roundTrip(t, p.Standby, p.Master, deadline)
	p.roundTrip(t, p.Master, p.Standby, deadline)
}

// roundTrip polls a request from an in-process client of from, answered on
// to, until one succeeds or deadline passes.
func (p *Pair) roundTrip(t testing.TB, from, to *natsnode.Server, deadline time.Time) {
	t.Helper()
	resp, err := to.Connect("pairtest-responder")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	subj := "pairtest." + p.Name + ".ping." + to.Domain()
	if _, err := resp.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond(nil) }); err != nil {
		t.Fatal(err)
	}
	if err := resp.Flush(); err != nil {
		t.Fatal(err)
	}
	req, err := from.Connect("pairtest-requester")
	if err != nil {
		t.Fatal(err)
	}
	defer req.Close()
	for {
		_, err := req.Request(subj, nil, 100*time.Millisecond)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request from %s to %s crossed the link: %v", from.Domain(), to.Domain(), err)
		}
		time.Sleep(5 * time.Millisecond) // no responders is immediate
	}
}

// hostPort is the host:port of a URL.
func hostPort(t testing.TB, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		t.Fatalf("no host:port in URL %q: %v", u, err)
	}
	return pu.Host
}

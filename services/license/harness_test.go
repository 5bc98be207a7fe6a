package license_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/config"
	lic "github.com/tandem-ha/tandem/pkg/license"
	"github.com/tandem-ha/tandem/pkg/pairtest"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/license"
)

// The server's mirror set-up goroutine outlives Shutdown by its own bounded
// timer (as in services/notifier and pkg/audit).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*stream).setupMirrorConsumer.func3"))
}

const (
	pairName  = "p"
	waitLimit = 20 * time.Second
	leaseTick = time.Hour // the master's lease interval on its fake clock
	day       = 24 * time.Hour
)

// world is a real pair of NATS servers with a license service on each node,
// each driven by its own fake clock.
type world struct {
	t     *testing.T
	pair  *pairtest.Pair
	priv  ed25519.PrivateKey
	key   string // path of the public key file
	nodes map[string]*tnode
	hosts map[string]string // each node's hosts: (both nodes unless a test says)
	// tcp: the services connect through the servers' client URLs and
	// reconnect forever, as `tandem node` does with an external server;
	// else in process, without reconnecting.
	tcp bool
	// grace is license.grace (the default when 0).
	grace time.Duration
}

type tnode struct {
	name   string
	dir    string
	clk    *clock.Fake
	nc     *nats.Conn
	svc    *license.Service
	events *pairtest.Recorder
	run    *pairtest.Running // the service, while it runs
	reg    *prometheus.Registry
	killed bool // its server was killed: Run may have ended on the closed connection
}

// newWorld starts a pair with a license service on each node; opts adjust
// the world before the services start.
func newWorld(t *testing.T, opts ...func(*world)) *world {
	pub, priv, err := lic.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, pair: pairtest.Start(t, pairName), priv: priv, nodes: map[string]*tnode{},
		hosts: map[string]string{"a": "a.test", "b": "b.test"}}
	w.key = filepath.Join(t.TempDir(), "vendor.pub")
	pb, _ := lic.MarshalPublicKey(pub)
	if err := os.WriteFile(w.key, pb, 0o600); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for _, n := range []string{"a", "b"} {
		w.nodes[n] = &tnode{name: n, dir: t.TempDir(), clk: clock.NewFake(start)}
	}
	t.Cleanup(func() {
		for _, n := range w.nodes {
			w.stop(n.name)
		}
	})
	for _, o := range opts {
		o(w)
	}
	w.start("a")
	w.start("b")
	return w
}

func (w *world) config(node string) config.Config {
	c := pairtest.NodeConfig(pairName, node, w.nodes[node].dir)
	c.Hosts = w.hosts
	c.License.PublicKey = w.key
	if w.grace > 0 {
		c.License.Grace = w.grace
	}
	return c
}

func (w *world) start(node string) {
	t := w.t
	n := w.nodes[node]
	srv := w.pair.Server(node)
	var nc *nats.Conn
	var err error
	if w.tcp {
		nc, err = nats.Connect(srv.ClientURL(), nats.Name("license-"+node), nats.MaxReconnects(-1),
			nats.ReconnectWait(100*time.Millisecond))
	} else {
		nc, err = srv.Connect("license-" + node)
	}
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.NewWithDomain(nc, srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	n.nc, n.events, n.reg = nc, &pairtest.Recorder{}, prometheus.NewRegistry()
	n.svc, err = license.New(license.Options{Config: w.config(node), Conn: nc, JS: js, Events: n.events,
		Clock: n.clk, Log: pairtest.Logger(t).With().Str("node", node).Logger(), LeaseInterval: leaseTick, Registry: n.reg})
	if err != nil {
		t.Fatal(err)
	}
	n.run = pairtest.Go(n.svc.Run)
	w.waitFor(node+" ready", func() bool { return n.svc.Ready() == nil })
}

func (w *world) stop(node string) {
	n := w.nodes[node]
	if n.run == nil {
		return
	}
	if err := n.run.Stop(w.t, "license "+node, waitLimit); err != nil && !(n.killed && errors.Is(err, nats.ErrConnectionClosed)) {
		w.t.Errorf("license %s: %v", node, err)
	}
	n.nc.Close()
	n.run = nil
}

// kill kills node's NATS server.
func (w *world) kill(node string) {
	w.nodes[node].killed = true
	w.pair.Kill(node)
}

func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	pairtest.WaitFor(w.t, waitLimit, what, cond)
}

// issue signs a license valid for a year from a's clock.
func (w *world) issue(id string, features ...string) []byte {
	now := w.nodes["a"].clk.Now()
	s, err := lic.Sign(w.priv, lic.Payload{V: lic.Version, ID: id, Customer: "ACME", Product: "tandem",
		Features: features, Seats: 5, Issued: now, Expires: now.Add(365 * day).Format(lic.DateLayout)})
	if err != nil {
		w.t.Fatal(err)
	}
	return s.Armor()
}

func (w *world) request(node, verb string, req, resp any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return reply.Request(ctx, w.nodes[node].nc, subject.License(pairName, node, verb), req, resp)
}

func head() api.Request { return api.Request{V: api.Version, Pair: pairName} }

func (w *world) add(node string, text []byte) (api.LicenseAddReply, error) {
	var r api.LicenseAddReply
	err := w.request(node, api.VerbLicenseAdd, api.LicenseAddRequest{Request: head(), License: string(text)}, &r)
	return r, err
}

func (w *world) list(node string) api.LicenseListReply {
	w.t.Helper()
	var r api.LicenseListReply
	if err := w.request(node, api.VerbLicenseList, api.LicenseListRequest{Request: head()}, &r); err != nil {
		w.t.Fatalf("list on %s: %v", node, err)
	}
	return r
}

func (w *world) check(node, feature string) api.LicenseCheckReply {
	w.t.Helper()
	var r api.LicenseCheckReply
	if err := w.request(node, api.VerbLicenseCheck, api.LicenseCheckRequest{Request: head(), Feature: feature}, &r); err != nil {
		w.t.Fatalf("check on %s: %v", node, err)
	}
	return r
}

// waitListed waits until node lists license id as valid.
func (w *world) waitListed(node, id string) {
	w.t.Helper()
	w.waitFor(node+" lists "+id, func() bool {
		for _, l := range w.list(node).Licenses {
			if l.ID == id && l.Valid {
				return true
			}
		}
		return false
	})
}

// waitStatus waits until node's license status is want.
func (w *world) waitStatus(node, want string, step func()) api.LicenseState {
	w.t.Helper()
	var st api.LicenseState
	w.waitFor(node+" "+want, func() bool {
		if step != nil {
			step()
		}
		st = w.list(node).State
		return st.Status == want
	})
	return st
}

func asReplyError(t *testing.T, err error) *reply.Error {
	t.Helper()
	var re *reply.Error
	if !errors.As(err, &re) {
		t.Fatalf("want a refusal, got %v", err)
	}
	return re
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// waitContact waits until the standby node has a proof of contact with the
// master (its status names a last contact).
func (w *world) waitContact(node string) time.Time {
	w.t.Helper()
	var at time.Time
	w.waitFor(node+" in contact with the master", func() bool {
		st := w.list(node).State
		if st.LastContact != nil && !st.LastContact.IsZero() {
			at = *st.LastContact
			return true
		}
		return false
	})
	return at
}

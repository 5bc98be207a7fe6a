package replicator_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/pairtest"
	"github.com/tandem-ha/tandem/services/replicator"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const pairName = "p"

// waitLimit bounds every wait; tests fail instead of hanging.
const waitLimit = 30 * time.Second

const schema = `CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER);`

// world is a pair of real NATS servers with a replicator and an SQLite file
// on each node.
type world struct {
	t     *testing.T
	pair  *pairtest.Pair
	nodes map[string]*tnode
}

type tnode struct {
	name string
	dir  string
	path string
	app  *sql.DB // the application's own connection
	nc   *nats.Conn
	svc  *replicator.Service
	sink *pairtest.Recorder
	reg  *prometheus.Registry
	run  *pairtest.Running // the service, while it runs
	edit func(*replicator.Options)
}

func newWorld(t *testing.T) *world {
	w := &world{t: t, pair: pairtest.Start(t, pairName), nodes: map[string]*tnode{}}
	for _, n := range []string{"a", "b"} {
		dir := t.TempDir()
		tn := &tnode{name: n, dir: dir, path: filepath.Join(dir, "app.db"), sink: &pairtest.Recorder{}}
		w.nodes[n] = tn
		w.openApp(n)
		w.exec(n, schema)
	}
	t.Cleanup(func() {
		for _, n := range w.nodes {
			w.stop(n.name)
			if n.app != nil {
				n.app.Close()
			}
		}
	})
	return w
}

func (w *world) openApp(node string) {
	n := w.nodes[node]
	db, err := sql.Open("sqlite", "file:"+n.path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		w.t.Fatal(err)
	}
	n.app = db
}

func (w *world) config(node string) config.Config {
	c := pairtest.NodeConfig(pairName, node, w.nodes[node].dir)
	c.Hosts = map[string]string{"a": "a.test", "b": "b.test"}
	c.Database.Path = w.nodes[node].path
	return c
}

// start runs node's replicator on its server.
func (w *world) start(node string) *tnode {
	t := w.t
	n := w.nodes[node]
	srv := w.pair.Server(node)
	nc, err := srv.Connect("replicator-" + node)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	js, err := jetstream.NewWithDomain(nc, srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := audit.EnsureOriginStream(ctx, js, pairName, node, audit.Retention{}); err != nil {
		t.Fatal(err)
	}
	n.reg = prometheus.NewRegistry()
	o := replicator.Options{Config: w.config(node), Conn: nc, Events: n.sink,
		Log: pairtest.Logger(t).With().Str("node", node).Logger(), Registry: n.reg}
	if n.edit != nil {
		n.edit(&o)
	}
	n.svc, err = replicator.New(o)
	if err != nil {
		t.Fatal(err)
	}
	n.nc, n.run = nc, pairtest.Go(n.svc.Run)
	return n
}

// stop ends node's replicator and returns what Run returned.
func (w *world) stop(node string) error {
	n := w.nodes[node]
	if n.run == nil {
		return nil
	}
	err := n.run.Stop(w.t, "replicator "+node, waitLimit)
	n.nc.Close()
	n.run = nil
	return err
}

// waitExit waits for node's replicator to end by itself (a fault).
func (w *world) waitExit(node string) error {
	return w.nodes[node].run.Wait(w.t, "replicator "+node, waitLimit)
}

func (w *world) exec(node, q string, args ...any) {
	w.t.Helper()
	if _, err := w.nodes[node].app.Exec(q, args...); err != nil {
		w.t.Fatalf("%s: %s: %v", node, q, err)
	}
}

func (w *world) query(node, q string, args ...any) string {
	w.t.Helper()
	var v sql.NullString
	if err := w.nodes[node].app.QueryRow(q, args...).Scan(&v); err != nil {
		w.t.Fatalf("%s: %s: %v", node, q, err)
	}
	return v.String
}

// shell runs SQL in a separate sqlite3 process.
func (w *world) shell(node, q string) {
	w.t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		w.t.Skip("no sqlite3 shell")
	}
	out, err := exec.Command(bin, "-cmd", ".timeout 10000", w.nodes[node].path, q).CombinedOutput()
	if err != nil {
		w.t.Fatalf("sqlite3 %s: %v: %s", q, err, out)
	}
}

func (w *world) waitFor(what string, cond func() bool) {
	w.t.Helper()
	w.waitForWithin(waitLimit, what, cond)
}

// waitForWithin is waitFor with its own bound: a large row applied by the
// race-instrumented SQLite takes tens of seconds on a busy machine.
func (w *world) waitForWithin(limit time.Duration, what string, cond func() bool) {
	w.t.Helper()
	pairtest.WaitFor(w.t, limit, what, cond, func() string {
		return fmt.Sprintf("a: %s, b: %s; goroutines in %s", w.status("a"), w.status("b"), dumpGoroutines())
	})
}

func (w *world) status(node string) string {
	n := w.nodes[node]
	if n.svc == nil {
		return "-"
	}
	b, _ := json.Marshal(n.svc.Status())
	return string(b)
}

// items is the items table of node as id:name:qty, ordered.
func (w *world) items(node string) string {
	return w.query(node, `SELECT coalesce(group_concat(x, ','), '') FROM (SELECT id || ':' || coalesce(name, '') || ':' || coalesce(qty, '') AS x FROM items ORDER BY id)`)
}

// waitSynced waits until the standby has a position in the master's changes.
func (w *world) waitSynced() {
	w.t.Helper()
	w.waitFor("b synced from a", func() bool {
		st := w.nodes["b"].svc.Status()
		return st.State == "running" && st.In.DB != "" && st.In.DB != "fenced"
	})
	w.waitFor("a accepts b's database", func() bool {
		return w.nodes["a"].svc.Status().In.DB == w.nodes["b"].svc.Status().DB
	})
}

// waitConverged waits until both nodes' checksums are equal, and returns
// the items.
func (w *world) waitConverged() string {
	w.t.Helper()
	w.waitFor("both databases equal", func() bool { return w.diff() == "" })
	return w.items("a")
}

// diff compares both nodes' table checksums ("" when equal).
func (w *world) diff() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	va, err := w.nodes["a"].svc.Verify(ctx, "", nil)
	if err != nil {
		return err.Error()
	}
	vb, err := w.nodes["b"].svc.Verify(ctx, "", nil)
	if err != nil {
		return err.Error()
	}
	return sumDiff(va, vb)
}

func sumDiff(a, b api.ReplVerifyReply) string {
	var out []string
	sums := map[string]string{}
	for _, t := range a.Tables {
		sums[t.Table] = t.Sum
	}
	for _, t := range b.Tables {
		if sums[t.Table] != t.Sum {
			out = append(out, t.Table)
		}
		delete(sums, t.Table)
	}
	for t := range sums {
		out = append(out, t)
	}
	return strings.Join(out, ",")
}

// admin sends a replication verb to every node and returns the replies.
func (w *world) admin(node, verb string, req api.ReplRequest) []api.ReplReply {
	w.t.Helper()
	req.Request = api.Request{V: api.Version, Pair: pairName}
	var out []api.ReplReply
	var raw [][]byte
	// Both nodes must answer: a node's subscriptions reach the peer's
	// server a moment after it starts (interest crosses the leaf link).
	w.waitFor("both nodes answer "+verb, func() bool {
		var err error
		raw, err = replyGather(w.nodes[node].nc, verb, req)
		return err == nil && len(raw) == 2
	})
	for _, b := range raw {
		var r api.ReplReply
		if err := decodeReply(b, &r); err != nil {
			w.t.Fatalf("%s: %v", verb, err)
		}
		out = append(out, r)
	}
	return out
}

func rowCount(w *world, node, table string) int {
	var n int
	fmt.Sscan(w.query(node, "SELECT count(*) FROM "+table), &n)
	return n
}

// metricValue sums the samples of a counter or gauge in node's registry.
func metricValue(t *testing.T, n *tnode, name string) float64 {
	t.Helper()
	return pairtest.MetricSum(t, n.reg, name)
}

// dumpGoroutines writes every goroutine's stack to a file (a replicator
// that never reports running shows where it waits) and returns its path.
func dumpGoroutines() string {
	f, err := os.CreateTemp("", "replicator-goroutines-*.txt")
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	_ = pprof.Lookup("goroutine").WriteTo(f, 2)
	return f.Name()
}

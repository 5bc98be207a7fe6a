//go:build linux

package proctest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Node is one node of a Pair: its fixed addresses and files, and the
// process currently running it, if any.
type Node struct {
	Name string
	Role string // master or standby

	ClientURL string // nats://127.0.0.1:port, the node's own NATS server
	LeafURL   string // nats-leaf://127.0.0.1:port, its leafnode port
	AdminAddr string // host:port of /metrics, /healthz, /readyz

	Config  string // the configuration file
	DataDir string
	LogPath string // stdout and stderr of every start, appended

	proc   *proc // the latest process, nil before the first start
	starts int
	cut    map[string]bool // log lines a SIGKILL cut mid-write
}

// Pair is a master and a standby run as `tandem node` processes.
type Pair struct {
	Name    string
	Master  string // the master's name
	Standby string // the standby's name
	Nodes   map[string]*Node

	t     T
	opts  Options
	bin   string
	dir   string
	watch *Watch
	conns map[string]*nats.Conn
	ns    *netns   // nil unless Options.Netns
	wit   *Witness // nil unless Options.Witness
}

// New prepares a pair: it picks free loopback ports, writes both nodes'
// configurations, and connects to both nodes' (future) servers to record
// heartbeats. It starts no process (see StartNode, or Start). Everything is
// stopped at t's cleanup.
func New(t T, o Options) *Pair {
	t.Helper()
	o = o.withDefaults()
	if err := subject.CheckName("pair", o.Pair); err != nil {
		t.Fatalf("proctest: %v", err)
	}
	bin := o.Binary
	if bin == "" {
		bin = Build(t)
	}
	if o.Master == o.Standby {
		t.Fatalf("proctest: both nodes are named %q", o.Master)
	}
	for _, n := range []string{o.Master, o.Standby} {
		if err := subject.CheckName("node", n); err != nil {
			t.Fatalf("proctest: %v", err)
		}
	}
	p := &Pair{Name: o.Pair, Master: o.Master, Standby: o.Standby, Nodes: map[string]*Node{}, t: t, opts: o, bin: bin, dir: t.TempDir(),
		watch: newWatch(), conns: map[string]*nats.Conn{}}
	if o.Netns {
		ns, err := setupNetns([2]string{o.Master, o.Standby}, o.Witness != nil)
		if err != nil {
			t.Fatalf("proctest: %v", err)
		}
		p.ns = ns
		t.Cleanup(func() { // after close: the processes are gone
			if err := ns.remove(); err != nil {
				t.Errorf("proctest: %v", err)
			}
		})
	}
	t.Cleanup(p.close)
	if o.Witness != nil {
		p.wit = p.startWitness(*o.Witness)
	}
	for _, name := range p.names() {
		role := "master"
		if name == p.Standby {
			role = "standby"
		}
		p.Nodes[name] = &Node{
			Name: name, Role: role,
			Config:  filepath.Join(p.dir, name+".yaml"),
			DataDir: filepath.Join(p.dir, "data-"+name),
			LogPath: filepath.Join(p.dir, name+".log"),
		}
	}
	if err := p.prepare(); err != nil {
		t.Fatalf("proctest: %v", err)
	}
	return p
}

// prepare picks the nodes' ports, writes their configurations and connects
// the harness to their (future) servers.
func (p *Pair) prepare() error {
	ports, err := freePorts(8)
	if err != nil {
		return err
	}
	for i, name := range p.names() {
		n := p.Nodes[name]
		host := "127.0.0.1"
		if p.ns != nil {
			host = p.ns.addr[name]
		}
		n.ClientURL = fmt.Sprintf("nats://%s:%d", host, ports[4*i])
		n.LeafURL = fmt.Sprintf("nats-leaf://%s:%d", host, ports[4*i+1])
		n.AdminAddr = fmt.Sprintf("127.0.0.1:%d", ports[4*i+2])
	}
	for i, name := range p.names() {
		// The fourth port of each node is the notifier's push endpoint.
		if err := p.writeConfig(p.Nodes[name], ports[4*i+3]); err != nil {
			return err
		}
		if err := p.connect(name); err != nil {
			return err
		}
	}
	return nil
}

// startAttempts is how many times Start tries, with new ports, when a port
// it picked was taken before the node bound it.
const startAttempts = 3

// Start prepares a pair (New) and starts both nodes, the master first, each
// as soon as the one before answers /healthz: a simultaneous start (F4). If a
// node cannot bind a port the harness picked (another process took it in
// between), it starts the pair again on other ports.
func Start(t T, o Options) *Pair {
	t.Helper()
	p := New(t, o)
	p.startRetrying(p.startBoth)
	return p
}

// StartActive prepares a pair (New), starts the master alone and waits until
// it is active (F2), then starts the standby and waits until the pair is
// stable with the master active and the standby passive (F3; or F7, should
// the standby activate before it hears the master). Unlike Start, the
// outcome does not depend on how fast each process gets going: on a loaded
// machine a simultaneous start may legitimately end with the standby active
// (F2, when it hears nothing during its discovery window).
func StartActive(t T, o Options) (*Pair, Status) {
	t.Helper()
	p := New(t, o)
	p.startRetrying(p.startMasterFirst)
	return p, p.WaitStable(p.Master, p.opts.Wait)
}

func (p *Pair) startRetrying(start func() error) {
	p.t.Helper()
	for attempt := 1; ; attempt++ {
		err := start()
		if err == nil {
			return
		}
		if !errors.Is(err, errPortTaken) || attempt == startAttempts {
			p.t.Fatalf("proctest: %v", err)
		}
		p.t.Logf("proctest: %v; starting again on other ports", err)
		if err := p.reset(); err != nil {
			p.t.Fatalf("proctest: %v", err)
		}
	}
}

func (p *Pair) startBoth() error {
	for _, name := range p.names() {
		if err := p.startNode(p.Nodes[name]); err != nil {
			return err
		}
	}
	return nil
}

func (p *Pair) startMasterFirst() error {
	mark := p.watch.Mark()
	if err := p.startNode(p.Nodes[p.Master]); err != nil {
		return err
	}
	m := Match{Node: p.Master, State: "active", Via: p.Master}
	if _, _, ok := p.watch.Await(mark, p.opts.Wait, m.Func()); !ok {
		return fmt.Errorf("no %v within %v of its start", m, p.opts.Wait)
	}
	return p.startNode(p.Nodes[p.Standby])
}

// reset undoes a failed first start: it kills the nodes, forgets their data,
// and prepares the pair on new ports.
func (p *Pair) reset() error {
	for _, n := range p.Nodes {
		if n.proc != nil {
			if err := n.proc.kill(p.opts.Wait); err != nil {
				return err
			}
		}
		if err := os.RemoveAll(n.DataDir); err != nil {
			return err
		}
	}
	for name, nc := range p.conns {
		nc.Close()
		delete(p.conns, name)
	}
	return p.prepare()
}

func (p *Pair) names() []string { return []string{p.Master, p.Standby} }

// Peer returns the other node of the pair.
func (p *Pair) Peer(node string) string {
	if node == p.Master {
		return p.Standby
	}
	return p.Master
}

// Node returns the named node; it fails the test for an unknown name.
func (p *Pair) Node(name string) *Node {
	p.t.Helper()
	n, ok := p.Nodes[name]
	if !ok {
		p.t.Fatalf("proctest: pair %s has no node %q", p.Name, name)
	}
	return n
}

// Binary is the tandem binary the pair runs.
func (p *Pair) Binary() string { return p.bin }

// Watch is the record of the pair's heartbeats.
func (p *Pair) Watch() *Watch { return p.watch }

// Servers returns the client URLs of the named nodes (both when none is
// named), comma separated, as --server takes them.
func (p *Pair) Servers(nodes ...string) string {
	if len(nodes) == 0 {
		nodes = p.names()
	}
	urls := make([]string, 0, len(nodes))
	for _, n := range nodes {
		urls = append(urls, p.Node(n).ClientURL)
	}
	return strings.Join(urls, ",")
}

// writeConfig writes n's configuration. The file is JSON, which is YAML.
func (p *Pair) writeConfig(n *Node, pushPort int) error {
	o := p.opts
	peer := p.Nodes[p.Peer(n.Name)]
	c := map[string]any{}
	set := func(key string, v any) { setKey(c, key, v) }
	set("pair", o.Pair)
	set("node", n.Name)
	set("role", n.Role)
	set("data_dir", n.DataDir)
	set("nats.listen", hostPort(n.ClientURL))
	set("nats.leaf_listen", hostPort(n.LeafURL))
	set("nats.peer", peer.LeafURL)
	set("admin.listen", n.AdminAddr)
	set("notifier.push_listen", "127.0.0.1:"+strconv.Itoa(pushPort))
	hosts := o.Hosts
	if hosts == nil {
		hosts = map[string]string{p.Master: p.Master + ".test", p.Standby: p.Standby + ".test"}
	}
	set("hosts", hosts)
	if p.ns != nil {
		set("insecure", true) // the link is the pair's own
	}
	set("log.format", "json")
	set("log.level", o.LogLevel)
	for key, d := range map[string]time.Duration{
		"heartbeat.interval": o.Heartbeat.Interval, "heartbeat.timeout": o.Heartbeat.Timeout,
		"heartbeat.discovery": o.Heartbeat.Discovery, "heartbeat.settle": o.Heartbeat.Settle,
		"hooks.timeout": o.Hooks.Timeout,
	} {
		if d != 0 {
			set(key, d.String())
		}
	}
	for key, s := range map[string]string{"failback": o.Failback, "hooks.on_active": o.Hooks.OnActive, "hooks.on_passive": o.Hooks.OnPassive} {
		if s != "" {
			set(key, s)
		}
	}
	if p.wit != nil {
		set("witness.url", p.witnessURL(n.Name))
	}
	if o.Extra != nil {
		for key, v := range o.Extra(n.Name) {
			set(key, v)
		}
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("configuration of %s: %w", n.Name, err)
	}
	return os.WriteFile(n.Config, append(b, '\n'), 0o644)
}

// setKey sets a dotted key ("nats.listen") in a nested map.
func setKey(c map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, part := range parts[:len(parts)-1] {
		next, ok := c[part].(map[string]any)
		if !ok {
			next = map[string]any{}
			c[part] = next
		}
		c = next
	}
	c[parts[len(parts)-1]] = v
}

// hostPort is the host:port of a URL such as nats://127.0.0.1:4222.
func hostPort(url string) string {
	if i := strings.Index(url, "://"); i >= 0 {
		return url[i+3:]
	}
	return url
}

// freePorts returns n distinct TCP ports free on 127.0.0.1, chosen at
// random outside the kernel's ephemeral range: ports in that range are handed
// to every outgoing connection and every listener on port 0 (other tests
// running alongside), which could take one before the node binds it. Without
// such room it falls back to ports the kernel picks.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	lo, hi := portWindow()
	ports := make([]int, 0, n)
	for tries := 0; len(ports) < n; tries++ {
		addr := "127.0.0.1:0"
		if hi > lo && tries < 100*n {
			addr = "127.0.0.1:" + strconv.Itoa(lo+rand.IntN(hi-lo+1))
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			if addr == "127.0.0.1:0" {
				return nil, fmt.Errorf("free port: %w", err)
			}
			continue
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// portWindow is a range of ports outside the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), or 0, 0 when there is no room for one.
func portWindow() (lo, hi int) {
	first, last := 32768, 60999 // Linux's default
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			a, errA := strconv.Atoi(f[0])
			b, errB := strconv.Atoi(f[1])
			if errA == nil && errB == nil {
				first, last = a, b
			}
		}
	}
	const floor, room = 10000, 2000
	switch {
	case first-1-floor >= room:
		return floor, first - 1
	case 65535-(last+1) >= room:
		return last + 1, 65535
	}
	return 0, 0
}

// connect opens the harness's connection to node's server, which retries
// until the server is up and reconnects after every restart, and records the
// pair's heartbeats it receives.
func (p *Pair) connect(node string) error {
	opts := []nats.Option{
		nats.Name("proctest " + node), nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1),
		nats.ReconnectWait(25 * time.Millisecond), nats.ReconnectJitter(10*time.Millisecond, 10*time.Millisecond),
		nats.Timeout(time.Second), nats.NoCallbacksAfterClientClose()}
	if p.ns != nil {
		opts = append(opts, nats.SetCustomDialer(nsDialer(p.ns.ns[node])))
	}
	nc, err := nats.Connect(p.Nodes[node].ClientURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", node, err)
	}
	p.conns[node] = nc
	if _, err := nc.Subscribe(subject.Heartbeats(p.Name), p.watch.handler(node)); err != nil {
		nc.Close()
		return fmt.Errorf("subscribe to heartbeats on %s: %w", node, err)
	}
	return nil
}

// Conn is the harness's connection to node's own server.
func (p *Pair) Conn(node string) *nats.Conn {
	p.t.Helper()
	p.Node(node)
	return p.conns[node]
}

// close is the pair's cleanup: it stops the harness's connections and every
// process still running, and on failure shows the end of each node's log.
func (p *Pair) close() {
	for _, nc := range p.conns {
		nc.Close()
	}
	for _, name := range p.names() {
		n := p.Nodes[name]
		if n == nil || n.proc == nil {
			continue
		}
		if p.t.Failed() {
			n.proc.dumpStacks(5 * time.Second)
		}
		if err := n.proc.kill(p.opts.Wait); err != nil {
			p.t.Errorf("proctest: cleanup of %s: %v", name, err)
		}
		n.endCutLine()
	}
	p.checkLogs()
	if p.t.Failed() {
		p.showLogs()
	}
}

// checkLogs fails the test on a node's JSON log line that does not decode
// or repeats a key (log stores reject those).
func (p *Pair) checkLogs() {
	for _, name := range p.names() {
		n := p.Nodes[name]
		if n == nil {
			continue
		}
		if err := n.checkLog(); err != nil {
			p.t.Errorf("proctest: %s's log: %v", name, err)
		}
	}
}

// checkLog returns the first line of the node's log that does not decode
// or repeats a key, but for a line a SIGKILL cut.
func (n *Node) checkLog() error {
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		return nil // never started
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if n.cut[string(bytes.TrimSpace(line))] {
			continue
		}
		if _, err := logging.CheckJSONLines(line); err != nil {
			return err
		}
	}
	return nil
}

// showLogs prints the end of each node's log and keeps a copy of the logs
// and configurations, which outlives the temporary directory.
func (p *Pair) showLogs() {
	keep, err := os.MkdirTemp("", "proctest-logs-")
	if err != nil {
		keep = ""
	}
	for _, name := range p.names() {
		n := p.Nodes[name]
		if n == nil {
			continue
		}
		p.t.Logf("proctest: last lines of %s's log:\n%s", name, tailFile(n.LogPath, 60))
		if keep != "" {
			for _, f := range []string{n.LogPath, n.Config} {
				if b, err := os.ReadFile(f); err == nil {
					_ = os.WriteFile(filepath.Join(keep, filepath.Base(f)), b, 0o644)
				}
			}
		}
	}
	if keep != "" {
		p.t.Logf("proctest: the nodes' logs and configurations are kept in %s", keep)
	}
}

//go:build linux

package proctest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Network namespaces (Options.Netns): each node runs in a network namespace
// of its own, and the two are joined by one veth pair, the pair's link. The
// harness reaches each node from inside its namespace (a socket opened in
// it, see dialIn), so the host's network is never touched, and a link cut
// (Cut, CutOneWay) drops the packets on the link silently — no RST, no
// error on either side — as a pulled cable or a dead switch does. Every
// node's NATS client port and leafnode port listen on its link address,
// its admin and push endpoints on its own loopback.
//
// The namespaces are named tdm-<pid of the test process>-<n>-{a,b}; they
// are deleted at the harness's cleanup, and those of a test process that
// died without cleanup are deleted by the next one.

// linkAddrs are the link addresses of the master and the standby. Every
// pair has its own two namespaces, so every pair may use the same.
var linkAddrs = [2]string{"10.77.0.1", "10.77.0.2"}

const nsPrefix = "tdm-"

var nsCount atomic.Int64

// NetnsAvailable says why the pair cannot run in network namespaces here
// (not root, no `ip` or `iptables`), or nil when it can.
func NetnsAvailable() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root (ip netns, iptables)")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("network namespaces need %s: %w", tool, err)
		}
	}
	return nil
}

// netns is a pair's two namespaces and the veth pair between them, and,
// with a witness, a third namespace joined to each node's by a link of its
// own.
type netns struct {
	ns    map[string]string // node → namespace name
	iface map[string]string // node → its end of the veth pair
	addr  map[string]string // node → its link address
	cut   map[string]bool   // node → packets arriving on its link are dropped

	witness     string            // the witness's namespace, "" without
	witnessAddr map[string]string // node → the witness's address on that node's link to it
}

// setupNetns creates the namespaces and the link of nodes (master first),
// and with witness the witness's namespace and its links.
func setupNetns(nodes [2]string, witness bool) (*netns, error) {
	if err := NetnsAvailable(); err != nil {
		return nil, err
	}
	sweepNetns()
	n := nsCount.Add(1)
	tag := strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(n, 10)
	ifTag := strconv.FormatInt(int64(os.Getpid()), 36) + strconv.FormatInt(n, 36)
	ns := &netns{ns: map[string]string{}, iface: map[string]string{}, addr: map[string]string{}, cut: map[string]bool{}}
	for i, node := range nodes {
		side := string(rune('a' + i))
		ns.ns[node] = nsPrefix + tag + "-" + side
		ns.iface[node] = "td" + ifTag + side // at most 15 bytes
		ns.addr[node] = linkAddrs[i]
	}
	a, b := nodes[0], nodes[1]
	cmds := [][]string{
		{"netns", "add", ns.ns[a]},
		{"netns", "add", ns.ns[b]},
		{"link", "add", ns.iface[a], "netns", ns.ns[a], "type", "veth", "peer", "name", ns.iface[b], "netns", ns.ns[b]},
	}
	for _, node := range nodes {
		cmds = append(cmds,
			[]string{"-n", ns.ns[node], "addr", "add", ns.addr[node] + "/30", "dev", ns.iface[node]},
			[]string{"-n", ns.ns[node], "link", "set", "lo", "up"},
			[]string{"-n", ns.ns[node], "link", "set", ns.iface[node], "up"})
	}
	if witness {
		cmds = append(cmds, ns.witnessCommands(nodes, tag, ifTag)...)
	}
	for _, c := range cmds {
		if err := run("ip", c...); err != nil {
			ns.remove()
			return nil, err
		}
	}
	return ns, nil
}

// witnessCommands are the ip commands that make the witness's namespace and
// a link from it to each node's: 10.77.1.0/30 to the master's, 10.77.2.0/30
// to the standby's, the witness at .2 on each.
func (ns *netns) witnessCommands(nodes [2]string, tag, ifTag string) [][]string {
	ns.witness = nsPrefix + tag + "-w"
	ns.witnessAddr = map[string]string{}
	cmds := [][]string{{"netns", "add", ns.witness}, {"-n", ns.witness, "link", "set", "lo", "up"}}
	for i, node := range nodes {
		side := string(rune('a' + i))
		near, far := "tw"+ifTag+side, "tw"+ifTag+side+"w"
		net := fmt.Sprintf("10.77.%d.", i+1)
		ns.witnessAddr[node] = net + "2"
		cmds = append(cmds,
			[]string{"link", "add", near, "netns", ns.ns[node], "type", "veth", "peer", "name", far, "netns", ns.witness},
			[]string{"-n", ns.ns[node], "addr", "add", net + "1/30", "dev", near},
			[]string{"-n", ns.witness, "addr", "add", net + "2/30", "dev", far},
			[]string{"-n", ns.ns[node], "link", "set", near, "up"},
			[]string{"-n", ns.witness, "link", "set", far, "up"})
	}
	return cmds
}

// remove deletes both namespaces (and with them the veth pair).
func (ns *netns) remove() error {
	var errs []error
	names := slices.Collect(maps.Values(ns.ns))
	if ns.witness != "" {
		names = append(names, ns.witness)
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("/run/netns", name)); err != nil {
			continue
		}
		errs = append(errs, run("ip", "netns", "del", name))
	}
	return errors.Join(errs...)
}

// sweepNetns deletes the namespaces of test processes that are gone.
func sweepNetns() {
	entries, _ := os.ReadDir("/run/netns")
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), nsPrefix)
		if !ok {
			continue
		}
		pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); errors.Is(err, os.ErrNotExist) {
			_ = run("ip", "netns", "del", e.Name())
		}
	}
}

// command is the command line that runs args in node's namespace.
func (ns *netns) command(node string, args ...string) []string {
	return append([]string{"ip", "netns", "exec", ns.ns[node]}, args...)
}

// drop makes node drop (or accept again) every packet that arrives on its
// link.
func (ns *netns) drop(node string, on bool) error {
	if ns.cut[node] == on {
		return nil
	}
	op := "-D"
	if on {
		op = "-I"
	}
	if err := run("ip", ns.command(node, "iptables", "-w", "5", op, "INPUT", "-i", ns.iface[node], "-j", "DROP")[1:]...); err != nil {
		return err
	}
	ns.cut[node] = on
	return nil
}

// dialIn opens a connection from inside the namespace ns (its name under
// /run/netns).
func dialIn(ctx context.Context, ns, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(ns, func() error {
		d := net.Dialer{Timeout: 2 * time.Second}
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// inNetns runs fn on a thread inside the namespace ns: a socket belongs to
// the namespace of the thread that creates it. The goroutine locks itself to
// its thread, moves the thread into ns, runs fn, and moves it back before
// unlocking. The thread must live on: a node's process is killed
// (Pdeathsig) when the thread that started it ends, and any thread may
// have. Only if it cannot be moved back does it stay locked, and end with
// the goroutine.
func inNetns(ns string, fn func() error) error {
	ch := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		back, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- err
			return
		}
		defer back.Close()
		err = enterNetns(ns)
		if err == nil {
			err = fn()
		}
		if errBack := unix.Setns(int(back.Fd()), unix.CLONE_NEWNET); errBack == nil {
			runtime.UnlockOSThread()
		}
		ch <- err
	}()
	return <-ch
}

// enterNetns moves the calling (locked) thread into ns.
func enterNetns(ns string) error {
	f, err := os.Open(filepath.Join("/run/netns", ns))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("setns %s: %w", ns, err)
	}
	return nil
}

// nsDialer dials in one namespace, for nats.SetCustomDialer.
type nsDialer string

func (d nsDialer) Dial(network, addr string) (net.Conn, error) {
	return dialIn(context.Background(), string(d), network, addr)
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Netns reports whether the pair's nodes run in network namespaces.
func (p *Pair) Netns() bool { return p.ns != nil }

// Cut cuts the pair's link silently in both directions: every packet is
// dropped where it arrives, the connections between the nodes stay open and
// hear nothing (no RST, no error), until Heal. The standby's side is cut
// first; Cut returns the time just before, when the standby's silence
// begins at the latest.
func (p *Pair) Cut() time.Time {
	p.t.Helper()
	at := time.Now()
	p.setDrop(p.Standby, true)
	p.setDrop(p.Master, true)
	return at
}

// CutOneWay drops every packet from sends to to, silently; to's packets
// still reach from. Heal ends it.
func (p *Pair) CutOneWay(from, to string) {
	p.t.Helper()
	p.Node(from)
	p.setDrop(to, true)
}

// Heal ends a Cut or CutOneWay.
func (p *Pair) Heal() {
	p.t.Helper()
	p.setDrop(p.Master, false)
	p.setDrop(p.Standby, false)
}

func (p *Pair) setDrop(node string, on bool) {
	p.t.Helper()
	if p.ns == nil {
		p.t.Fatalf("proctest: a link cut needs the pair in network namespaces (Options.Netns)")
	}
	if err := p.ns.drop(node, on); err != nil {
		p.t.Fatalf("proctest: %v", err)
	}
}

// httpClient is a client for node's admin endpoint, which dials inside the
// node's namespace when it has one.
func (p *Pair) httpClient(node string, timeout time.Duration) *http.Client {
	c := &http.Client{Timeout: timeout}
	if p.ns != nil {
		name := p.ns.ns[node]
		c.Transport = &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialIn(ctx, name, network, addr)
		}}
	}
	return c
}

// Link is two network namespaces joined by a veth pair, as a Pair with
// Options.Netns has, for other programs run beside Tandem (the peers'
// benchmark: keepalived). It is removed at t's cleanup.
type Link struct {
	ns *netns
}

// NewLink creates the namespaces of the two named ends (the first gets
// 10.77.0.1/30, the second 10.77.0.2/30).
func NewLink(t T, ends [2]string) *Link {
	t.Helper()
	ns, err := setupNetns(ends, false)
	if err != nil {
		t.Fatalf("proctest: %v", err)
	}
	t.Cleanup(func() {
		if err := ns.remove(); err != nil {
			t.Errorf("proctest: %v", err)
		}
	})
	return &Link{ns: ns}
}

// Command is the command line that runs args in end's namespace.
func (l *Link) Command(end string, args ...string) []string { return l.ns.command(end, args...) }

// Iface is end's side of the veth pair.
func (l *Link) Iface(end string) string { return l.ns.iface[end] }

// HasAddr reports whether end's side of the link carries the address ip.
func (l *Link) HasAddr(end, ip string) (bool, error) {
	var found bool
	err := inNetns(l.ns.ns[end], func() error {
		ifc, err := net.InterfaceByName(l.ns.iface[end])
		if err != nil {
			return err
		}
		addrs, err := ifc.Addrs()
		if err != nil {
			return err
		}
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.String() == ip {
				found = true
			}
		}
		return nil
	})
	return found, err
}

// Run runs a command in end's namespace and returns its error with its
// output.
func (l *Link) Run(end string, args ...string) error {
	argv := l.ns.command(end, args...)
	return run(argv[0], argv[1:]...)
}

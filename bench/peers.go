//go:build linux

package main

// The peers (`make bench-peers`): keepalived and Redis Sentinel, as Debian
// ships them, through the same crash (kill -9) and freeze (SIGSTOP) of the
// active node as Tandem, in the same run, timed the same way: from just
// before the signal until a client can learn the new active node —
// keepalived's backup holds the virtual address (in its own network
// namespace, 1 s adverts), a Sentinel names the replica as the master
// (three sentinels, quorum 2, down-after-milliseconds 1000 and 100, all on
// loopback). Each peer run starts from fresh processes. The rows say how
// many times Tandem's figure (seed and fast profile) each peer's is.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/config"
)

// peerPoll is how often a peer's new active node is looked for.
const peerPoll = 2 * time.Millisecond

func peers(t proctest.T, e env) []row {
	crash := crashFailover(t, e)[0]
	seedStop := silentFailover(t, e)[0]
	fastStop := hostLoss(t, e, config.ProfileFast, sigstop)[0]
	rows := []row{crash, seedStop, fastStop}
	tandem := map[syscall.Signal][]row{syscall.SIGKILL: {crash}, syscall.SIGSTOP: {seedStop, fastStop}}
	add := func(what string, sig syscall.Signal, samples []float64) {
		rows = append(rows, row{what: what + ratios(samples, tandem[sig]), unit: seconds, samples: samples})
	}
	ka, err := newKeepalived(t, e)
	if err != nil {
		rows = append(rows, row{what: "keepalived", failure: err.Error()})
	} else {
		add("keepalived (advert_int 1): kill -9 → backup holds the VIP", syscall.SIGKILL, ka.runs(t, e, syscall.SIGKILL))
		add("keepalived (advert_int 1): SIGSTOP → backup holds the VIP", syscall.SIGSTOP, ka.runs(t, e, syscall.SIGSTOP))
	}
	for _, down := range []int{1000, 100} {
		s, err := newSentinels(t, down)
		if err != nil {
			rows = append(rows, row{what: "Redis Sentinel", failure: err.Error()})
			break
		}
		add(fmt.Sprintf("Sentinel (down-after %d ms): kill -9 → sentinel names the replica", down), syscall.SIGKILL, s.runs(t, e, syscall.SIGKILL))
		add(fmt.Sprintf("Sentinel (down-after %d ms): SIGSTOP → sentinel names the replica", down), syscall.SIGSTOP, s.runs(t, e, syscall.SIGSTOP))
	}
	return rows
}

// ratios says how many times the p50 of Tandem's rows (seed, then fast)
// the samples' p50 is.
func ratios(samples []float64, tandem []row) string {
	if len(samples) == 0 {
		return ""
	}
	p50 := summarize(samples).p50
	var parts []string
	for i, r := range tandem {
		if len(r.samples) == 0 {
			continue
		}
		name := "seed"
		if i == 1 {
			name = "fast"
		}
		parts = append(parts, fmt.Sprintf("%.1f× Tandem %s", p50/summarize(r.samples).p50, name))
	}
	return " [p50 " + strings.Join(parts, ", ") + "]"
}

// daemon is a peer's process, in its own process group (a signal reaches
// its children too), killed at the cleanup at the latest.
type daemon struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startDaemon(t proctest.T, logPath string, argv ...string) (*daemon, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", argv[0], err)
	}
	d := &daemon{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(d.done) }()
	t.Cleanup(d.kill)
	return d, nil
}

// signal sends sig to the daemon's process group and returns the time just
// before.
func (d *daemon) signal(sig syscall.Signal) time.Time {
	at := time.Now()
	_ = syscall.Kill(-d.cmd.Process.Pid, sig)
	return at
}

// kill ends the daemon's process group and waits for the daemon (bounded).
func (d *daemon) kill() {
	select {
	case <-d.done:
		return
	default:
	}
	d.signal(syscall.SIGKILL)
	select {
	case <-d.done:
	case <-time.After(10 * time.Second):
	}
}

// poll calls ok every peerPoll until it is true or limit passes.
func poll(limit time.Duration, ok func() bool) (time.Time, bool) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if ok() {
			return time.Now(), true
		}
		time.Sleep(peerPoll) // polling with a deadline
	}
	return time.Time{}, false
}

// keepalived: two instances in the two namespaces of a link, the master at
// priority 150, the backup at 100, one VRRP instance with a virtual address.
type keepalived struct {
	link *proctest.Link
	dir  string
}

const vip = "10.77.1.1"

var kaEnds = [2]string{"ka", "kb"}

func newKeepalived(t proctest.T, e env) (*keepalived, error) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		return nil, errors.New("not installed (make bench-peers installs it as root)")
	}
	if err := proctest.NetnsAvailable(); err != nil {
		return nil, err
	}
	k := &keepalived{link: proctest.NewLink(t, kaEnds), dir: t.TempDir()}
	for i, end := range kaEnds {
		state, prio := "MASTER", 150
		if i == 1 {
			state, prio = "BACKUP", 100
		}
		conf := fmt.Sprintf(`global_defs {
  router_id tandem_%s
}
vrrp_instance VI_1 {
  state %s
  interface %s
  virtual_router_id 77
  priority %d
  advert_int 1
  virtual_ipaddress {
    %s/32 dev %s
  }
}
`, end, state, k.link.Iface(end), prio, vip, k.link.Iface(end))
		if err := os.WriteFile(filepath.Join(k.dir, end+".conf"), []byte(conf), 0o644); err != nil {
			return nil, err
		}
	}
	return k, nil
}

// start runs end's keepalived for run n, with pid files of its own (a
// killed keepalived leaves its pid files behind).
func (k *keepalived) start(t proctest.T, end string, n int) (*daemon, error) {
	p := func(ext string) string { return filepath.Join(k.dir, fmt.Sprintf("%s-%d%s", end, n, ext)) }
	return startDaemon(t, k.log(end), k.link.Command(end, "keepalived", "--dont-fork", "--log-console", "--no-syslog", "--vrrp",
		"--use-file="+filepath.Join(k.dir, end+".conf"), "--pid="+p(".pid"), "--vrrp_pid="+p(".vrrp.pid"))...)
}

func (k *keepalived) log(end string) string { return filepath.Join(k.dir, end+".log") }

// fail ends the benchmark with the tail of both instances' logs.
func (k *keepalived) fail(t proctest.T, format string, args ...any) {
	var tails []string
	for _, end := range kaEnds {
		b, _ := os.ReadFile(k.log(end))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		tails = append(tails, end+":\n  "+strings.Join(lines[max(0, len(lines)-8):], "\n  "))
	}
	t.Fatalf("keepalived: "+format+"\n%s", append(args, strings.Join(tails, "\n"))...)
}

func (k *keepalived) holds(end string) bool {
	ok, err := k.link.HasAddr(end, vip)
	return err == nil && ok
}

// runs: per run, both instances start, the master holds the address and
// the backup has heard it for two adverts; then the fault, at a random
// phase of the advert cycle.
func (k *keepalived) runs(t proctest.T, e env, sig syscall.Signal) []float64 {
	var out []float64
	for i := range e.runs {
		a, err := k.start(t, kaEnds[0], i)
		if err != nil {
			t.Fatalf("keepalived: %v", err)
		}
		if _, ok := poll(waitLimit, func() bool { return k.holds(kaEnds[0]) }); !ok {
			k.fail(t, "the master never held %s", vip)
		}
		b, err := k.start(t, kaEnds[1], i)
		if err != nil {
			t.Fatalf("keepalived: %v", err)
		}
		time.Sleep(2*time.Second + rand.N(time.Second)) // two adverts heard, then a random phase
		if k.holds(kaEnds[1]) {
			k.fail(t, "the backup holds %s beside the master", vip)
		}
		at := a.signal(sig)
		got, ok := poll(waitLimit, func() bool { return k.holds(kaEnds[1]) })
		if !ok {
			k.fail(t, "the backup did not take %s within %v of %v", vip, waitLimit, sig)
		}
		out = append(out, got.Sub(at).Seconds())
		fmt.Fprintf(e.log, "  keepalived run %2d: %v → backup holds %s after %v\n", i+1, sig, vip, got.Sub(at).Round(time.Millisecond))
		a.kill()
		b.kill()
		for _, end := range kaEnds {
			_ = k.link.Run(end, "ip", "addr", "del", vip+"/32", "dev", k.link.Iface(end))
		}
	}
	return out
}

// sentinels: a Redis master and its replica, and three sentinels watching
// them with quorum 2, on loopback, fresh for each run.
type sentinels struct {
	down int // down-after-milliseconds
	dir  string
}

func newSentinels(t proctest.T, down int) (*sentinels, error) {
	for _, bin := range []string{"redis-server", "redis-sentinel"} {
		if _, err := exec.LookPath(bin); err != nil {
			return nil, fmt.Errorf("%s not installed (make bench-peers installs it as root)", bin)
		}
	}
	return &sentinels{down: down, dir: t.TempDir()}, nil
}

func (s *sentinels) runs(t proctest.T, e env, sig syscall.Signal) []float64 {
	var out []float64
	for i := range e.runs {
		took := s.run(t, sig)
		out = append(out, took.Seconds())
		fmt.Fprintf(e.log, "  sentinel (down-after %d ms) run %2d: %v → the replica named master after %v\n", s.down, i+1, sig, took.Round(time.Millisecond))
	}
	return out
}

func (s *sentinels) run(t proctest.T, sig syscall.Signal) time.Duration {
	ports, err := loopbackPorts(5)
	if err != nil {
		t.Fatalf("sentinel: %v", err)
	}
	dir, err := os.MkdirTemp(s.dir, "run-")
	if err != nil {
		t.Fatalf("sentinel: %v", err)
	}
	var procs []*daemon
	defer func() {
		for _, d := range procs {
			d.kill()
		}
	}()
	start := func(name string, argv ...string) {
		d, err := startDaemon(t, filepath.Join(dir, name+".log"), argv...)
		if err != nil {
			t.Fatalf("sentinel: %v", err)
		}
		procs = append(procs, d)
	}
	redis := func(name string, port int, extra ...string) {
		start(name, append([]string{"redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", dir, "--dbfilename", name + ".rdb"}, extra...)...)
	}
	redis("master", ports[0])
	redis("replica", ports[1], "--replicaof", "127.0.0.1", strconv.Itoa(ports[0]))
	for i, port := range ports[2:] {
		conf := filepath.Join(dir, fmt.Sprintf("sentinel%d.conf", i))
		text := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor m 127.0.0.1 %d 2\nsentinel down-after-milliseconds m %d\nsentinel failover-timeout m 10000\nsentinel parallel-syncs m 1\n",
			port, dir, ports[0], s.down)
		if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
			t.Fatalf("sentinel: %v", err)
		}
		start(fmt.Sprintf("sentinel%d", i), "redis-sentinel", conf)
	}
	ready := func() bool {
		for _, port := range ports[2:] {
			m, err := sentinelMaster(port)
			if err != nil || m["num-slaves"] != "1" || m["num-other-sentinels"] != "2" || m["flags"] != "master" {
				return false
			}
		}
		return true
	}
	if _, ok := poll(waitLimit, ready); !ok {
		t.Fatalf("sentinel: the sentinels never all saw the master, its replica and each other (logs in %s)", dir)
	}
	time.Sleep(rand.N(time.Second)) // a random phase
	at := procs[0].signal(sig)
	replica := strconv.Itoa(ports[1])
	got, ok := poll(waitLimit, func() bool {
		addr, err := redisCmd(ports[2], "SENTINEL", "get-master-addr-by-name", "m")
		a, _ := addr.([]any)
		return err == nil && len(a) == 2 && a[1] == replica
	})
	if !ok {
		t.Fatalf("sentinel: the replica was not named master within %v of %v (logs in %s)", waitLimit, sig, dir)
	}
	return got.Sub(at)
}

// sentinelMaster is SENTINEL MASTER m as a map.
func sentinelMaster(port int) (map[string]string, error) {
	v, err := redisCmd(port, "SENTINEL", "MASTER", "m")
	if err != nil {
		return nil, err
	}
	a, _ := v.([]any)
	m := map[string]string{}
	for i := 0; i+1 < len(a); i += 2 {
		k, _ := a[i].(string)
		v, _ := a[i+1].(string)
		m[k] = v
	}
	return m, nil
}

// redisCmd sends one command over RESP to 127.0.0.1:port and reads the
// reply: a string, an int64, nil, or a []any of those.
func redisCmd(port int, args ...string) (any, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return readRESP(bufio.NewReader(c), 0)
}

func readRESP(r *bufio.Reader, depth int) (any, error) {
	if depth > 4 {
		return nil, errors.New("resp: nested too deep")
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("resp: empty line")
	}
	body := line[1:]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 || n > 1024 {
			return nil, fmt.Errorf("resp: array of %q", body)
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readRESP(r, depth+1); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("resp: unexpected %q", line)
}

// loopbackPorts picks n free loopback ports.
func loopbackPorts(n int) ([]int, error) {
	var out []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}

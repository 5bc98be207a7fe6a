//go:build linux

package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/session"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// The session rows of SPEC §10: real `tandem node` processes (proctest),
// with 10,000 sessions (pkg/session) in this process holding connections
// on the active node's host, as terminal servers hold them.
func init() {
	benchmarks = append(benchmarks,
		benchmark{"sessions-crash", "kill -9 of the active node's process → 10,000 sessions on 100 connections switched and acknowledged", sessionsCrash},
		benchmark{"sessions-conns", "10,000 sessions each on its own connection: switchover → all acknowledged (raises RLIMIT_NOFILE)", sessionsOwnConns},
	)
}

const (
	benchSessions  = 10000
	benchConns     = 100
	sessionsTarget = 100 * time.Millisecond // targets (SPEC §10)
	ownConnsTarget = 500 * time.Millisecond
)

// fleet is the benchmark's sessions and when each switched. The callbacks
// run on the clients' goroutines, 10,000 of them within milliseconds: each
// writes its session's own slots (no lock, no map), and the waits read
// them all, so that the benchmark's bookkeeping takes as little as
// possible of the CPU the sessions and the nodes share.
type fleet struct {
	clients  []*session.Client
	sessions []*session.Session
	epoch    []atomic.Uint64 // per session (by the number of its name): the newest epoch it switched to
	at       []atomic.Int64  // and when (Unix nanoseconds)

	mu     sync.Mutex       // guards newest
	newest api.Notification // the newest notification any client has seen (Watch)
	seen   bool
}

// startFleet makes conns clients of both nodes and adds n sessions over
// them, with connections on host. A client holds a connection to each node
// (session.Dial) or, oneConn, one connection that moves between them (the
// client library picks a node at random, so both servers hold sessions).
func startFleet(t proctest.T, p *proctest.Pair, n, conns int, host string, oneConn bool) *fleet {
	f := &fleet{epoch: make([]atomic.Uint64, n), at: make([]atomic.Int64, n)}
	t.Cleanup(f.close)
	urls := strings.Split(p.Servers(), ",")
	clients := make([]*session.Client, conns)
	errs := connectAll(conns, func(i int) (err error) {
		opts := []nats.Option{nats.ReconnectBufSize(16 << 20), nats.Timeout(15 * time.Second)}
		if !oneConn {
			clients[i], err = session.Dial(urls, p.Name, opts...)
			return err
		}
		nc, err := nats.Connect(strings.Join(urls, ","), append(opts, nats.MaxReconnects(-1), nats.CustomReconnectDelay(session.ReconnectDelay))...)
		if err != nil {
			return err
		}
		if clients[i], err = session.New(nc, p.Name); err != nil {
			nc.Close()
		}
		return err
	})
	for i, c := range clients {
		if c != nil {
			f.clients = append(f.clients, c)
			c.Watch(f.onNotification)
		}
		if errs[i] != nil {
			t.Fatalf("session client %d: %v", i, errs[i])
		}
	}
	for i := range n {
		s, err := f.clients[i%conns].Add(sessionName(i), benchConnections(host), f.onChange)
		if err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		f.sessions = append(f.sessions, s)
	}
	return f
}

func sessionName(i int) string { return fmt.Sprintf("ts%05d", i) }

func benchConnections(host string) []session.Connection {
	return []session.Connection{
		{Address: `\\` + host + `\Floor3`, Default: true, Options: map[string]string{"duplex": "long-edge"}},
		{Address: "ipp://" + host + ":631/printers/Label", Options: map[string]string{"tray": "2"}},
		{Address: `\\files.test\Scanner`},
	}
}

func (f *fleet) onChange(c session.Change) {
	now := time.Now().UnixNano()
	i, err := strconv.Atoi(strings.TrimPrefix(c.Session, "ts"))
	if err != nil || i < 0 || i >= len(f.epoch) {
		return
	}
	f.at[i].Store(now)
	f.epoch[i].Store(c.Epoch)
}

func (f *fleet) onNotification(n api.Notification) {
	f.mu.Lock()
	if !f.seen || n.Epoch > f.newest.Epoch {
		f.newest, f.seen = n, true
	}
	f.mu.Unlock()
}

func (f *fleet) close() {
	for _, c := range f.clients {
		c.Close()
		c.Conn().Close() // a oneConn client's, which Close leaves open
	}
	f.clients = nil
}

// switchTimes are when the sessions switched to epoch, in order, and how
// many have not.
func (f *fleet) switchTimes(epoch uint64) ([]time.Time, int) {
	var at []time.Time
	missing := 0
	for i := range f.epoch {
		if f.epoch[i].Load() == epoch {
			at = append(at, time.Unix(0, f.at[i].Load()))
		} else {
			missing++
		}
	}
	slices.SortFunc(at, time.Time.Compare)
	return at, missing
}

// allAt reports whether every session applied epoch, and when the last did.
func (f *fleet) allAt(epoch uint64) (time.Time, bool) {
	for i := range f.epoch {
		if f.epoch[i].Load() != epoch {
			return time.Time{}, false
		}
	}
	at, missing := f.switchTimes(epoch)
	if missing > 0 || len(at) == 0 {
		return time.Time{}, false
	}
	return at[len(at)-1], true
}

// spread is when the first, the middle and the last session switched to
// epoch.
func (f *fleet) spread(epoch uint64) (first, half, last time.Time) {
	at, _ := f.switchTimes(epoch)
	if len(at) == 0 {
		return
	}
	return at[0], at[(len(f.sessions)-1)/2], at[len(at)-1]
}

// latest is the newest notification any client has seen.
func (f *fleet) latest() (api.Notification, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.newest, f.seen
}

// awaitSettled waits until every session is at the newest epoch of node's
// notifier and that notifier counted all of them.
func (f *fleet) awaitSettled(t proctest.T, p *proctest.Pair, node string) api.SessionStatus {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st, ok := notifierStatus(p, node)
		if ok && st.Epoch > 0 && st.Acknowledged == len(f.sessions) {
			if _, all := f.allAt(st.Epoch); all || f.allEpoch(st.Epoch) {
				return st
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions did not settle on %s's notifier: %+v", node, st)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

func (f *fleet) allEpoch(epoch uint64) bool {
	for _, s := range f.sessions {
		if s.Epoch() != epoch {
			return false
		}
	}
	return true
}

// notifierStatus asks node's notifier (through node's own server) for its
// view of the sessions.
func notifierStatus(p *proctest.Pair, node string) (api.SessionStatus, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req := api.NotifierStatusRequest{Request: api.Request{V: api.Version, Pair: p.Name}}
	raw, err := reply.Gather(ctx, p.Conn(node), subject.NotifierStatus(p.Name), req, 2, time.Second)
	if err != nil {
		return api.SessionStatus{}, false
	}
	for _, b := range raw {
		var r api.NotifierStatusReply
		if reply.Decode(b, &r) == nil && r.Status.Node == node {
			return r.Status, true
		}
	}
	return api.SessionStatus{}, false
}

// awaitKnown waits until node's notifier knows n sessions: a restarted
// notifier hears of them again through their acknowledgements of the
// periodic re-announcement (N7), and counts only the sessions it knows.
func awaitKnown(t proctest.T, p *proctest.Pair, node string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st, ok := notifierStatus(p, node)
		if ok && st.Known >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's notifier knows %d sessions, not %d", node, st.Known, n)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// awaitAcked waits until node's notifier has every session acknowledged at
// epoch, and returns the time from the activation to the last one.
func awaitAcked(t proctest.T, p *proctest.Pair, node string, epoch uint64, n int) time.Duration {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st, ok := notifierStatus(p, node)
		if ok && st.Epoch == epoch && st.Acknowledged == n && st.AllAckedMS != nil {
			return time.Duration(*st.AllAckedMS) * time.Millisecond
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's notifier did not count %d acknowledgements of epoch %d: %+v", node, n, epoch, st)
		}
		time.Sleep(5 * time.Millisecond) // polling with a deadline
	}
}

// awaitConnected waits until every client is connected to both nodes: the
// node restarted after the last run is back in every client's hands (a
// client's connection to it retries at up to 3 s intervals while it is
// down), the steady state a pair is in when a node dies.
func (f *fleet) awaitConnected(t proctest.T) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		down := 0
		for _, c := range f.clients {
			for _, nc := range c.Conns() {
				if !nc.IsConnected() {
					down++
				}
			}
		}
		if down == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the clients' connections not connected", down)
		}
		time.Sleep(10 * time.Millisecond) // polling with a deadline
	}
}

// awaitActivation polls the newest notification, with a deadline, until
// one names node active in an epoch after since.
func (f *fleet) awaitActivation(t proctest.T, since uint64, node string) api.Notification {
	deadline := time.Now().Add(waitLimit)
	for {
		if n, ok := f.latest(); ok && n.Epoch > since && n.Active == node {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification of %s's activation", node)
		}
		time.Sleep(time.Millisecond)
	}
}

// awaitSwitched waits until every session applied epoch and returns when
// the last one did.
func (f *fleet) awaitSwitched(t proctest.T, epoch uint64) time.Time {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		if at, ok := f.allAt(epoch); ok {
			return at
		}
		if time.Now().After(deadline) {
			at, _ := f.switchTimes(epoch)
			t.Fatalf("%d of %d sessions switched to epoch %d", len(at), len(f.sessions), epoch)
		}
		time.Sleep(2 * time.Millisecond) // polling with a deadline
	}
}

// sessionsCrash: 10,000 sessions on 100 connections; kill -9 of the active
// node's process at a random phase of the heartbeat cycle. Each run gives
// three figures: kill → every session switched (this process's clock, at
// its callbacks); kill → every session acknowledged (the survivor's
// notifier counts the last acknowledgement at activation + all_acked_ms);
// and activation → every session acknowledged (all_acked_ms alone). The
// killed node is restarted and the next run kills the survivor.
func sessionsCrash(t proctest.T, e env) []row {
	p, _ := startPair(t, e)
	active := p.Master
	f := startFleet(t, p, benchSessions, benchConns, p.Master+".test", false)
	f.awaitSettled(t, p, active)
	var switched, acked, fromActivation, floor, perSession []float64
	for i := range e.runs {
		survivor := p.Peer(active)
		awaitKnown(t, p, survivor, benchSessions)
		f.awaitConnected(t)
		bare := floorOf(t, e, p.Node(survivor).ClientURL, p.PID(survivor), benchSessions, benchConns, true)
		each := floorOf(t, e, p.Node(survivor).ClientURL, p.PID(survivor), benchSessions, benchConns, false)
		floor, perSession = append(floor, bare.Seconds()), append(perSession, each.Seconds())
		before, _ := f.latest()
		moved := f.onServer(p.Node(active).ClientURL)
		randomPhase()
		cpu := startCPU(t, p.PID(survivor))
		killed := p.Kill9(active)
		n := f.awaitActivation(t, before.Epoch, survivor)
		cpu.mark(t)
		last := f.awaitSwitched(t, n.Epoch)
		cpu.mark(t)
		all := awaitAcked(t, p, survivor, n.Epoch, benchSessions)
		ackedAt := n.Time.Add(all)
		switched = append(switched, last.Sub(killed).Seconds())
		acked = append(acked, ackedAt.Sub(killed).Seconds())
		fromActivation = append(fromActivation, all.Seconds())
		first, half, _ := f.spread(n.Epoch)
		stayed, came := f.lastOf(n.Epoch, moved)
		fmt.Fprintf(e.log, "  run %2d: kill -9 %s → %s active (epoch %d) after %v, notified %s; sessions switched: first %v, half %v, all %v (the last of the %d clients on the survivor %s, of the %d on the killed node %s); all acknowledged after %v (activation → acknowledged %v; %s)\n",
			i+1, active, survivor, n.Epoch, n.Time.Sub(killed).Round(time.Millisecond), notifiedAfter(p, survivor, n),
			first.Sub(killed).Round(time.Millisecond), half.Sub(killed).Round(time.Millisecond),
			last.Sub(killed).Round(time.Millisecond), len(f.clients)-len(moved), after(stayed, killed), len(moved), after(came, killed),
			ackedAt.Sub(killed).Round(time.Millisecond), all, floorLine(bare, each))
		fmt.Fprintf(e.log, "          on CPU: kill → the first session notified: %s; → the last switched: %s\n", cpu.spent(0), cpu.spent(1))
		if last.Sub(killed) > time.Second {
			f.diagnose(e, n.Epoch, killed)
		}
		p.StartNode(active)
		active = survivor
		p.WaitStable(active, waitLimit)
	}
	tgt := &target{"p95", sessionsTarget.Seconds()}
	rows := []row{{what: "activation → 10,000 sessions (100 conns) switched and acknowledged", unit: seconds, samples: fromActivation, target: tgt}}
	rows = append(rows, floorRows("a publish → 100 connections of 100 sessions each, each connection acknowledging its sessions in one message", fromActivation, floor)...)
	return append(rows,
		row{what: "  NATS alone, per session: a publish → 10,000 subscribers on 100 connections, each acknowledging in a message of its own", unit: seconds, samples: perSession},
		row{what: "kill -9 → 10,000 sessions (100 conns) switched and acknowledged", unit: seconds, samples: acked, target: tgt},
		row{what: "  kill -9 → the last of them switched (at the session)", unit: seconds, samples: switched},
	)
}

// sessionsOwnConns: 10,000 sessions, each on its own connection (file
// descriptors: RLIMIT_NOFILE is raised to its hard limit, which the node
// processes inherit); a switchover activates the other node each run; the
// figure is activation → all acknowledged, as the new active node's
// notifier counts it.
func sessionsOwnConns(t proctest.T, e env) []row {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("RLIMIT_NOFILE: %v", err)
	}
	// The workstations' clients hold one connection each here, not one to
	// each node as session.Dial's do: this process would need 20,000
	// descriptors for them, the limit of the machine the figures were
	// measured on (a switchover, unlike a node's death, moves no
	// connection either way).
	need := uint64(benchSessions + 1000)
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("raise RLIMIT_NOFILE: %v", err)
	}
	if lim.Cur < need {
		t.Fatalf("RLIMIT_NOFILE %d: %d connections need about %d file descriptors", lim.Cur, benchSessions, need)
	}
	p, _ := startPair(t, e)
	active := p.Master
	runs := min(e.runs, 10)
	start := time.Now()
	f := startFleet(t, p, benchSessions, benchSessions, p.Master+".test", true)
	f.awaitSettled(t, p, active)
	fmt.Fprintf(e.log, "  %d connections and sessions up in %v\n", benchSessions, time.Since(start).Round(time.Millisecond))
	var acked, switched []float64
	for i := range runs {
		next := p.Peer(active)
		awaitKnown(t, p, next, benchSessions)
		before, _ := f.latest()
		r := p.CLI("switchover", "--pair", p.Name, "--server", p.Servers())
		if r.Code != 0 {
			t.Fatalf("switchover: exit status %d: %s", r.Code, r.Stderr)
		}
		n := f.awaitActivation(t, before.Epoch, next)
		last := f.awaitSwitched(t, n.Epoch)
		all := awaitAcked(t, p, next, n.Epoch, benchSessions)
		acked = append(acked, all.Seconds())
		switched = append(switched, last.Sub(n.Time).Seconds())
		first, half, _ := f.spread(n.Epoch)
		fmt.Fprintf(e.log, "  run %2d: switchover → %s active (epoch %d), notified %s; sessions switched: first %v, half %v, all %v; all acknowledged after %v\n",
			i+1, next, n.Epoch, notifiedAfter(p, next, n), first.Sub(n.Time).Round(time.Millisecond), half.Sub(n.Time).Round(time.Millisecond),
			last.Sub(n.Time).Round(time.Millisecond), all)
		active = next
		p.WaitStable(active, waitLimit)
	}
	f.close() // the floor's connections take the sessions' file descriptors
	floor := ownConnsFloor(t, e, p.Node(active).ClientURL, runs)
	rows := []row{{what: "activation → 10,000 sessions on their own connections acknowledged", unit: seconds, samples: acked,
		target: &target{"p95", ownConnsTarget.Seconds()}}}
	rows = append(rows, floorRows("a publish → 10,000 subscribers each on its own connection, each acknowledged", acked, floor)...)
	return append(rows, row{what: "  activation → the last of them switched (at the session)", unit: seconds, samples: switched})
}

// floorOf is the NATS floor of one run on the 100-connection topology,
// batched or per session (startFloor): the median of three rounds on fresh
// connections to url, the server of the node whose process is pid. The
// batched floor's time on CPU, per round, goes to the log, beside what
// Tandem's run spends.
func floorOf(t proctest.T, e env, url string, pid, subs, conns int, batched bool) time.Duration {
	f := startFloor(t, url, subs, conns, batched)
	defer f.close()
	cpu := startCPU(t, pid)
	var d []float64
	for range 3 {
		d = append(d, f.round(t).Seconds())
		cpu.mark(t)
	}
	if batched {
		fmt.Fprintf(e.log, "          on CPU: the floor's rounds: %s; %s; %s\n", cpu.spent(0), cpu.spent(1), cpu.spent(2))
	}
	return time.Duration(summarize(d).p50 * float64(time.Second))
}

// ownConnsFloor measures the floor of the own-connection topology, runs
// rounds on 10,000 connections to url, after the sessions closed theirs
// (the process cannot hold both sets of file descriptors, and 10,000
// connections closing while 10,000 others connect made the connects time
// out at load 25).
func ownConnsFloor(t proctest.T, e env, url string, runs int) []float64 {
	start := time.Now()
	f := startFloor(t, url, benchSessions, benchSessions, false)
	defer f.close()
	fmt.Fprintf(e.log, "  floor: %d connections up in %v\n", benchSessions, time.Since(start).Round(time.Millisecond))
	out := make([]float64, 0, runs)
	for i := range runs {
		d := f.round(t)
		out = append(out, d.Seconds())
		fmt.Fprintf(e.log, "  floor round %2d: %v\n", i+1, d.Round(100*time.Microsecond))
	}
	return out
}

// notifiedAfter is when node's notifier published n, after the activation.
func notifiedAfter(p *proctest.Pair, node string, n api.Notification) string {
	st, ok := notifierStatus(p, node)
	if !ok || st.Epoch != n.Epoch || st.NotifiedMS == nil {
		return "?"
	}
	return fmt.Sprintf("%d ms after it", *st.NotifiedMS)
}

// onServer is the set of clients connected to url.
func (f *fleet) onServer(url string) map[int]bool {
	on := map[int]bool{}
	for i, c := range f.clients {
		if c.Conn().ConnectedUrl() == url {
			on[i] = true
		}
	}
	return on
}

// lastOf is when the last session switched to epoch on the clients not in
// moved, and on those in moved.
func (f *fleet) lastOf(epoch uint64, moved map[int]bool) (stayed, came time.Time) {
	for i := range f.sessions {
		if f.epoch[i].Load() != epoch {
			continue
		}
		at := time.Unix(0, f.at[i].Load())
		if moved[i%len(f.clients)] {
			if at.After(came) {
				came = at
			}
		} else if at.After(stayed) {
			stayed = at
		}
	}
	return stayed, came
}

// diagnose logs the clients whose sessions switched more than a second
// after the kill.
func (f *fleet) diagnose(e env, epoch uint64, killed time.Time) {
	late := map[int]int{}
	for i := range f.sessions {
		if f.epoch[i].Load() == epoch && time.Unix(0, f.at[i].Load()).Sub(killed) > time.Second {
			late[i%len(f.clients)]++
		}
	}
	for ci, k := range late {
		c := f.clients[ci]
		st := c.Stats()
		fmt.Fprintf(e.log, "    late: client %d, %d sessions; connected to %s, reconnects %d, stats %+v\n",
			ci, k, c.Conn().ConnectedUrl(), c.Conn().Stats().Reconnects, st)
	}
}

// after is at's distance from from, or "-" when there is none (no client
// of that kind).
func after(at, from time.Time) string {
	if at.IsZero() {
		return "-"
	}
	return at.Sub(from).Round(time.Millisecond).String()
}

// cpuWindows is what a node's process and this one (the sessions, the
// floor's clients) spend on CPU in consecutive windows: a run of a
// session benchmark is CPU-bound on two cores, and this says where.
type cpuWindows struct {
	node  int
	marks [][2]time.Duration // on CPU: the node's, this process's
	at    []time.Time
}

func startCPU(t proctest.T, node int) *cpuWindows {
	c := &cpuWindows{node: node}
	c.mark(t)
	return c
}

func (c *cpuWindows) mark(t proctest.T) {
	n, err := proctest.OnCPU(c.node)
	if err != nil {
		t.Fatalf("on CPU of the node: %v", err)
	}
	self, err := proctest.OnCPU(os.Getpid())
	if err != nil {
		t.Fatalf("on CPU of this process: %v", err)
	}
	c.marks = append(c.marks, [2]time.Duration{n, self})
	c.at = append(c.at, time.Now())
}

// spent describes window i: its length and each process's time on CPU.
func (c *cpuWindows) spent(i int) string {
	r := func(d time.Duration) time.Duration { return d.Round(100 * time.Microsecond) }
	return fmt.Sprintf("%v, node %v, clients' process %v", r(c.at[i+1].Sub(c.at[i])),
		r(c.marks[i+1][0]-c.marks[i][0]), r(c.marks[i+1][1]-c.marks[i][1]))
}

// Package demo runs `tandem demo` (SPEC §8): a whole pair — master a and
// standby b, each a complete node with its embedded NATS server — in one
// process on loopback, with a live view of the pair's status and of what
// happened, and a failover scenario: after KillAfter the active node is
// killed (its NATS server's sockets close, as in a crash), the survivor takes
// over, and after RestartAfter (and once its previous run has ended) the
// killed node comes back with the same data directory and ports, passive
// (failback manual, F3/F9).
//
// Nothing is faked: the status is the nodes' own (their monitors'
// StatusReply, combined as `tandem status` combines them), the timeline is
// read from the nodes' audit streams, and anyone can talk to the pair from
// another terminal with the printed --server URLs.
//
// # Concurrency
//
// Run's goroutine (the loop) owns the view, both slots and the scenario. Each
// node life runs in its own goroutine (slot.launch), which hands Run's result
// back on a channel of size 1. After a kill one watcher goroutine polls the
// survivor's monitor and reports the takeover on d.takeover (size 1). Run
// stops and waits for all of them before it returns, and removes the
// temporary directory.
package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/services/monitor"
)

// Options are the demo's settings.
type Options struct {
	Pair         string        // the pair's name
	Heartbeat    time.Duration // heartbeat.interval of both nodes
	Timeout      time.Duration // heartbeat.timeout of both nodes
	KillAfter    time.Duration // when to kill the active node; 0: never
	RestartAfter time.Duration // when to restart it after the kill; 0: never
	Duration     time.Duration // how long to run; 0: until ctx ends
	Sessions     int           // client sessions to run (pkg/session), 0: none
	Refresh      time.Duration // time between redraws; 0: 300ms

	Out  io.Writer // the view
	Live bool      // Out is a terminal: redraw in place
	// Table prints the pair's status as `tandem status` does; nil prints
	// one line.
	Table func(io.Writer, api.PairStatus)
	// Logs receives the nodes' logs in LogFormat; nil: a file in the
	// temporary directory, whose last lines are written to ErrOut if the
	// demo fails.
	Logs      io.Writer
	LogFormat string
	ErrOut    io.Writer
}

func (o *Options) check() error {
	if o.Pair == "" {
		o.Pair = "demo"
	}
	if o.Refresh <= 0 {
		o.Refresh = 300 * time.Millisecond
	}
	if o.LogFormat == "" {
		o.LogFormat = logging.FormatJSON
	}
	if o.ErrOut == nil {
		o.ErrOut = io.Discard
	}
	switch {
	case o.KillAfter < 0, o.RestartAfter < 0, o.Duration < 0:
		return errors.New("--kill-after, --restart-after and --duration must not be negative")
	case o.Sessions < 0:
		return errors.New("--sessions must not be negative")
	case o.Heartbeat < 10*time.Millisecond:
		return fmt.Errorf("--heartbeat %v is below 10ms", o.Heartbeat)
	case o.Timeout < 2*o.Heartbeat:
		return fmt.Errorf("--timeout %v must be at least 2 × --heartbeat (%v)", o.Timeout, o.Heartbeat)
	}
	c := nodeConfig(*o, os.TempDir(), master, config.Master, "nats-leaf://127.0.0.1:1")
	if err := c.Validate(); err != nil {
		return err
	}
	return nil
}

// takeover is what the watcher saw after a kill.
type takeover struct {
	node  string
	epoch uint64
	after time.Duration
	ok    bool // false: the survivor did not activate in time
}

type demo struct {
	o     Options
	dir   string
	logs  zerolog.Logger
	v     *view
	start time.Time // the demo's start: the timeline's zero
	slots []*slot   // a, b

	ctx    context.Context // ends when Run ends: stops the watcher
	cancel context.CancelFunc
	wg     sync.WaitGroup // the watcher

	// The scenario.
	killAt    time.Time // when the kill is due (zero: never)
	victim    *slot
	survivor  *slot
	killedAt  time.Time
	took      *takeover
	takeover  chan takeover
	restartAt time.Time // zero: not due
	restartOn bool      // restart once the victim's last run has ended
	fleet     *fleet    // the sessions, nil without
	allMoved  bool      // the note that every session switched was made
	relaunch  bool      // the victim was started again
	back      bool      // and came back
	endAt     time.Time // zero: until ctx ends
	shown     string    // the active node in the last frame, "" for none
	summary   []string  // what happened, for the closing summary
}

// remember adds a line to the closing summary, stamped with the time since
// the demo started.
func (d *demo) remember(format string, args ...any) {
	d.summary = append(d.summary, fmt.Sprintf("%6.1fs  ", time.Since(d.start).Seconds())+fmt.Sprintf(format, args...))
}

// printSummary closes the demo: what happened, with the measured timings,
// and why the failover time differs from the benchmark's.
func (d *demo) printSummary() {
	d.v.printf("\nsummary (%s):\n", since(d.start))
	if len(d.summary) == 0 {
		d.v.printf("  nothing happened: no failover was played (--kill-after %v)\n", d.o.KillAfter)
	}
	for _, l := range d.summary {
		d.v.printf("  %s\n", l)
	}
	if d.took != nil && d.took.ok {
		d.v.printf("  %s\n", inProcessNote)
	}
}

// inProcessNote says why the demo's failover takes longer than the
// benchmark's (README § The demo).
const inProcessNote = "note: here a node is stopped inside this one process, which closes its sockets one by one while\n" +
	"  both nodes share the process and its CPU; make bench kills a separate node process with kill -9,\n" +
	"  whose sockets the kernel closes at once: its crash failover is about ten times faster."

// Run runs the demo until ctx ends or Options.Duration has passed. It
// returns nil after a clean shutdown, and leaves no process, goroutine or
// file behind.
func Run(ctx context.Context, o Options) error {
	if err := o.check(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "tandem-demo-")
	if err != nil {
		return fmt.Errorf("temporary directory: %w", err)
	}
	d := &demo{o: o, dir: dir, start: time.Now(), takeover: make(chan takeover, 1)}
	d.v = newView(o.Out, o.Live, d.start, o.Table)
	// The nodes, the watcher and the event reads live until shutdown,
	// which comes after the last frame, not when ctx ends.
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	err = d.runLogged(ctx)
	if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
		err = fmt.Errorf("remove the temporary directory: %w", rerr)
	}
	if err == nil {
		d.printSummary()
		d.v.printf("stopped after %s: both nodes shut down, %s removed\n", since(d.start), dir)
	}
	return err
}

// runLogged runs the demo with the nodes' logs open and shuts the pair
// down. On failure it shows the end of the log file.
func (d *demo) runLogged(ctx context.Context) error {
	closeLogs, err := d.openLogs()
	if err != nil {
		return err
	}
	defer closeLogs()
	err = d.run(ctx)
	d.v.end()
	if serr := d.shutdown(); err == nil {
		err = serr
	}
	if err != nil {
		d.tailLogs()
	}
	return err
}

func (d *demo) run(ctx context.Context) error {
	if err := d.startPair(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // interrupted while starting
		}
		return err
	}
	if err := d.startSessions(); err != nil {
		return err
	}
	d.header()
	now := time.Now()
	if d.o.KillAfter > 0 {
		d.killAt = now.Add(d.o.KillAfter)
	}
	if d.o.Duration > 0 {
		d.endAt = now.Add(d.o.Duration)
	}
	return d.loop(ctx)
}

// openLogs sets up the nodes' logger.
func (d *demo) openLogs() (func(), error) {
	w := d.o.Logs
	closeFn := func() {}
	if w == nil {
		f, err := os.Create(d.logPath())
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		w, closeFn = f, func() { _ = f.Close() }
	}
	log, err := logging.New(w, d.o.LogFormat, "info")
	if err != nil {
		closeFn()
		return nil, err
	}
	d.logs = log
	return closeFn, nil
}

func (d *demo) logPath() string { return filepath.Join(d.dir, "nodes.log") }

// tailLogs writes the last lines of the log file to ErrOut, to explain a
// failure before the file is removed.
func (d *demo) tailLogs() {
	if d.o.Logs != nil {
		return
	}
	b, err := os.ReadFile(d.logPath())
	if err != nil || len(b) == 0 {
		return
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-20):]
	fmt.Fprintf(d.o.ErrOut, "last lines of the nodes' log:\n%s\n", strings.Join(lines, "\n"))
}

// startPair starts the master, then the standby, which dials the master's
// leaf port. The master probes the standby's leaf port when the link drops
// (F6), so that port is chosen before either starts.
func (d *demo) startPair(ctx context.Context) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	bLeaf := fmt.Sprintf("127.0.0.1:%d", port)
	a := newSlot(nodeConfig(d.o, d.dir, master, config.Master, "nats-leaf://"+bLeaf), d.logs)
	d.slots = append(d.slots, a)
	if err := d.startSlot(ctx, a); err != nil {
		return err
	}
	bc := nodeConfig(d.o, d.dir, standby, config.Standby, a.leafURL())
	bc.NATS.LeafListen = bLeaf
	b := newSlot(bc, d.logs)
	d.slots = append(d.slots, b)
	return d.startSlot(ctx, b)
}

func (d *demo) startSlot(ctx context.Context, s *slot) error {
	d.v.note(time.Now(), "==> starting %s (%s)", s.name, s.cfg.Role)
	s.launch(d.ctx)
	if err := s.waitStarted(ctx); err != nil {
		return err
	}
	return d.onStarted(s)
}

// onStarted notes a node that is up and opens its event stream.
func (d *demo) onStarted(s *slot) error {
	d.v.note(time.Now(), "==> %s is up: %s, %s", s.name, s.cfg.Role, s.clientURL())
	r, err := openEvents(d.ctx, s.n.Server(), d.o.Pair, s.name, &s.nextEvent)
	if err != nil {
		return err
	}
	s.events = r
	return nil
}

// header says what runs and how to reach it.
func (d *demo) header() {
	a, b := d.slots[0], d.slots[1]
	servers := a.clientURL() + "," + b.clientURL()
	p := d.v.printf
	p("tandem demo: pair %q on loopback, two nodes in this process (heartbeat %v, timeout %v, failback manual)\n",
		d.o.Pair, d.o.Heartbeat, d.o.Timeout)
	for _, s := range d.slots {
		p("  %s  %-7s  %-22s  leaf %s\n", s.name, s.cfg.Role, s.clientURL(), s.leafURL())
	}
	p("  data in %s (removed at exit)\n", d.dir)
	p("\nfrom another terminal:\n")
	p("  tandem status --pair %s --server %s\n", d.o.Pair, servers)
	p("  tandem switchover --pair %s --server %s\n", d.o.Pair, servers)
	p("  tandem audit replay --follow --pair %s --server %s\n", d.o.Pair, servers)
	p("\n%s\n", d.scenario())
	if d.fleet != nil {
		p("sessions: %d on one client connected to both nodes, each with two connections on the active node's host\n", d.o.Sessions)
	}
	p("\n")
}

func (d *demo) scenario() string {
	s := "scenario: none (--kill-after 0)"
	if d.o.KillAfter > 0 {
		s = fmt.Sprintf("scenario: kill the active node after %v", d.o.KillAfter)
		if d.o.RestartAfter > 0 {
			s += fmt.Sprintf(", restart it %v later", d.o.RestartAfter)
		}
	}
	if d.o.Duration > 0 {
		return s + fmt.Sprintf("; the demo ends after %v", d.o.Duration)
	}
	return s + "; Ctrl-C ends the demo"
}

// loop redraws the view and plays the scenario until the end.
func (d *demo) loop(ctx context.Context) error {
	tick := time.NewTicker(d.o.Refresh)
	defer tick.Stop()
	d.refresh()
	for {
		a, b := d.slots[0], d.slots[1]
		select {
		case <-ctx.Done():
			d.v.note(time.Now(), "==> interrupted: stopping the pair")
			d.refresh()
			return nil
		case t := <-d.takeover:
			d.onTakeover(t)
		case <-a.startedCh():
			if err := d.restarted(a); err != nil {
				return err
			}
		case <-b.startedCh():
			if err := d.restarted(b); err != nil {
				return err
			}
		case err := <-a.done:
			if err := d.onExit(a, err); err != nil {
				return err
			}
		case err := <-b.done:
			if err := d.onExit(b, err); err != nil {
				return err
			}
		case now := <-tick.C:
			if !d.endAt.IsZero() && !now.Before(d.endAt) {
				d.v.note(now, "==> %v passed (--duration): stopping the pair", d.o.Duration)
				d.refresh()
				return nil
			}
			if killed := d.step(now); !killed { // after a kill the survivor needs a moment to notice
				d.refresh()
			}
		}
	}
}

// step plays the scenario's timed steps that are due; it reports whether
// it killed a node.
func (d *demo) step(now time.Time) bool {
	if !d.killAt.IsZero() && !now.Before(d.killAt) && d.kill() {
		d.killAt = time.Time{}
		if d.o.RestartAfter > 0 {
			d.restartAt = d.killedAt.Add(d.o.RestartAfter)
		}
		return true
	}
	if !d.restartAt.IsZero() && !now.Before(d.restartAt) {
		d.restartAt = time.Time{}
		d.restart()
	}
	return false
}

// refresh reads the nodes' new events and redraws.
func (d *demo) refresh() {
	d.readEvents()
	ps := d.status()
	d.checkBack()
	d.checkSessions()
	d.v.draw(time.Now(), ps, d.title(), d.footer())
	d.shown = ""
	if ps.Active != nil {
		d.shown = *ps.Active
		if len(d.summary) == 0 {
			d.remember("the pair is up: %s active in epoch %d", *ps.Active, ps.Epoch)
		}
	}
}

func (d *demo) readEvents() {
	for _, s := range d.slots {
		if s.events == nil {
			continue
		}
		evs, err := s.events.read(d.ctx)
		for _, e := range evs {
			d.v.noteEvent(e)
		}
		if err != nil {
			d.logs.Debug().Err(err).Str("node", s.name).Msg("demo: read events")
		}
	}
}

// status is the pair's status as `tandem status` shows it, from the nodes
// that are up.
func (d *demo) status() api.PairStatus {
	var replies []api.StatusReply
	for _, s := range d.slots {
		if r, ok := s.reply(); ok {
			replies = append(replies, r)
		}
	}
	return api.Combine(d.o.Pair, replies)
}

// kill kills the active node if there is one, it has been shown active,
// and its peer is up; it reports whether it did.
func (d *demo) kill() bool {
	ps := d.status()
	if ps.Active == nil || *ps.Active != d.shown {
		return false
	}
	victim, survivor := d.slots[0], d.slots[1]
	if *ps.Active == standby {
		victim, survivor = survivor, victim
	}
	mon := survivor.monitor()
	if !victim.up || mon == nil {
		return false
	}
	d.readEvents() // the victim's last events, before it goes
	d.victim, d.survivor = victim, survivor
	d.killedAt = time.Now()
	d.wg.Add(1)
	go d.watch(mon, survivor.name, d.killedAt)
	if d.fleet != nil {
		d.fleet.killed(d.killedAt)
	}
	victim.kill()
	d.v.note(d.killedAt, "==> killed %s (the active node) at %s: its sockets closed, as in a crash",
		victim.name, d.killedAt.Format("15:04:05.000"))
	d.remember("killed %s, the active node (in process: its NATS server and services stopped at once)", victim.name)
	return true
}

// watch polls the survivor's monitor every millisecond until it is active,
// and reports how long that took after the kill.
func (d *demo) watch(mon *monitor.Service, name string, since time.Time) {
	defer d.wg.Done()
	limit := d.o.Timeout + 2*d.o.Heartbeat + 5*time.Second
	tk := time.NewTicker(time.Millisecond)
	defer tk.Stop()
	for {
		st := mon.Status()
		t := takeover{node: name, epoch: st.Epoch, after: time.Since(since)}
		if string(st.State) == "active" {
			t.ok = true
		}
		if t.ok || t.after > limit {
			select {
			case d.takeover <- t:
			case <-d.ctx.Done():
			}
			return
		}
		select {
		case <-tk.C:
		case <-d.ctx.Done():
			return
		}
	}
}

func (d *demo) onTakeover(t takeover) {
	d.took = &t
	if !t.ok {
		d.v.note(time.Now(), "==> %s is still not active %v after the kill", t.node, t.after.Round(time.Millisecond))
		d.remember("%s was still not active %v after the kill", t.node, t.after.Round(time.Millisecond))
		return
	}
	d.v.note(d.killedAt.Add(t.after), "==> %s took over: active in epoch %d, %v after the kill (heartbeat timeout %v; in-process kill, see the summary)",
		t.node, t.epoch, t.after.Round(time.Millisecond), d.o.Timeout)
	d.remember("%s took over: active in epoch %d, %v after the kill, without waiting for the heartbeat timeout (%v)",
		t.node, t.epoch, t.after.Round(time.Millisecond), d.o.Timeout)
}

// restart starts the killed node again, with the same data dir and ports,
// once its last run has ended.
func (d *demo) restart() {
	s := d.victim
	if s.done != nil {
		if !d.restartOn {
			d.v.note(time.Now(), "==> restart of %s due; waiting for its last run to end", s.name)
		}
		d.restartOn = true // onExit restarts it
		return
	}
	d.restartOn = false
	d.v.note(time.Now(), "==> restarting %s (same data dir, same ports)", s.name)
	s.launch(d.ctx)
	d.relaunch = true
}

// restarted handles a restarted node that is up.
func (d *demo) restarted(s *slot) error {
	if err := s.started(); err != nil {
		return err
	}
	return d.onStarted(s)
}

// checkBack notes the restarted node once it has made up its mind.
func (d *demo) checkBack() {
	if !d.relaunch || d.back {
		return
	}
	r, ok := d.victim.reply()
	if !ok || r.Self.State == "starting" {
		return
	}
	d.back = true
	d.remember("%s restarted and came back %s in epoch %d", d.victim.name, r.Self.State, r.Self.Epoch)
	if r.Self.State == "passive" {
		d.v.note(time.Now(), "==> %s is back: passive in epoch %d; %s stays active (failback manual: F3, F9)",
			d.victim.name, r.Self.Epoch, d.survivor.name)
		return
	}
	d.v.note(time.Now(), "==> %s is back: %s in epoch %d", d.victim.name, r.Self.State, r.Self.Epoch)
}

// onExit handles the end of a node's life: expected after a kill, an error
// otherwise.
func (d *demo) onExit(s *slot, err error) error {
	killed := s.killed
	s.exited(err)
	if killed {
		if err != nil {
			d.logs.Debug().Err(err).Str("node", s.name).Msg("demo: killed node's run ended")
		}
		if d.restartOn && s == d.victim {
			d.restart()
		}
		return nil
	}
	return fmt.Errorf("node %s stopped: %w", s.name, orStopped(err))
}

func (d *demo) title() string {
	end := "Ctrl-C stops"
	if d.o.Duration > 0 {
		end = fmt.Sprintf("ends after %v", d.o.Duration)
	}
	return fmt.Sprintf("tandem demo · pair %s · running %s · %s", d.o.Pair, since(d.start), end)
}

// footer says what the scenario does next.
func (d *demo) footer() string {
	switch {
	case d.o.KillAfter == 0:
		return "no failover scenario (--kill-after 0): try tandem switchover from another terminal"
	case !d.killAt.IsZero():
		return fmt.Sprintf("next: kill the active node at %s", d.offset(d.killAt))
	case d.took == nil:
		return fmt.Sprintf("killed %s; waiting for %s to take over", d.victim.name, d.survivor.name)
	case !d.restartAt.IsZero():
		return fmt.Sprintf("next: restart %s at %s", d.victim.name, d.offset(d.restartAt))
	case d.restartOn:
		return fmt.Sprintf("next: restart %s once its last run has ended", d.victim.name)
	case d.o.RestartAfter == 0:
		return fmt.Sprintf("%s stays down (--restart-after 0)", d.victim.name)
	case !d.back:
		return fmt.Sprintf("waiting for %s to come back", d.victim.name)
	}
	return "scenario done: try tandem switchover from another terminal"
}

// offset is t as a time since the demo's start.
func (d *demo) offset(t time.Time) string {
	return fmt.Sprintf("%.1fs", t.Sub(d.start).Seconds())
}

// shutdown stops the watcher, then both nodes at once, and waits for them.
func (d *demo) shutdown() error {
	d.cancel()
	d.wg.Wait()
	if d.fleet != nil {
		d.fleet.close()
	}
	var running []*slot
	for _, s := range d.slots {
		s.closeEvents()
		if s.done != nil {
			s.up = false
			s.cancel()
			running = append(running, s)
		}
	}
	var errs []error
	for _, s := range running {
		// Canceled: the node was stopped while it was starting.
		if err := s.wait(); err != nil && !s.killed && !errors.Is(err, context.Canceled) {
			errs = append(errs, fmt.Errorf("stop node %s: %w", s.name, err))
		}
	}
	return errors.Join(errs...)
}

// since is the time since t, to a tenth of a second.
func since(t time.Time) string {
	return time.Since(t).Round(100 * time.Millisecond).String()
}

// startSessions starts the sessions, their connections on the host of the
// active node (the master until one is active).
func (d *demo) startSessions() error {
	if d.o.Sessions == 0 {
		return nil
	}
	host := d.slots[0].cfg.Hosts[master]
	if ps := d.status(); ps.Active != nil {
		host = d.slots[0].cfg.Hosts[*ps.Active]
	}
	f, err := startFleet([]string{d.slots[0].clientURL(), d.slots[1].clientURL()}, d.o.Pair, host, d.o.Sessions)
	if err != nil {
		return fmt.Errorf("sessions: %w", err)
	}
	d.fleet = f
	return nil
}

// checkSessions updates the sessions' line and notes when, after the kill,
// every session has switched.
func (d *demo) checkSessions() {
	if d.fleet == nil {
		return
	}
	d.v.sessions(d.fleet.line())
	if d.allMoved || d.killedAt.IsZero() {
		return
	}
	once, more, took := d.fleet.progress()
	if once+more < len(d.fleet.sessions) {
		return
	}
	d.allMoved = true
	d.remember("all %d sessions switched to the new active node (%d exactly once), the last %v after the activation",
		len(d.fleet.sessions), once, took.Round(time.Millisecond))
	d.v.note(time.Now(), "==> sessions: all %d switched after the kill (%d exactly once), the last %v after the activation",
		len(d.fleet.sessions), once, took.Round(time.Millisecond))
}

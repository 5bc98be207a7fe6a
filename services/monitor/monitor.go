// Package monitor is the pair monitor service: the driver around the pure
// failover machine (internal/failover). It sends and receives heartbeats over
// core NATS, turns link signals into fast failover, persists the epoch, runs
// hooks, answers admin requests, and publishes every transition as an event.
//
// # Concurrency
//
// One goroutine, run, owns the machine and everything it decides. Everything
// else reaches it through s.inputs: NATS subscription callbacks (heartbeats,
// control messages, admin commands), link signals, and the results of peer
// probes. After every input or tick run carries out the machine's Ready in
// the documented order and publishes a snapshot (s.snap, an atomic pointer)
// that status requests, /readyz and metrics read without locking. Hooks run
// one at a time on their own goroutine (runHooks), fed by s.hooks, so that a
// slow hook never delays a heartbeat.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/reject"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/monitor/internal/epochfile"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
	"github.com/tandem-ha/tandem/services/monitor/internal/wire"
)

// linkRedial bounds how long the leafnode link takes to come back once a
// server has closed it (pkg/natsnode: it is redialled every 100–200 ms). A
// closed link, its peer's process not proven dead, is given at least this
// long (and at least one heartbeat interval) to carry a heartbeat before the
// peer is lost (F6): at the fast profile's 25 ms interval, a passive node
// frozen for longer than the leaf link's keepalive (about 4 s) would
// otherwise take over on resuming, the link its peer's server had closed not
// yet redialled.
const linkRedial = 250 * time.Millisecond

// TicksPerInterval is how many ticks make one heartbeat interval. Timeouts
// are measured to 1/20 of the interval (50 ms at the default 1 s).
const TicksPerInterval = 20

// stallReportEvery is how often at most a stall of the node's own timers is
// reported as a tandem.node.stalled event (F12); every stall is counted in
// tandem_monitor_stalls_total and logged.
const stallReportEvery = 10 * time.Second

// Link reports the state of the link to the peer and probes the peer's
// process. It is optional: without it the monitor relies on heartbeats alone.
type Link interface {
	// Events delivers every change of the link.
	Events() <-chan natsnode.LinkEvent
	// ProbeGone reports whether the peer's process is proven dead (its
	// port refuses connections). Silence or a live answer are not proof.
	ProbeGone(ctx context.Context) bool
}

// LeafLink is the Link of an embedded server's leafnode connection to the
// peer; peerLeafURL is the peer's leafnode URL (nats.peer), which is probed
// when the link goes down.
func LeafLink(srv *natsnode.Server, peerLeafURL string) Link {
	return leafLink{srv: srv, peer: peerLeafURL}
}

type leafLink struct {
	srv  *natsnode.Server
	peer string
}

func (l leafLink) Events() <-chan natsnode.LinkEvent { return l.srv.LinkEvents() }

func (l leafLink) ProbeGone(ctx context.Context) bool {
	if l.peer == "" {
		return false
	}
	return natsnode.ProbePeer(ctx, l.peer, 250*time.Millisecond) == natsnode.Gone
}

// RelayedLink is the Link of a monitor in its own process: the link state
// its node's NATS process relays (natsnode.FollowLink), which has already
// probed the peer when it says the link is down.
func RelayedLink(f *natsnode.FollowedLink) Link { return relayedLink{f} }

type relayedLink struct{ f *natsnode.FollowedLink }

func (l relayedLink) Events() <-chan natsnode.LinkEvent { return l.f.Events() }

func (l relayedLink) ProbeGone(context.Context) bool { return l.f.Gone() }

// Options are what a monitor needs.
type Options struct {
	Config   config.Config
	Conn     *nats.Conn // to the node's own NATS server
	Link     Link       // may be nil
	Events   event.Sink // pkg/bus.Emitter in production
	Clock    clock.Clock
	Log      zerolog.Logger
	Registry prometheus.Registerer
	// Apart says the monitor runs in a process of its own, beside the node's
	// NATS server (the split layout). That server can then die alone, and
	// the peer, seeing it gone, takes over at once: a monitor that loses its
	// connection to it steps down (on_passive, if it was active) and Run
	// returns an error, for its supervisor to start it again once the server
	// is back. It rejoins the pair from the start (F1). In one process the
	// connection is in-process and ends only with the node.
	Apart bool
}

// Service is one node's monitor.
type Service struct {
	cfg    config.Config
	nc     *nats.Conn
	link   Link
	events event.Sink
	clk    clock.Clock
	log    zerolog.Logger
	met    *metrics
	dir    string

	tick time.Duration
	m    *failover.Machine

	// saved is what epoch.json holds; unsaved is a newer seen epoch that
	// could not be written yet (see persist). Owned by run's goroutine.
	saved   epochfile.Epochs
	unsaved *epochfile.Epochs
	// foreignLink: the link is up to another pair's node (onLink). Owned
	// by run's goroutine.
	foreignLink bool
	save        func(dir string, e epochfile.Epochs) error // epochfile.Save; tests slow it down

	inputs chan input
	hooks  chan hookJob
	lost   chan error // Apart: the connection to the node's server is lost
	snap   atomic.Pointer[snapshot]

	// Owned by run.
	seq       uint64
	lastHeard time.Time
	lastPeer  failover.State // the state the peer was last heard in
	linkDown  time.Time      // when the link last went down, zero while up
	lastTick  time.Time
	// checkSince is when each check last changed health; peer is the
	// peer's health from its last heartbeat (F15).
	checkSince map[string]time.Time
	peerHealth wire.Health
	started    time.Time

	rejects reject.Limiter

	subs bus.Subscriptions
	wg   sync.WaitGroup

	wnc *nats.Conn // to the witness (F14), nil without one
}

type input struct {
	in     failover.Input
	at     time.Time
	done   chan error   // nil for inputs that need no answer
	health *wire.Health // with a heartbeat: the peer's health
}

type hookJob struct {
	hook failover.Hook
}

// snapshot is what run last published of the machine.
type snapshot struct {
	status     failover.Status
	health     wire.Health // this node's, as its heartbeats say
	peerHealth wire.Health
	lastHeard  time.Time
	lastPeer   failover.State // the state the peer was last heard in
	linkDown   bool           // the link to the peer is down (onLink)
	at         time.Time
}

// New builds a monitor; Run starts it.
func New(o Options) (*Service, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Conn == nil || o.Events == nil {
		return nil, errors.New("monitor: a NATS connection and an event sink are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	s := &Service{
		cfg: o.Config, nc: o.Conn, link: o.Link, events: o.Events, clk: o.Clock,
		log:    o.Log.With().Str("service", "monitor").Logger(),
		dir:    filepath.Join(o.Config.DataDir, "monitor"),
		save:   epochfile.Save,
		tick:   o.Config.Heart.Interval / TicksPerInterval,
		inputs: make(chan input, 1024),
		hooks:  make(chan hookJob, 64),

		checkSince: map[string]time.Time{},
		peerHealth: wire.Health{V: wire.Version, Healthy: true},
	}
	s.started = s.clk.Now()
	if o.Apart {
		s.lost = make(chan error, 1)
		prev := o.Conn.Opts.DisconnectedErrCB
		o.Conn.SetDisconnectErrHandler(func(c *nats.Conn, err error) {
			if prev != nil {
				prev(c, err)
			}
			if c.IsClosed() {
				return // closed by us
			}
			select {
			case s.lost <- err:
			default:
			}
		})
	}
	met, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	s.met = met
	epochs, err := epochfile.Load(s.dir)
	if err != nil {
		return nil, err
	}
	s.m, err = failover.New(s.machineConfig(epochs))
	if err != nil {
		return nil, err
	}
	s.saved = epochs
	s.publishSnapshot()
	if rl, ok := o.Link.(relayedLink); ok {
		// A relayed state that does not decode is refused like any input
		// (reject reads the snapshot published just above).
		subj := subject.Link(o.Config.Pair, o.Config.Node)
		rl.f.OnBad(func(err error) { s.reject("link", subj, err) })
	}
	return s, nil
}

// ticks converts a duration to ticks, rounding up.
func (s *Service) ticks(d time.Duration) int {
	return int(math.Ceil(float64(d) / float64(s.tick)))
}

func (s *Service) machineConfig(e epochfile.Epochs) failover.Config {
	c := s.cfg
	return failover.Config{
		Self: c.Node, Peer: c.Peer(), Role: c.Role, Epoch: e.Epoch, Seen: e.Seen, Reserved: e.Reserve,
		HeartbeatTicks:        TicksPerInterval,
		TimeoutTicks:          s.ticks(c.Heart.Timeout),
		LinkDownTicks:         max(TicksPerInterval, s.ticks(linkRedial)),
		DiscoveryTicks:        s.ticks(c.Heart.DiscoveryWindow()),
		SettleTicks:           s.ticks(c.Heart.SettleDelay()),
		ConfirmTicks:          s.ticks(c.Heart.Timeout),
		FailbackAutomatic:     c.Failback == config.FailbackAutomatic,
		HookTicks:             s.ticks(c.Hooks.Timeout),
		Checks:                s.checkConfigs(),
		TakeoverWhenUnhealthy: c.Checks.TakeoverWhenUnhealthy,
		WaitForSync:           s.waitsForSync(),
		Witness:               c.Witness.URL != "",
		WitnessRequired:       c.Witness.Required,
		LeaseTicks:            s.ticks(c.Heart.Timeout),
		StallReportTicks:      s.ticks(stallReportEvery),
	}
}

// Run runs the monitor until ctx is done. It returns an error only when the
// node cannot go on safely (it could not persist an epoch).
func (s *Service) Run(ctx context.Context) error {
	if err := s.subscribe(); err != nil {
		return err
	}
	defer s.subs.Unsubscribe()
	if err := s.connectWitness(); err != nil {
		return err
	}
	defer s.closeWitness()
	hctx, cancelHooks := context.WithCancel(context.Background())
	s.wg.Add(1)
	go s.runHooks(hctx)
	s.startChecks(hctx)
	if s.waitsForSync() {
		s.wg.Add(1)
		go s.watchSync(hctx)
	}
	defer func() {
		cancelHooks()
		s.wg.Wait()
	}()
	s.log.Info().Str("pair", s.cfg.Pair).Str("node", s.cfg.Node).Str("role", string(s.cfg.Role)).
		Uint64("epoch", s.m.Epoch()).Msg("monitor starting")
	return s.run(ctx)
}

// run is the monitor's loop. It does not wake for every tick: the machine
// says how many of the next ticks are quiet (Quiet), and the loop sleeps
// until the first that may act, applying the quiet ones when it wakes — or,
// when an input comes first, the ones that have passed by then, so that the
// input finds the machine where a tick-by-tick loop would have left it. An
// idle pair wakes about once per heartbeat interval instead of
// TicksPerInterval times.
func (s *Service) run(ctx context.Context) error {
	var linkEvents <-chan natsnode.LinkEvent
	if s.link != nil {
		linkEvents = s.link.Events()
	}
	s.lastTick = s.clk.Now()
	if err := s.carryOut(ctx); err != nil {
		return err
	}
	for {
		quiet := s.m.Quiet()
		due := s.lastTick.Add(time.Duration(quiet+1) * s.tick)
		select {
		case <-ctx.Done():
			s.release()
			return nil
		case now := <-s.clk.After(due.Sub(s.clk.Now())):
			s.onTimer(now, quiet)
		case in := <-s.inputs:
			s.onQueued(s.clk.Now(), quiet, in)
		case le, ok := <-linkEvents:
			if !ok {
				linkEvents = nil
				continue
			}
			s.catchUp(s.clk.Now(), quiet)
			s.onLink(ctx, le)
		case err := <-s.lost:
			return s.stepDown(ctx, err)
		}
		if err := s.carryOut(ctx); err != nil {
			return err
		}
	}
}

// stepDown ends a monitor that lost its node's NATS server (Apart): an
// active node runs on_passive before it goes, so that its service stops
// while the peer takes over. It returns why, as an error.
func (s *Service) stepDown(ctx context.Context, cause error) error {
	state, epoch := s.m.State(), s.m.Epoch()
	s.log.Error().Err(cause).Str("state", string(state)).Uint64("epoch", epoch).
		Msg("lost the connection to the node's NATS server: stepping down; start again once it is back")
	if state == failover.Active {
		s.runHook(ctx, failover.Hook{State: failover.Passive, Epoch: epoch})
	}
	return fmt.Errorf("monitor: lost the node's NATS server (%v) while %s in epoch %d: stepped down", cause, state, epoch)
}

// onTimer is run's wake-up at now, for the first tick after quiet ones that
// it slept through: they are applied as if on time, then the tick itself,
// which checks first whether it came late (F12).
func (s *Service) onTimer(now time.Time, quiet int) {
	s.passQuiet(quiet)
	s.onTick(now)
}

// onQueued applies an input taken at now, after the quiet ticks that have
// passed by then, and after a stall if the loop should have woken long
// before (F12).
func (s *Service) onQueued(now time.Time, quiet int, in input) {
	s.catchUp(now, quiet)
	s.checkStall(now, false)
	s.onInput(in)
}

// passQuiet applies n quiet ticks, as if each had come on time.
func (s *Service) passQuiet(n int) {
	for range n {
		s.m.Tick()
	}
	s.lastTick = s.lastTick.Add(time.Duration(n) * s.tick)
}

// catchUp applies the quiet ticks (at most quiet) that have passed by now.
func (s *Service) catchUp(now time.Time, quiet int) {
	s.passQuiet(max(0, min(int(now.Sub(s.lastTick)/s.tick), quiet)))
}

// onTick advances the machine by one tick, first telling it when the tick
// came late (F12). Missed ticks are not caught up: a node that was frozen must
// not measure the peer's silence by its own pause.
func (s *Service) onTick(now time.Time) {
	s.checkStall(now, true)
	s.lastTick = now
	s.m.Tick()
}

// checkStall tells the machine when the node has not ticked for longer than
// it should have (F12): the process was paused or starved. It runs before
// ticks and before inputs, so that no decision is taken on an input that
// queued up during the pause before the machine knows of the pause. Before
// a tick it also applies the inputs that queued up (drain); before an input
// it does not, so that inputs keep their order.
func (s *Service) checkStall(now time.Time, drain bool) {
	late := now.Sub(s.lastTick) - s.tick
	if late <= s.stallThreshold() {
		return
	}
	s.lastTick = now.Add(-s.tick) // counted once
	s.met.stalls.Inc()
	s.log.Warn().Dur("late", late).Msg("timers ran late; re-checking the peer before any failover")
	_ = s.m.Step(failover.Stall{Ticks: s.ticks(late)})
	if drain {
		s.drainInputs()
	}
}

// stallThreshold is how late a tick may come before it counts as a stall:
// a quarter of the heartbeat interval, an eighth of the timeout, and at
// least two ticks. A timer late by less is not counted as the peer's silence
// either (missed ticks are not caught up), so the threshold only decides
// when the node says it stalled: with short heartbeats on a busy machine
// (the fast profile), timers a few milliseconds late are common, and an
// event for each would flood the audit stream.
func (s *Service) stallThreshold() time.Duration {
	return max(s.cfg.Heart.Interval/4, s.cfg.Heart.Timeout/8, 2*s.tick)
}

// drainInputs applies the inputs that queued up while the node was stalled,
// so that heartbeats that arrived during a pause count before the next tick.
func (s *Service) drainInputs() {
	for i := 0; i < cap(s.inputs); i++ {
		select {
		case in := <-s.inputs:
			s.checkStall(s.clk.Now(), false)
			s.onInput(in)
		default:
			return
		}
	}
}

func (s *Service) onInput(in input) {
	if _, ok := in.in.(failover.Heartbeat); ok {
		s.lastHeard = in.at
		s.met.heartbeatsIn.Inc()
		if in.health != nil {
			s.peerHealth = *in.health
		}
	}
	err := s.m.Step(in.in)
	if in.done != nil {
		in.done <- err
		return
	}
	if err != nil {
		s.reject(fmt.Sprintf("%T", in.in), "", err)
	}
}

// onLink reacts to the link to the peer going up or down. A link that goes
// down is probed at once, off the loop; a refused connection proves the peer's
// process dead and fails over without waiting for the timeout (F6). A link
// that comes up to a server of another pair (nats.peer points at the wrong
// node) is reported, and does not count as the link to the peer.
func (s *Service) onLink(ctx context.Context, le natsnode.LinkEvent) {
	now := s.clk.Now()
	up := le.Up
	if up && natsnode.ForeignPeer(s.cfg.Pair, le.Remote) {
		s.foreignLink = true
		s.reject("link", "", fmt.Errorf("the link is up to NATS server %q, which is not a node of pair %q: "+
			"nats.peer on this node or its peer points at another pair's node", le.Remote, s.cfg.Pair))
		return
	}
	if !up && s.foreignLink { // that link was never the peer's
		s.foreignLink = false
		return
	}
	if up {
		s.linkDown = time.Time{}
		s.log.Debug().Msg("link to the peer is up")
		_ = s.m.Step(failover.LinkUp{})
		return
	}
	s.linkDown = now
	s.met.linkDowns.Inc()
	s.log.Info().Msg("link to the peer is down; probing the peer")
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		pctx, cancel := context.WithTimeout(ctx, s.cfg.Heart.Interval/2)
		defer cancel()
		gone := s.link.ProbeGone(pctx)
		select {
		case s.inputs <- input{in: failover.LinkDown{Gone: gone}, at: s.clk.Now()}:
		case <-ctx.Done():
		}
	}()
}

// carryOut does what the machine's Ready asks, in order: persist the epoch,
// send control messages and the heartbeat, publish events, queue hooks. An
// activation into the epoch reserved on disk is persisted after the events
// instead (failover.Ready.PersistAfterSend): a failover does not wait for
// the disk.
func (s *Service) carryOut(ctx context.Context) error {
	for s.m.HasReady() {
		start := s.clk.Now()
		rd := s.m.Ready()
		rec := epochfile.Epochs{Epoch: rd.Epoch, Seen: rd.Seen, Reserve: rd.Reserve}
		late := rd.PersistAfterSend(s.saved.Reserve)
		if rd.PersistEpoch && !late {
			if err := s.persist(rec); err != nil {
				return err
			}
		} else if s.unsaved != nil && !rd.PersistEpoch {
			_ = s.persist(*s.unsaved) // a retry: it stops nothing
		}
		for _, msg := range rd.Messages {
			s.sendControl(msg)
		}
		if rd.Lease != nil {
			s.askWitness(ctx, *rd.Lease)
		}
		if rd.Heartbeat {
			s.sendHeartbeat()
		}
		if outageActivation(rd) {
			s.met.phase.WithLabelValues("activation").Observe(s.clk.Now().Sub(start).Seconds())
		}
		for _, e := range rd.Events {
			s.observeTransition(e, start)
			s.noteCheckEvent(e, start)
			s.publishEvent(e)
		}
		if late {
			_ = s.persist(rec) // the reservation covers it: a failure stops nothing
		}
		for _, h := range rd.Hooks {
			select {
			case s.hooks <- hookJob{hook: h}:
			case <-ctx.Done():
			}
		}
		s.m.Advance()
	}
	s.publishSnapshot()
	return nil
}

// persist writes e to epoch.json. A node that cannot write its own new
// epoch, when the epoch reserved on disk does not cover it, stops: an epoch
// is never announced before it is on disk (F1). Any other write that fails
// (a newer epoch merely seen from the peer, an own epoch the reservation
// covers, a new reservation) is logged and counted, and retried at every
// wake-up until it is written: the node keeps running and knows the epochs
// in memory; only a restart before the write succeeds would forget a seen
// one. A full disk on the passive node must not take the pair's standby
// away.
func (s *Service) persist(e epochfile.Epochs) error {
	err := s.save(s.dir, e)
	if err == nil {
		if s.unsaved != nil {
			s.log.Info().Uint64("epoch", e.Epoch).Uint64("seen", e.Seen).Msg("epoch persisted again")
		}
		s.saved, s.unsaved = e, nil
		return nil
	}
	s.met.persistFailures.Inc()
	if e.Epoch > max(s.saved.Epoch, s.saved.Reserve) {
		return fmt.Errorf("monitor: cannot persist epoch %d (seen %d), stopping: %w", e.Epoch, e.Seen, err)
	}
	if s.unsaved == nil || *s.unsaved != e {
		s.log.Error().Err(err).Uint64("epoch", e.Epoch).Uint64("seen", e.Seen).Uint64("reserve", e.Reserve).
			Msg("cannot persist the epochs; running on, retrying at every wake-up")
	}
	s.unsaved = &e
	return nil
}

// release gives back, at a clean stop, the epoch reserved for the next
// activation: the next start need not skip it (a start after a crash
// does, as the node may have announced it).
func (s *Service) release() {
	if s.unsaved != nil || s.saved.Reserve <= max(s.saved.Epoch, s.saved.Seen) {
		return
	}
	e := epochfile.Epochs{Epoch: s.saved.Epoch, Seen: s.saved.Seen}
	if err := s.save(s.dir, e); err != nil {
		s.log.Warn().Err(err).Msg("cannot release the reserved epoch; the next start skips it")
		return
	}
	s.saved = e
}

func outageActivation(rd failover.Ready) bool {
	for _, e := range rd.Events {
		if e.Outage() {
			return true
		}
	}
	return false
}

func (s *Service) publishSnapshot() {
	st := s.m.Status()
	if st.PeerHeard {
		s.lastPeer = st.PeerState
	}
	s.snap.Store(&snapshot{status: st, lastHeard: s.lastHeard, lastPeer: s.lastPeer, linkDown: !s.linkDown.IsZero(), at: s.clk.Now(),
		health: s.health(st), peerHealth: s.peerHealth})
	s.met.observe(st, s.lastHeard, s.clk.Now())
	s.met.observeHealth(st)
}

// Status is the node's latest view of the pair.
func (s *Service) Status() failover.Status { return s.snap.Load().status }

// Ready reports whether the monitor has finished discovery (for /readyz).
func (s *Service) Ready() error {
	if st := s.snap.Load().status.State; st == failover.Starting {
		return errors.New("monitor: discovery in progress")
	}
	if !s.nc.IsConnected() {
		return errors.New("monitor: not connected to NATS")
	}
	return nil
}

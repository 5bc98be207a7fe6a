package audit

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/heartbeat"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// The Guard's timing. It used to poll every 2 s, which cost an idle node
// two JetStream API requests and their advisories a second (idle cost);
// JetStream's advisories make the poll a safety net.
const (
	GuardEvery      = 30 * time.Second       // the poll without any advisory
	GuardAfterDrift = time.Second            // the next check after a change was found
	mirrorRetry     = 200 * time.Millisecond // the retry of a mirror not made yet
	// streamAdvisories are JetStream's advisories of a stream created,
	// updated or deleted (the last token is the stream's name).
	streamAdvisories = "$JS.EVENT.ADVISORY.STREAM.*.*"
)

// Guard keeps a node's side of the audit trail (SPEC §7 A1–A3) while the
// node runs: it makes the node's durable mirror of the peer's event stream
// as soon as the peer's name is known (LearnPeer), retrying until it
// succeeds; it checks the node's event stream, and the mirror once made —
// at once when JetStream advises that a stream was created, updated or
// deleted (at most once a second), every GuardAfterDrift while the last check found a change, and
// every GuardEvery whatever happens (a server that sends no advisories) —
// and restores a configuration changed behind the node's
// back (Drift, Restore), reporting it as critical; and it answers the audit
// status requests of tandem status and tandem check (api.VerbAuditStatus).
//
// Fill the exported fields, then call Run once. Run's goroutine owns the
// mirror; State may be called from any goroutine.
type Guard struct {
	Pair, Node string
	Peer       string // the peer's name as configured (config.Config.Peer); "": learned
	Retention  Retention
	Hold       time.Duration // how long restored streams stay "changed" (DefaultHold when 0)
	Conn       *nats.Conn    // to the node's own NATS server
	JS         jetstream.JetStream
	Events     event.Sink // tandem.audit.changed; nil: none
	Log        zerolog.Logger

	mu    sync.Mutex // guards watch
	watch Watch
}

// Run guards the audit streams until ctx ends.
func (g *Guard) Run(ctx context.Context) {
	g.mu.Lock()
	g.watch.Hold = g.Hold
	g.mu.Unlock()
	peer, stop := LearnPeer(g.Conn, g.Pair, g.Node, g.Peer, g.Log)
	defer stop()
	unserve := g.serve()
	defer unserve()
	advised, unadvise := g.advisories()
	defer unadvise()
	check := time.NewTimer(0)
	defer check.Stop()
	var last time.Time // the last check
	mirrored := ""
	warned := false
	for {
		if p := peer(); p != "" && mirrored == "" {
			mirrored = g.mirror(ctx, p, &warned)
		}
		var retry <-chan time.Time // while the mirror is not made
		if mirrored == "" {
			retry = time.After(mirrorRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-retry:
			continue
		case <-advised:
			// At most one check a second: a restore is itself an update,
			// advised, and one that does not hold must not make a loop.
			if wait := time.Until(last.Add(GuardAfterDrift)); wait > 0 {
				check.Reset(wait)
				continue
			}
		case <-check.C:
		}
		last = time.Now()
		next := GuardEvery
		if g.check(ctx, mirrored) {
			next = GuardAfterDrift
		}
		check.Reset(next)
	}
}

// advisories follows JetStream's advisories of streams created, updated
// and deleted on the node's server (the event streams are among them):
// each sends on the returned channel (size 1: one pending check is
// enough). A connection not allowed to read them only loses the shortcut.
func (g *Guard) advisories() (<-chan struct{}, func()) {
	advised := make(chan struct{}, 1)
	sub, err := g.Conn.Subscribe(streamAdvisories, func(*nats.Msg) {
		select {
		case advised <- struct{}{}:
		default:
		}
	})
	if err != nil {
		g.Log.Debug().Err(err).Msg("cannot follow stream advisories; the audit guard polls only")
		return advised, func() {}
	}
	return advised, func() { _ = sub.Unsubscribe() }
}

// mirror makes the mirror of peer's events (MakeMirror: a new mirror waits
// for the peer) and returns peer, or "" when it cannot yet: the first
// failure is a warning (warned), the retries' are debug lines.
func (g *Guard) mirror(ctx context.Context, peer string, warned *bool) string {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := MakeMirror(cctx, g.JS, g.Conn, g.Pair, g.Node, peer, g.Retention)
	if err == nil {
		g.Log.Info().Str("peer", peer).Msg("mirroring the peer's events")
		return peer
	}
	if ctx.Err() != nil {
		return ""
	}
	ev := g.Log.Debug()
	if !*warned {
		ev, *warned = g.Log.Warn(), true
	}
	ev.Err(err).Msg("cannot make the mirror of the peer's events yet")
	return ""
}

// check checks the node's event stream and, when peer is not "", its
// mirror of peer's: a change made behind the node's back (retention
// shrunk, a stream deleted) is restored and reported as critical, in the
// log, as a tandem.audit.changed event and in State. It reports whether
// to check again soon: a change was found, or the check failed.
func (g *Guard) check(ctx context.Context, peer string) (again bool) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	drift, err := Drift(cctx, g.JS, g.Pair, g.Node, peer, g.Retention)
	if ctx.Err() != nil {
		return false
	}
	var rerr error
	if err == nil && len(drift) > 0 {
		rerr = Restore(cctx, g.JS, g.Pair, g.Node, peer, g.Retention)
	}
	g.mu.Lock()
	g.watch.Observe(time.Now(), drift, err, rerr)
	g.mu.Unlock()
	if err != nil || len(drift) == 0 {
		return err != nil
	}
	g.Log.Error().Strs("changes", drift).AnErr("restore_error", rerr).
		Msg("CRITICAL: the audit streams were changed behind the node's back; their configuration is restored, lost events are gone")
	if g.Events != nil {
		e, err := event.New(g.Pair, g.Node, "node", event.AuditChanged, 0, time.Now(),
			event.AuditChange{Severity: "critical", Changes: drift, Restored: rerr == nil})
		if err == nil {
			g.Events.Emit(e)
		}
	}
	return true
}

// State is the guard's verdict now.
func (g *Guard) State() api.AuditState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.watch.State(g.Node, time.Now())
}

// serve answers the audit status requests sent to the pair or to this
// node, until the returned func is called.
func (g *Guard) serve() (stop func()) {
	handle := func(m *nats.Msg) {
		var req api.AuditStatusRequest
		out := reply.OK(api.AuditStatusReply{Pair: g.Pair, State: g.State()})
		if err := api.Decode(m.Data, g.Pair, &req); err != nil {
			g.Log.Warn().Err(err).Str("subject", m.Subject).Msg("audit status request refused")
			out = reply.Fail(err)
		}
		_ = m.Respond(out)
	}
	var subs []*nats.Subscription
	for _, scope := range []string{subject.PairScope, g.Node} {
		sub, err := g.Conn.Subscribe(subject.Admin(g.Pair, scope, api.VerbAuditStatus), handle)
		if err != nil {
			g.Log.Warn().Err(err).Msg("cannot answer audit status requests")
			continue
		}
		subs = append(subs, sub)
	}
	return func() {
		for _, sub := range subs {
			_ = sub.Unsubscribe()
		}
	}
}

// LearnPeer returns the peer's name as far as it is known: configured
// (config.Config.Peer) when it is not "", else the sender of the newest
// valid heartbeat of another node of pair arriving through nc
// (heartbeat.SenderOf). stop ends the listening.
func LearnPeer(nc *nats.Conn, pair, self, configured string, log zerolog.Logger) (peer func() string, stop func()) {
	if configured != "" {
		return func() string { return configured }, func() {}
	}
	var mu sync.Mutex // guards heard
	var heard string
	sub, err := nc.Subscribe(subject.Heartbeats(pair), func(m *nats.Msg) {
		if h, ok := heartbeat.SenderOf(m.Data, m.Subject, pair, self); ok {
			mu.Lock()
			heard = h.Node
			mu.Unlock()
		}
	})
	if err != nil {
		log.Warn().Err(err).Msg("cannot follow heartbeats to learn the peer's name")
		return func() string { return "" }, func() {}
	}
	return func() string {
			mu.Lock()
			defer mu.Unlock()
			return heard
		}, func() {
			_ = sub.Unsubscribe()
		}
}

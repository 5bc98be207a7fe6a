package audit

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// GuardEvery is how often a Guard checks the configuration of the node's
// event stream and mirror.
const GuardEvery = 2 * time.Second

// Guard keeps a node's side of the audit trail (SPEC §7 A1–A3) while the
// node runs: it makes the node's durable mirror of the peer's event stream
// as soon as the peer's name is known (LearnPeer), retrying until it
// succeeds; it checks the node's event stream, and the mirror once made,
// every GuardEvery and restores a configuration changed behind the node's
// back (Drift, Restore), reporting it as critical; and it answers the audit
// status requests of tandem status and tandem check (api.VerbAuditStatus).
//
// Fill the exported fields, then call Run once. Run's goroutine owns the
// mirror; State may be called from any goroutine.
type Guard struct {
	Pair, Node string
	Hosts      map[string]string // the configuration's hosts: the peer's name, if it says
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
	peer, stop := LearnPeer(g.Conn, g.Pair, g.Node, g.Hosts, g.Log)
	defer stop()
	unserve := g.serve()
	defer unserve()
	retry := time.NewTicker(200 * time.Millisecond)
	defer retry.Stop()
	check := time.NewTicker(GuardEvery)
	defer check.Stop()
	mirrored := ""
	for first := true; ; first = false {
		if p := peer(); p != "" && mirrored == "" {
			mirrored = g.mirror(ctx, p, first)
		}
		if first {
			g.check(ctx, mirrored)
		}
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			g.check(ctx, mirrored)
		case <-retry.C:
		}
	}
}

// mirror makes the mirror of peer's events and returns peer, or "" when it
// cannot yet (logged at the first attempt and while ctx lives).
func (g *Guard) mirror(ctx context.Context, peer string, first bool) string {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	err := EnsureMirror(cctx, g.JS, g.Pair, g.Node, peer, g.Retention)
	if err == nil {
		g.Log.Info().Str("peer", peer).Msg("mirroring the peer's events")
		return peer
	}
	if first || ctx.Err() == nil {
		g.Log.Warn().Err(err).Msg("cannot make the mirror of the peer's events yet")
	}
	return ""
}

// check checks the node's event stream and, when peer is not "", its
// mirror of peer's: a change made behind the node's back (retention
// shrunk, a stream deleted) is restored and reported as critical, in the
// log, as a tandem.audit.changed event and in State.
func (g *Guard) check(ctx context.Context, peer string) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	drift, err := Drift(cctx, g.JS, g.Pair, g.Node, peer, g.Retention)
	if ctx.Err() != nil {
		return
	}
	var rerr error
	if err == nil && len(drift) > 0 {
		rerr = Restore(cctx, g.JS, g.Pair, g.Node, peer, g.Retention)
	}
	g.mu.Lock()
	g.watch.Observe(time.Now(), drift, err, rerr)
	g.mu.Unlock()
	if err != nil || len(drift) == 0 {
		return
	}
	g.Log.Error().Strs("changes", drift).AnErr("restore_error", rerr).
		Msg("CRITICAL: the audit streams were changed behind the node's back; their configuration is restored, lost events are gone")
	if g.Events == nil {
		return
	}
	e, err := event.New(g.Pair, g.Node, "node", event.AuditChanged, 0, time.Now(),
		event.AuditChange{Severity: "critical", Changes: drift, Restored: rerr == nil})
	if err == nil {
		g.Events.Emit(e)
	}
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

// LearnPeer returns the peer's name as far as it is known: the other node
// of hosts, else the node whose heartbeats arrive through nc (the subject
// names it; the monitor validates the heartbeats themselves). stop ends
// the listening.
func LearnPeer(nc *nats.Conn, pair, self string, hosts map[string]string, log zerolog.Logger) (peer func() string, stop func()) {
	for name := range hosts {
		if name != self {
			return func() string { return name }, func() {}
		}
	}
	var mu sync.Mutex // guards heard
	var heard string
	prefix := strings.TrimSuffix(subject.Heartbeats(pair), "*")
	sub, err := nc.Subscribe(subject.Heartbeats(pair), func(m *nats.Msg) {
		name := strings.TrimPrefix(m.Subject, prefix)
		if name != self && subject.ValidName(name) {
			mu.Lock()
			heard = name
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

// Package node runs one node of a pair in one process (`tandem node`): the
// embedded NATS server (or a connection to an external one), the node's
// event stream and publisher, and the four services — monitor, replicator,
// notifier, license — with the admin HTTP endpoint. The demo runs two of
// them side by side.
//
// Run owns everything it starts and stops it in reverse order when its
// context ends; Kill stops the node abruptly, as a crash would look to the
// peer (the NATS server's sockets close), for the demo and tests.
package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/buildinfo"
	"github.com/tandem-ha/tandem/pkg/admin"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/monitor"
)

// Node is one running node.
type Node struct {
	cfg  config.Config
	log  zerolog.Logger // handed to the services, which add their "service"
	nlog zerolog.Logger // the node's own lines

	srv     *natsnode.Server // nil with an external NATS
	nc      *nats.Conn
	emitter *bus.Emitter
	admin   *admin.Server
	Monitor *monitor.Service

	// PairStatus, if set before Run, lets the uplink to the fleet hub
	// (hub.url) report the pair's status; UplinkEvery is how often at least
	// (0: every 10 s).
	PairStatus  PairStatusFunc
	UplinkEvery time.Duration

	retention audit.Retention

	// AuditHold is how long the audit streams must stay as restored before
	// the node reports them ok again (audit.DefaultHold when 0). Set it
	// before Run.
	AuditHold time.Duration
	auditMu   sync.Mutex // guards audit
	audit     audit.Watch

	part    string        // "node", or the one service RunService runs
	started chan struct{} // closed once everything runs
	mu      sync.Mutex    // guards killed
	killed  bool
}

// New returns a node for cfg; Run starts it.
func New(cfg config.Config, log zerolog.Logger) *Node {
	return &Node{cfg: cfg, log: log, nlog: log.With().Str("service", "node").Logger(), part: "node", started: make(chan struct{})}
}

// Started is closed once the node runs (its NATS server, stream and services).
func (n *Node) Started() <-chan struct{} { return n.started }

// Server is the embedded NATS server (nil with nats.url).
func (n *Node) Server() *natsnode.Server { return n.srv }

// Run starts the node and runs it until ctx ends or a service fails.
func (n *Node) Run(ctx context.Context) error {
	return n.run(ctx, Services...)
}

// Services are the node's services, in start order.
var Services = []string{"monitor", "replicator", "notifier", "license"}

// RunService runs one of the node's services alone in this process (the
// split layout of deploy/: one process or container per service). It uses
// the node's NATS server at nats.url, run by `tandem nats`.
func (n *Node) RunService(ctx context.Context, name string) error {
	if !slices.Contains(Services, name) {
		return fmt.Errorf("unknown service %q (want one of %s)", name, strings.Join(Services, ", "))
	}
	n.part = name
	if n.cfg.Embedded() {
		return fmt.Errorf("tandem %s runs beside the node's NATS server: set nats.url (the server `tandem nats` runs)", name)
	}
	return n.run(ctx, name)
}

// run starts the node's NATS connection (and embedded server), its event
// stream and publisher, then the services named.
func (n *Node) run(ctx context.Context, services ...string) error {
	parts := services
	if n.cfg.Embedded() {
		parts = append([]string{"nats"}, services...)
	}
	release, err := n.lockParts(parts...)
	if err != nil {
		return err
	}
	defer release()
	js, err := n.open(ctx)
	if err != nil {
		return err
	}
	defer n.stopNATS()
	pub, err := bus.NewPublisher(js, bus.DefaultPublisherConfig(), n.log)
	if err != nil {
		return err
	}
	n.emitter = bus.NewEmitter(pub, n.log, 4096)
	defer n.closeEmitter()
	return n.runServices(ctx, js, services)
}

// open validates the configuration, starts the NATS server or connects to
// nats.url, and makes the node's event stream. Once it succeeded the caller
// owes a stopNATS.
func (n *Node) open(ctx context.Context) (jetstream.JetStream, error) {
	if err := n.cfg.Validate(); err != nil {
		return nil, err
	}
	n.warnInsecure()
	if err := checkDataDir(n.cfg.DataDir); err != nil {
		return nil, err
	}
	if err := n.startNATS(ctx); err != nil {
		return nil, err
	}
	js, err := n.jetStream()
	switch {
	case err == nil && n.part != "node":
		err = n.awaitOrigin(ctx, js)
	case err == nil:
		err = n.ensureOrigin(ctx, js)
	default:
		err = fmt.Errorf("jetstream: %w", err)
	}
	if err != nil {
		n.stopNATS()
		return nil, err
	}
	return js, nil
}

// warnInsecure says, at every start, that protected mode is off
// (insecure: true) and which listeners anyone on the network can reach.
func (n *Node) warnInsecure() {
	if !n.cfg.Insecure {
		return
	}
	ev := n.nlog.Warn().Bool("insecure", true).Strs("open_listeners", n.cfg.InsecureListeners())
	if n.cfg.Secured() {
		ev.Msg("insecure: true is set but has no effect: nats.auth requires credentials")
		return
	}
	ev.Msg("protected mode is off (insecure: true): no credentials are required; run `tandem auth init` and set nats.auth to secure this node")
}

// ensureOrigin makes (or finds) the node's own event stream: a whole node,
// or the NATS part of a split one, does.
func (n *Node) ensureOrigin(ctx context.Context, js jetstream.JetStream) error {
	maxBytes, err := n.cfg.Audit.MaxBytesValue()
	if err != nil {
		return err
	}
	n.retention = audit.Retention{MaxAge: n.cfg.Audit.MaxAge, MaxBytes: maxBytes}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := audit.EnsureOrigin(sctx, js, n.cfg.Pair, n.cfg.Node, n.retention); err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	return nil
}

// awaitOrigin waits, without touching it, until the node's event stream
// exists: a service of a split node leaves making it to `tandem run nats`,
// for one process updating a stream while others create consumers on it
// races inside nats-server. Waiting is logged every dialLog.
func (n *Node) awaitOrigin(ctx context.Context, js jetstream.JetStream) error {
	name := subject.EventStream(n.cfg.Pair, n.cfg.Node)
	var logged time.Time
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.Stream(sctx, name)
		cancel()
		if err == nil {
			return nil
		}
		if time.Since(logged) >= dialLog {
			n.nlog.Warn().Err(err).Str("stream", name).Msg("waiting for the node's event stream (tandem run nats makes it)")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("event stream %s: %w", name, err)
		case <-time.After(dialRetry):
		}
	}
}

// jetStream is the node's JetStream: the embedded server's own domain, or
// the external server's default one (nats.url).
func (n *Node) jetStream() (jetstream.JetStream, error) {
	if n.srv != nil {
		return jetstream.NewWithDomain(n.nc, n.srv.Domain())
	}
	return jetstream.New(n.nc)
}

// reconnectInProcess lets an in-process connection reconnect. The
// connection is in process, yet the server may still close it: as a stale
// connection when the machine is so loaded that the client's goroutines
// miss the server's pings for ping_max × ping_interval (3 s; seen at load
// 30 with the race detector: the node's connection closed, its monitor sent
// no heartbeat again, its uplink wrote no status again). The node's
// connection outlives any such closing; it is closed when the node stops.
// Nothing is buffered while it reconnects: a heartbeat delivered late
// would tell the peer of a past moment; a publish fails and its sender
// retries (events) or sends the next (heartbeats).
func reconnectInProcess(o *nats.Options) error {
	o.AllowReconnect, o.MaxReconnect, o.ReconnectWait = true, -1, 100*time.Millisecond
	o.ReconnectBufSize = -1
	return nil
}

func (n *Node) startNATS(ctx context.Context) error {
	if !n.cfg.Embedded() {
		opts, err := n.clientOptions()
		if err != nil {
			return err
		}
		opts = append(opts, nats.Name("tandem "+n.part+" "+n.cfg.Node), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		nc, err := n.dial(ctx, opts)
		if err != nil {
			return err
		}
		n.nc = nc
		return nil
	}
	srv, err := natsnode.Start(natsnode.FromConfig(n.cfg, n.log.With().Str("service", "nats").Logger()))
	if err != nil {
		return err
	}
	nc, err := srv.Connect("tandem node "+n.cfg.Node, reconnectInProcess)
	if err != nil {
		srv.Shutdown()
		return err
	}
	n.srv, n.nc = srv, nc
	n.nlog.Info().Str("client", srv.ClientURL()).Str("leaf", srv.LeafURL()).Msg("embedded NATS server ready")
	return nil
}

// clientOptions are the credentials and TLS of this process's connection
// to nats.url: a service of the split layout connects as its own user
// (nats.creds, else <nats.creds_dir>/<service>.nk); a whole node with
// nats.url uses nats.creds.
func (n *Node) clientOptions() ([]nats.Option, error) {
	if n.part != "node" {
		return natsnode.ClientOptions(n.cfg, n.part)
	}
	var opts []nats.Option
	if n.cfg.NATS.Creds != "" {
		o, err := natsnode.CredsOption(n.cfg.NATS.Creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if n.cfg.NATS.TLS.CA != "" {
		o, err := natsnode.TLSOption(n.cfg.NATS.TLS.CA)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	return opts, nil
}

// dial connects to nats.url, trying again every dialRetry until ctx ends:
// in the split layout a service may start before its node's NATS server.
func (n *Node) dial(ctx context.Context, opts []nats.Option) (*nats.Conn, error) {
	var logged time.Time
	for {
		nc, err := nats.Connect(n.cfg.NATS.URL, opts...)
		if err == nil {
			return nc, nil
		}
		if !errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("connect to %s: %w", n.cfg.NATS.URL, err)
		}
		if time.Since(logged) >= dialLog {
			n.nlog.Warn().Err(err).Str("url", n.cfg.NATS.URL).Msg("waiting for the node's NATS server")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s: %w", n.cfg.NATS.URL, err)
		case <-time.After(dialRetry):
		}
	}
}

// How often nats.url is dialled again while it does not answer, and logged.
const (
	dialRetry = 250 * time.Millisecond
	dialLog   = 10 * time.Second
)

func (n *Node) stopNATS() {
	n.nc.Close()
	if n.srv != nil {
		n.srv.Shutdown()
	}
}

func (n *Node) closeEmitter() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.emitter.Close(ctx); err != nil && !n.isKilled() {
		n.nlog.Warn().Err(err).Msg("events not flushed at shutdown")
	}
}

type runner interface {
	Run(ctx context.Context) error
	Ready() error
}

// deps is what a service may use of the node.
type deps struct {
	cfg    config.Config
	log    zerolog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream // the node's own JetStream domain
	events *bus.Emitter
	reg    prometheus.Registerer
}

// builders build each service but the monitor. Each lives in its own file
// (replicator.go, notifier.go, license.go), so that the services grow
// without touching each other's wiring.
var builders = map[string]func(deps) (runner, error){
	"replicator": newReplicator,
	"notifier":   newNotifier,
	"license":    newLicense,
}

// runServices runs the named services with the admin endpoint until ctx
// ends or one of them fails. Where the monitor runs, the admin endpoint
// also serves the live dashboard at / (internal/dashboard). A whole node (the monitor among its services)
// also mirrors the peer's event stream; in the split layout `tandem nats`
// does.
func (n *Node) runServices(ctx context.Context, js jetstream.JetStream, names []string) error {
	reg := admin.NewRegistry()
	buildinfo.Register(reg)
	var services []*part
	for _, name := range names {
		var svc runner
		var err error
		if name == "monitor" {
			svc, err = n.newMonitor(reg)
		} else {
			svc, err = builders[name](deps{cfg: n.cfg, log: n.log, nc: n.nc, js: js, events: n.emitter, reg: reg})
		}
		if err != nil {
			return err
		}
		services = append(services, &part{name: name, svc: svc})
	}
	n.admin = admin.New(n.cfg.Admin.Listen, reg, func() error { return readyAll(services) }, n.log)
	if n.cfg.Admin.TLS.Cert != "" {
		if err := n.admin.SetTLS(n.cfg.Admin.TLS.Cert, n.cfg.Admin.TLS.Key); err != nil {
			return err
		}
	}
	if slices.Contains(names, "monitor") {
		dash, closeDash, err := n.newDashboard(js)
		if err != nil {
			return err
		}
		defer closeDash()
		services = append(services, &part{name: "dashboard", svc: dash})
	}
	if err := n.admin.Start(); err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	defer n.closeAdmin()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type ended struct {
		p   *part
		err error
	}
	errs := make(chan ended, len(services))
	for _, p := range services {
		go func() { errs <- ended{p, p.svc.Run(ctx)} }()
	}
	var mirror sync.WaitGroup
	if len(names) == len(Services) {
		mirror.Go(func() { n.guardAudit(ctx, js) })
		mirror.Go(func() { n.runUplink(ctx, js) })
	}
	defer mirror.Wait()
	close(n.started)
	var first error
	for range services {
		e := <-errs
		if e.err == nil || ctx.Err() != nil {
			continue
		}
		if e.p.name != "monitor" && len(services) > 1 {
			// No failure of one part takes the others down: the pair stays
			// available (the monitor fails over, the notifier notifies)
			// while /readyz and the log say what failed.
			n.log.Error().Err(e.err).Str("part", e.p.name).Msg("service stopped; the node's other services go on")
			e.p.fail(e.err)
			continue
		}
		if first == nil {
			first = e.err
			cancel()
		}
	}
	return first
}

// part is one service of the node and, once it has failed, why.
type part struct {
	name string
	svc  runner

	mu     sync.Mutex // guards failed
	failed error
}

func (p *part) fail(err error) {
	p.mu.Lock()
	p.failed = err
	p.mu.Unlock()
}

func (p *part) ready() error {
	p.mu.Lock()
	failed := p.failed
	p.mu.Unlock()
	if failed != nil {
		return fmt.Errorf("%s stopped: %w", p.name, failed)
	}
	return p.svc.Ready()
}

// newMonitor builds the monitor. Its view of the leaf link comes from the
// embedded server, or, in the split layout, from what `tandem nats` relays.
func (n *Node) newMonitor(reg prometheus.Registerer) (*monitor.Service, error) {
	var link monitor.Link
	if n.srv != nil {
		link = monitor.LeafLink(n.srv, n.cfg.NATS.Peer)
	} else {
		f, err := natsnode.FollowLink(n.nc, n.cfg.Pair, n.cfg.Node, nil) // the monitor reports bad ones
		if err != nil {
			return nil, err
		}
		link = monitor.RelayedLink(f)
	}
	mon, err := monitor.New(monitor.Options{Config: n.cfg, Conn: n.nc, Link: link, Events: n.emitter, Log: n.log, Registry: reg,
		Apart: n.srv == nil})
	if err != nil {
		return nil, err
	}
	n.Monitor = mon
	return mon, nil
}

func (n *Node) closeAdmin() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = n.admin.Close(ctx)
}

// AdminAddr is the address of the admin HTTP endpoint.
func (n *Node) AdminAddr() string {
	if n.admin == nil {
		return ""
	}
	return n.admin.Addr()
}

func readyAll(services []*part) error {
	var errs []error
	for _, p := range services {
		if err := p.ready(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Kill stops the node's NATS server at once, as a crash looks to the peer:
// its sockets close. The caller still ends Run's context to stop the rest.
func (n *Node) Kill() {
	n.mu.Lock()
	n.killed = true
	n.mu.Unlock()
	if n.srv != nil {
		n.srv.Shutdown()
	}
}

func (n *Node) isKilled() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.killed
}

// guardAudit makes this node's durable mirror of the peer's event stream as
// soon as the peer's name is known (from hosts, or from the first heartbeat
// of the peer's monitor), retrying until it succeeds, and guards the
// node's event stream, and the mirror once made, every auditGuardEvery
// until ctx ends (checkAudit). It answers the audit status requests of
// tandem status and tandem check meanwhile.
func (n *Node) guardAudit(ctx context.Context, js jetstream.JetStream) {
	n.auditMu.Lock()
	n.audit.Hold = n.AuditHold
	n.auditMu.Unlock()
	peer, stop := n.learnPeer()
	defer stop()
	unserve := n.serveAudit()
	defer unserve()
	retry := time.NewTicker(200 * time.Millisecond)
	defer retry.Stop()
	check := time.NewTicker(auditGuardEvery)
	defer check.Stop()
	mirrored := ""
	for first := true; ; first = false {
		if p := peer(); p != "" && mirrored == "" {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := audit.EnsureMirror(cctx, js, n.cfg.Pair, n.cfg.Node, p, n.retention)
			cancel()
			if err == nil {
				n.nlog.Info().Str("peer", p).Msg("mirroring the peer's events")
				mirrored = p
			} else if first || ctx.Err() == nil {
				n.nlog.Warn().Err(err).Msg("cannot make the mirror of the peer's events yet")
			}
		}
		if first {
			n.checkAudit(ctx, js, mirrored)
		}
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			n.checkAudit(ctx, js, mirrored)
		case <-retry.C:
		}
	}
}

// learnPeer returns the peer's name as far as it is known: the other node
// of hosts, else the node whose heartbeats arrive (the subject names it; the
// monitor validates the heartbeats themselves).
func (n *Node) learnPeer() (peer func() string, stop func()) {
	for name := range n.cfg.Hosts {
		if name != n.cfg.Node {
			return func() string { return name }, func() {}
		}
	}
	var mu sync.Mutex
	var heard string
	prefix := strings.TrimSuffix(subject.Heartbeats(n.cfg.Pair), "*")
	sub, err := n.nc.Subscribe(subject.Heartbeats(n.cfg.Pair), func(m *nats.Msg) {
		name := strings.TrimPrefix(m.Subject, prefix)
		if name != n.cfg.Node && subject.ValidName(name) {
			mu.Lock()
			heard = name
			mu.Unlock()
		}
	})
	if err != nil {
		n.nlog.Warn().Err(err).Msg("cannot follow heartbeats to learn the peer's name")
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

// auditGuardEvery is how often the server part checks the configuration of
// the node's event stream and mirror.
const auditGuardEvery = 2 * time.Second

// checkAudit checks the node's event stream and, when peer is not "", its
// mirror of peer's (SPEC §7 A3): a change made behind the node's back
// (retention shrunk, a stream deleted) is restored and reported as
// critical, in the log, as a tandem.audit.changed event and in the audit
// state that tandem status and tandem check show (audit.Watch).
func (n *Node) checkAudit(ctx context.Context, js jetstream.JetStream, peer string) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	drift, err := audit.Drift(cctx, js, n.cfg.Pair, n.cfg.Node, peer, n.retention)
	if ctx.Err() != nil {
		return
	}
	var rerr error
	if err == nil && len(drift) > 0 {
		rerr = audit.Restore(cctx, js, n.cfg.Pair, n.cfg.Node, peer, n.retention)
	}
	n.auditMu.Lock()
	n.audit.Observe(time.Now(), drift, err, rerr)
	n.auditMu.Unlock()
	if err != nil || len(drift) == 0 {
		return
	}
	n.nlog.Error().Strs("changes", drift).AnErr("restore_error", rerr).
		Msg("CRITICAL: the audit streams were changed behind the node's back; their configuration is restored, lost events are gone")
	if n.emitter == nil {
		return
	}
	e, err := event.New(n.cfg.Pair, n.cfg.Node, "node", event.AuditChanged, 0, time.Now(),
		map[string]any{"severity": "critical", "changes": drift, "restored": rerr == nil})
	if err == nil {
		n.emitter.Emit(e)
	}
}

// AuditState is the node's audit guard's verdict now.
func (n *Node) AuditState() api.AuditState {
	n.auditMu.Lock()
	defer n.auditMu.Unlock()
	return n.audit.State(n.cfg.Node, time.Now())
}

// serveAudit answers the audit status requests (api.VerbAuditStatus) sent
// to the pair or to this node, until the returned func is called.
func (n *Node) serveAudit() (stop func()) {
	handle := func(m *nats.Msg) {
		var req api.AuditStatusRequest
		out := reply.OK(api.AuditStatusReply{Pair: n.cfg.Pair, State: n.AuditState()})
		if err := api.Decode(m.Data, n.cfg.Pair, &req); err != nil {
			n.nlog.Warn().Err(err).Str("subject", m.Subject).Msg("audit status request refused")
			out = reply.Fail(err)
		}
		_ = m.Respond(out)
	}
	var subs []*nats.Subscription
	for _, scope := range []string{subject.PairScope, n.cfg.Node} {
		sub, err := n.nc.Subscribe(subject.Admin(n.cfg.Pair, scope, api.VerbAuditStatus), handle)
		if err != nil {
			n.nlog.Warn().Err(err).Msg("cannot answer audit status requests")
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

// checkDataDir makes data_dir if needed and checks that this process may
// write in it, so that a wrong owner or mode is said plainly at start
// rather than by whichever part first fails to write.
func checkDataDir(dir string) error {
	fail := func(err error) error {
		return fmt.Errorf("data_dir %s: %w (this process runs as uid %d: fix the directory's owner or mode, or set data_dir)", dir, err, os.Getuid())
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fail(err)
	}
	f.Close()
	return os.Remove(f.Name())
}

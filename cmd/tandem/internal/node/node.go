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
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/svcrun"
	"github.com/tandem-ha/tandem/services/license"
	"github.com/tandem-ha/tandem/services/monitor"
	"github.com/tandem-ha/tandem/services/notifier"
	"github.com/tandem-ha/tandem/services/replicator"
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

	started chan struct{} // closed once everything runs
	mu      sync.Mutex    // guards killed
	killed  bool
}

// New returns a node for cfg; Run starts it.
func New(cfg config.Config, log zerolog.Logger) *Node {
	return &Node{cfg: cfg, log: log, nlog: log.With().Str("service", "node").Logger(), started: make(chan struct{})}
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

// Parts are what `tandem run` runs alone beside the node's NATS server
// (the split layout of deploy/, one process or container each): each
// service, and the dashboard.
var Parts = append(slices.Clone(Services), Dashboard)

// RunService runs one part of the node alone in this process (the split
// layout of deploy/: one process or container per part) with svcrun.Run,
// as each service's own command does. It uses the node's NATS server at
// nats.url, run by `tandem run nats`.
func (n *Node) RunService(ctx context.Context, name string) error {
	p, ok := parts[name]
	if !ok {
		return fmt.Errorf("unknown service %q (want one of %s)", name, strings.Join(Parts, ", "))
	}
	build := p.Build
	p.Build = func(d svcrun.Deps) (svcrun.Service, error) {
		buildinfo.Register(d.Registry)
		return build(d)
	}
	p.Started = func() { close(n.started) }
	return svcrun.RunPart(ctx, n.cfg, p, n.log)
}

// start locks parts of the data directory, connects to the node's NATS
// server (starting it when embedded) and opens the node's event emitter
// with room for buffer events; stop undoes it all, in reverse.
func (n *Node) start(ctx context.Context, buffer int, parts ...string) (js jetstream.JetStream, stop func(), err error) {
	release, err := svcrun.LockParts(n.cfg.DataDir, parts...)
	if err != nil {
		return nil, nil, err
	}
	if js, err = n.open(ctx); err != nil {
		release()
		return nil, nil, err
	}
	pub, err := bus.NewPublisher(js, bus.DefaultPublisherConfig(), n.log)
	if err != nil {
		n.stopNATS()
		release()
		return nil, nil, err
	}
	n.emitter = bus.NewEmitter(pub, n.log, buffer)
	return js, func() {
		n.closeEmitter()
		n.stopNATS()
		release()
	}, nil
}

// run starts the node's NATS connection (and embedded server), its event
// stream and publisher, then the services named.
func (n *Node) run(ctx context.Context, services ...string) error {
	parts := services
	if n.cfg.Embedded() {
		parts = append([]string{"nats"}, services...)
	}
	js, stop, err := n.start(ctx, 4096, parts...)
	if err != nil {
		return err
	}
	defer stop()
	return n.runServices(ctx, js, services)
}

// open validates the configuration, starts the NATS server or connects to
// nats.url, and makes the node's event stream. Once it succeeded the caller
// owes a stopNATS.
func (n *Node) open(ctx context.Context) (jetstream.JetStream, error) {
	if err := n.cfg.Validate(); err != nil {
		return nil, err
	}
	svcrun.WarnInsecure(n.cfg, n.log)
	if err := svcrun.CheckDataDir(n.cfg.DataDir); err != nil {
		return nil, err
	}
	if err := n.startNATS(ctx); err != nil {
		return nil, err
	}
	js, err := n.jetStream()
	if err == nil {
		err = n.ensureOrigin(ctx, js)
	} else {
		err = fmt.Errorf("jetstream: %w", err)
	}
	if err != nil {
		n.stopNATS()
		return nil, err
	}
	return js, nil
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
		opts = append(opts, nats.Name("tandem node "+n.cfg.Node), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
		nc, err := svcrun.Dial(ctx, n.cfg.NATS.URL, opts, n.nlog)
		if err != nil {
			return err
		}
		n.nc = nc
		return nil
	}
	if err := checkTLSFiles(n.cfg.NATS.TLS); err != nil {
		return err
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

// clientOptions are the credentials and TLS of a whole node's connection
// to nats.url: nats.creds. (A part of the split layout connects as its own
// user: svcrun.)
func (n *Node) clientOptions() ([]nats.Option, error) {
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

// parts are what RunService runs: each service as its own command
// (services/<name>/cmd/tandem-<name>) runs it — the monitor apart from the
// node's server, following what it relays of the leaf link —, and the
// dashboard as the admin user, whose rights it needs. A whole node builds
// its services but the monitor with the same Build.
var parts = map[string]svcrun.Part{
	"monitor":    {Name: "monitor", Build: monitor.Build},
	"replicator": {Name: "replicator", Build: replicator.Build},
	"notifier":   {Name: "notifier", Build: notifier.Build},
	"license":    {Name: "license", Build: license.Build},
	Dashboard:    {Name: Dashboard, User: config.RoleAdmin, Build: buildDashboard},
}

// runServices runs the whole node's services with the admin endpoint until
// ctx ends or the monitor fails. The admin endpoint also serves the live
// dashboard at / (internal/dashboard), and the node mirrors the peer's
// event stream; in the split layout `tandem run dashboard` and `tandem run
// nats` do.
func (n *Node) runServices(ctx context.Context, js jetstream.JetStream, names []string) error {
	reg := admin.NewRegistry()
	buildinfo.Register(reg)
	var services []*part
	for _, name := range names {
		var svc svcrun.Service
		var err error
		if name == "monitor" {
			svc, err = n.newMonitor(reg)
		} else {
			svc, err = parts[name].Build(svcrun.Deps{Config: n.cfg, Log: n.log, Conn: n.nc, JS: js, Events: n.emitter, Registry: reg})
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
	dash, closeDash, err := n.newDashboard(js)
	if err != nil {
		return err
	}
	defer closeDash()
	services = append(services, &part{name: Dashboard, svc: dash})
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
	mirror.Go(func() { n.guardAudit(ctx, js) })
	mirror.Go(func() { n.runUplink(ctx, js) })
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
	svc  svcrun.Service

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
	var mon *monitor.Service
	var err error
	if n.srv != nil {
		if n.cfg.NATS.Peer == "" {
			// The standby needs nats.peer to dial; the master only probes it.
			n.log.Warn().Msg("nats.peer is not set: when the link closes this master cannot probe the standby, so a crashed " +
				"active standby is taken over after a heartbeat interval (and a witness lease) instead of at once; " +
				"set nats.peer to the standby's leaf URL")
		}
		mon, err = monitor.New(monitor.Options{Config: n.cfg, Conn: n.nc, Link: monitor.LeafLink(n.srv, n.cfg.NATS.Peer),
			Events: n.emitter, Log: n.log, Registry: reg})
	} else {
		mon, err = monitor.BuildApart(svcrun.Deps{Config: n.cfg, Log: n.log, Conn: n.nc, Events: n.emitter, Registry: reg})
	}
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

// guardAudit keeps the node's side of the audit trail until ctx ends:
// the mirror of the peer's events, the check of both streams, the answers
// to audit status requests (audit.Guard).
func (n *Node) guardAudit(ctx context.Context, js jetstream.JetStream) {
	g := &audit.Guard{Pair: n.cfg.Pair, Node: n.cfg.Node, Peer: n.cfg.Peer(), Retention: n.retention,
		Hold: n.AuditHold, Conn: n.nc, JS: js, Log: n.nlog}
	if n.emitter != nil {
		g.Events = n.emitter
	}
	g.Run(ctx)
}

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
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/admin"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
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

	retention audit.Retention

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
	if err := n.cfg.Validate(); err != nil {
		return err
	}
	if err := n.startNATS(); err != nil {
		return err
	}
	defer n.stopNATS()
	js, err := n.jetStream()
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	maxBytes, err := n.cfg.Audit.MaxBytesValue()
	if err != nil {
		return err
	}
	n.retention = audit.Retention{MaxAge: n.cfg.Audit.MaxAge, MaxBytes: maxBytes}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = audit.EnsureOrigin(sctx, js, n.cfg.Pair, n.cfg.Node, n.retention)
	cancel()
	if err != nil {
		return fmt.Errorf("event stream: %w", err)
	}
	pub, err := bus.NewPublisher(js, bus.DefaultPublisherConfig(), n.log)
	if err != nil {
		return err
	}
	n.emitter = bus.NewEmitter(pub, n.log, 4096)
	defer n.closeEmitter()
	return n.runServices(ctx, js)
}

// jetStream is the node's JetStream: the embedded server's own domain, or
// the external server's default one (nats.url).
func (n *Node) jetStream() (jetstream.JetStream, error) {
	if n.srv != nil {
		return jetstream.NewWithDomain(n.nc, n.srv.Domain())
	}
	return jetstream.New(n.nc)
}

func (n *Node) startNATS() error {
	if !n.cfg.Embedded() {
		opts := []nats.Option{nats.Name("tandem node " + n.cfg.Node), nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}
		if n.cfg.NATS.Creds != "" {
			opts = append(opts, nats.UserCredentials(n.cfg.NATS.Creds))
		}
		nc, err := nats.Connect(n.cfg.NATS.URL, opts...)
		if err != nil {
			return fmt.Errorf("connect to %s: %w", n.cfg.NATS.URL, err)
		}
		n.nc = nc
		return nil
	}
	srv, err := natsnode.Start(natsnode.FromConfig(n.cfg, n.log.With().Str("service", "nats").Logger()))
	if err != nil {
		return err
	}
	nc, err := srv.Connect("tandem node " + n.cfg.Node)
	if err != nil {
		srv.Shutdown()
		return err
	}
	n.srv, n.nc = srv, nc
	n.nlog.Info().Str("client", srv.ClientURL()).Str("leaf", srv.LeafURL()).Msg("embedded NATS server ready")
	return nil
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

type runner interface {
	Run(ctx context.Context) error
	Ready() error
}

// deps is what a service may use of the node. Each service is built by its
// own function (replicator.go, notifier.go, license.go), so that the
// services grow without touching each other's wiring.
type deps struct {
	cfg    config.Config
	log    zerolog.Logger
	nc     *nats.Conn
	js     jetstream.JetStream // the node's own JetStream domain
	events *bus.Emitter
	reg    prometheus.Registerer
}

// runServices runs the monitor and the other services with the admin
// endpoint until ctx ends or one of them fails.
func (n *Node) runServices(ctx context.Context, js jetstream.JetStream) error {
	reg := admin.NewRegistry()
	var link monitor.Link
	if n.srv != nil {
		link = monitor.LeafLink(n.srv, n.cfg.NATS.Peer)
	}
	mon, err := monitor.New(monitor.Options{Config: n.cfg, Conn: n.nc, Link: link, Events: n.emitter, Log: n.log, Registry: reg})
	if err != nil {
		return err
	}
	n.Monitor = mon
	services := []runner{mon}
	for _, build := range []func(deps) (runner, error){newReplicator, newNotifier, newLicense} {
		svc, err := build(deps{cfg: n.cfg, log: n.log, nc: n.nc, js: js, events: n.emitter, reg: reg})
		if err != nil {
			return err
		}
		services = append(services, svc)
	}
	n.admin = admin.New(n.cfg.Admin.Listen, reg, func() error { return readyAll(services) }, n.log)
	if err := n.admin.Start(); err != nil {
		return fmt.Errorf("admin endpoint: %w", err)
	}
	defer n.closeAdmin()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(services))
	for _, s := range services {
		go func() { errs <- s.Run(ctx) }()
	}
	var mirror sync.WaitGroup
	mirror.Go(func() { n.mirrorPeer(ctx, js) })
	defer mirror.Wait()
	close(n.started)
	var first error
	for range services {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
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

func readyAll(services []runner) error {
	var errs []error
	for _, s := range services {
		if err := s.Ready(); err != nil {
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

// mirrorPeer makes this node's durable mirror of the peer's event stream as
// soon as the peer's name is known: from hosts, or from the first heartbeat
// the monitor hears. It retries until it succeeds or ctx ends.
func (n *Node) mirrorPeer(ctx context.Context, js jetstream.JetStream) {
	tk := time.NewTicker(200 * time.Millisecond)
	defer tk.Stop()
	for {
		if peer := n.peerName(); peer != "" {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := audit.EnsureMirror(cctx, js, n.cfg.Pair, n.cfg.Node, peer, n.retention)
			cancel()
			if err == nil {
				n.nlog.Info().Str("peer", peer).Msg("mirroring the peer's events")
				return
			}
			n.nlog.Warn().Err(err).Msg("cannot make the mirror of the peer's events yet")
		}
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
	}
}

func (n *Node) peerName() string {
	for name := range n.cfg.Hosts {
		if name != n.cfg.Node {
			return name
		}
	}
	return n.Monitor.Status().Peer
}

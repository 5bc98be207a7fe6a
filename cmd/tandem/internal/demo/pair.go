package demo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/services/monitor"
)

// Node names of the demo pair.
const (
	master  = "a"
	standby = "b"
)

// stopTimeout bounds the wait for a node's Run to return once its context
// has ended.
const stopTimeout = 15 * time.Second

// slot is one node of the pair across its lives: a restart makes a new
// node.Node with the same configuration (same data dir, same ports). It is
// owned by the demo's loop goroutine.
type slot struct {
	name string
	cfg  config.Config
	log  zerolog.Logger

	n       *node.Node
	cancel  context.CancelFunc
	done    chan error // Run's result, size 1; nil once received
	up      bool       // started, and neither killed nor stopped
	killed  bool       // Kill was called on the current life
	exitErr error      // what the current life's Run returned

	events    *eventReader // the current life's, while it is up
	nextEvent uint64       // the next sequence of its event stream, across lives
}

// nodeConfig is the configuration of one demo node. Ports are random
// ("-1") until the first start has fixed them (fixPorts).
func nodeConfig(o Options, dir, name string, role config.Role, peer string) config.Config {
	c := config.Default()
	c.Pair, c.Node, c.Role = o.Pair, name, role
	c.DataDir = filepath.Join(dir, name)
	c.NATS.Listen = "127.0.0.1:-1"
	c.NATS.LeafListen = "127.0.0.1:-1"
	c.NATS.Peer = peer
	c.Heart.Interval, c.Heart.Timeout = o.Heartbeat, o.Timeout
	c.Failback = config.FailbackManual
	c.Admin.Listen = "127.0.0.1:0"
	c.Notifier.PushListen = "127.0.0.1:0"
	// The monitor learns its peer's name from hosts.
	c.Hosts = map[string]string{master: master + ".demo.invalid", standby: standby + ".demo.invalid"}
	return c
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func newSlot(cfg config.Config, logs zerolog.Logger) *slot {
	return &slot{
		name: cfg.Node,
		cfg:  cfg,
		log:  logging.For(logs, "node", cfg.Pair, cfg.Node, string(cfg.Role)),

		nextEvent: 1,
	}
}

// launch starts a new life of the node in its own goroutine; it is up once
// n.Started() is closed (see started).
func (s *slot) launch(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	n := node.New(s.cfg, s.log)
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	s.n, s.cancel, s.done = n, cancel, done
	s.up, s.killed, s.exitErr = false, false, nil
}

// started records that the current life runs: it fixes the ports the
// server chose, so that a restart reuses them.
func (s *slot) started() error {
	srv := s.n.Server()
	if err := s.fixPorts(srv.ClientURL(), srv.LeafURL()); err != nil {
		return err
	}
	s.up = true
	return nil
}

func (s *slot) fixPorts(client, leaf string) error {
	c, err := hostPort(client)
	if err != nil {
		return err
	}
	l, err := hostPort(leaf)
	if err != nil {
		return err
	}
	s.cfg.NATS.Listen, s.cfg.NATS.LeafListen = c, l
	return nil
}

// waitStarted waits until the current life is up, ends, or ctx ends.
func (s *slot) waitStarted(ctx context.Context) error {
	select {
	case <-s.n.Started():
		return s.started()
	case err := <-s.done:
		s.done = nil
		return fmt.Errorf("node %s did not start: %w", s.name, orStopped(err))
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startedCh is closed once the current life is up; nil when there is
// nothing to wait for.
func (s *slot) startedCh() <-chan struct{} {
	if s.n == nil || s.up || s.killed || s.done == nil {
		return nil
	}
	return s.n.Started()
}

// kill stops the current life abruptly (its NATS server's sockets close, as
// in a crash), then ends its context to stop the rest.
func (s *slot) kill() {
	s.closeEvents()
	s.killed, s.up = true, false
	s.n.Kill()
	s.cancel()
}

// exited records the current life's end.
func (s *slot) exited(err error) {
	s.done, s.up, s.exitErr = nil, false, err
	s.closeEvents()
}

// wait waits for the current life's Run to return.
func (s *slot) wait() error {
	if s.done == nil {
		return s.exitErr
	}
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case err := <-s.done:
		s.exited(err)
		return err
	case <-t.C:
		return fmt.Errorf("node %s did not stop within %v", s.name, stopTimeout)
	}
}

func (s *slot) closeEvents() {
	if s.events != nil {
		s.events.close()
		s.events = nil
	}
}

// monitor is the current life's monitor, nil unless the node is up.
func (s *slot) monitor() *monitor.Service {
	if !s.up {
		return nil
	}
	return s.n.Monitor
}

// reply is the node's status reply, false unless the node is up.
func (s *slot) reply() (api.StatusReply, bool) {
	m := s.monitor()
	if m == nil {
		return api.StatusReply{}, false
	}
	return m.StatusReply(), true
}

// clientURL is the node's NATS client URL (its first start fixed the port).
func (s *slot) clientURL() string { return "nats://" + s.cfg.NATS.Listen }

// leafURL is the node's leafnode URL.
func (s *slot) leafURL() string { return "nats-leaf://" + s.cfg.NATS.LeafListen }

func hostPort(u string) (string, error) {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return "", fmt.Errorf("no host:port in URL %q", u)
	}
	return pu.Host, nil
}

func orStopped(err error) error {
	if err == nil {
		return errors.New("it stopped")
	}
	return err
}

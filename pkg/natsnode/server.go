package natsnode

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// readyTimeout bounds how long Start waits for the listeners.
const readyTimeout = 10 * time.Second

// Server is a node's running NATS server.
type Server struct {
	opts      Options
	ns        *server.Server
	domain    string
	clientURL string
	leafURL   string
	log       zerolog.Logger

	sys    *nats.Conn     // in-process SYS client: advisories for the watcher
	hub    nkeys.KeyPair  // the HUB account's in-process user, nil without an uplink
	linked atomic.Bool    // written by the watcher only
	events chan LinkEvent // sent to and closed by the watcher only
	kick   chan struct{}  // size 1: an advisory asks the watcher to look
	quit   chan struct{}  // closed by Shutdown
	done   chan struct{}  // closed when the watcher has returned
	stop   sync.Once
}

// Start starts the server described by o and returns once it accepts
// connections and watches its leaf link. It does not wait for the link.
func Start(o Options) (*Server, error) {
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("natsnode options: %w", err)
	}
	id, err := newIdentities()
	if err != nil {
		return nil, err
	}
	if o.Solicit && o.LeafSeedFile != "" {
		if id.leafSeed, err = readLeafSeed(o.LeafSeedFile); err != nil {
			return nil, err
		}
	}
	if len(o.HubURLs) > 0 && o.HubSeedFile != "" {
		if id.hubSeed, err = readLeafSeed(o.HubSeedFile); err != nil {
			return nil, fmt.Errorf("hub.creds: %w", err)
		}
	}
	sopts := &server.Options{}
	if err := sopts.ProcessConfigString(serverConfig(o, id)); err != nil {
		return nil, fmt.Errorf("nats config: %w", err)
	}
	sopts.NoSigs = true
	ns, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("new nats server: %w", err)
	}
	fatal := make(chan string, 1)
	ns.SetLoggerV2(natsLogger{l: o.Logger, fatal: fatal}, enabled(o.Logger, zerolog.DebugLevel),
		enabled(o.Logger, zerolog.TraceLevel), false)
	s := newServer(ns, o)
	if len(o.HubURLs) > 0 {
		s.hub = id.hub
	}
	if err := s.start(sopts, id, fatal); err != nil {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, err
	}
	return s, nil
}

func newServer(ns *server.Server, o Options) *Server {
	return &Server{
		opts:   o,
		ns:     ns,
		domain: subject.ServerName(o.Pair, o.Node),
		log:    o.Logger,
		events: make(chan LinkEvent, eventBuffer),
		kick:   make(chan struct{}, 1),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
}

// start runs the server, records its URLs and starts the watcher.
func (s *Server) start(sopts *server.Options, id identities, fatal <-chan string) error {
	go s.ns.Start()
	if err := s.waitReady(fatal); err != nil {
		return err
	}
	addr, ok := s.ns.Addr().(*net.TCPAddr)
	if !ok {
		return errors.New("nats server has no client listener")
	}
	s.clientURL = "nats://" + reachable(sopts.Host, addr.Port)
	if sopts.LeafNode.Port > 0 { // the actual port once ready
		s.leafURL = "nats-leaf://" + reachable(sopts.LeafNode.Host, sopts.LeafNode.Port)
	}
	return s.startWatcher(id)
}

// waitReady waits until the server accepts connections, and fails at once
// with the server's own words when it cannot start (a port in use).
func (s *Server) waitReady(fatal <-chan string) error {
	return awaitReady(s.ns, "nats server "+s.domain, fatal)
}

// awaitReady waits until ns accepts connections, or fails at once with the
// server's own words (fatal) or after readyTimeout.
func awaitReady(ns *server.Server, what string, fatal <-chan string) error {
	deadline := time.Now().Add(readyTimeout)
	for !ns.ReadyForConnections(50 * time.Millisecond) {
		select {
		case msg := <-fatal:
			return fmt.Errorf("%s cannot start: %s", what, msg)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v", what, readyTimeout)
		}
	}
	return nil
}

// reachable is host:port with an unspecified host replaced by loopback.
func reachable(host string, port int) string {
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ClientURL is the client URL, nats://host:port (loopback when the server
// listens on every address).
func (s *Server) ClientURL() string { return s.clientURL }

// LeafURL is the leafnode URL, nats-leaf://host:port, or "" without a leaf
// listener.
func (s *Server) LeafURL() string { return s.leafURL }

// Domain is the server's JetStream domain (and server name).
func (s *Server) Domain() string { return s.domain }

// NATS is the underlying server.
func (s *Server) NATS() *server.Server { return s.ns }

// Connect opens an in-process client connection named name in account
// TANDEM (as the default identity; pass nats.UserInfo or similar in opts for
// another user). opts come after the defaults and may override them.
func (s *Server) Connect(name string, opts ...nats.Option) (*nats.Conn, error) {
	// An in-process server that went away does not come back under this
	// connection; errors go to the log, not to stderr (nats.go's default).
	// The handshake gets 10 s, not nats.go's 2 s: an in-process connect
	// timed out ("read pipe: i/o timeout") at load 30 with the race detector.
	all := append([]nats.Option{nats.Name(name), nats.InProcessServer(s.ns), nats.NoReconnect(), nats.Timeout(10 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			ev := s.log.Debug().Err(err).Str("client", name)
			if sub != nil {
				ev = ev.Str("subject", sub.Subject)
			}
			ev.Msg("nats client error")
		})}, opts...)
	nc, err := nats.Connect("", all...)
	if err != nil {
		return nil, fmt.Errorf("connect %q in process to %s: %w", name, s.domain, err)
	}
	return nc, nil
}

// ConnectHub opens an in-process client connection in account HubAccount,
// whose traffic goes to the fleet hub over the uplink; an error without
// hub.url. The connection reconnects never: it lives as long as the server.
func (s *Server) ConnectHub(name string, opts ...nats.Option) (*nats.Conn, error) {
	if s.hub == nil {
		return nil, errors.New("no uplink to a hub (hub.url is not set)")
	}
	pub, err := s.hub.PublicKey()
	if err != nil {
		return nil, err
	}
	return s.Connect(name, append([]nats.Option{nats.Nkey(pub, s.hub.Sign)}, opts...)...)
}

// Shutdown stops the server at once: every socket closes, so the peer sees
// what it would see if this process were killed. It stops the watcher first
// (no event reports this server's own shutdown) and closes LinkEvents. It is
// idempotent and returns when the server is down.
func (s *Server) Shutdown() {
	s.stop.Do(func() {
		close(s.quit)
		<-s.done
		s.sys.Close()
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
	})
}

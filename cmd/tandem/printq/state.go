package main

// The node's state: key <pair> of bucket subject.StateBucket in the node's
// own JetStream, an api.Notification written by the node's notifier.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	tconfig "github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Timing of the watcher.
const (
	retryEvery     = 500 * time.Millisecond // a failed lookup or watch is tried again this often
	logEvery       = 10 * time.Second       // at most one log line per this while it keeps failing
	requestTimeout = 5 * time.Second        // bound of each JetStream request
)

// view is what printq knows of the pair's state.
type view struct {
	active string // the active node; "" while unknown
	epoch  uint64
}

var errNotActive = errors.New("node is not active")

// state is the latest view, written by the watcher only.
type state struct {
	mu sync.RWMutex // guards v; held for reading across an insert (whileActive)
	v  view
}

func (s *state) get() view {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.v
}

// set replaces the view, once the inserts in progress have ended, and
// returns the previous one.
func (s *state) set(v view) view {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.v
	s.v = v
	return old
}

// whileActive runs fn if node is active, and the view cannot change until
// fn returns. When node is not active it returns errNotActive and the view.
func (s *state) whileActive(node string, fn func() error) (view, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.v.active != node {
		return s.v, errNotActive
	}
	return s.v, fn()
}

// watcher keeps a state in step with key <pair> of the node's state bucket.
// Its fields belong to the goroutine of run, but for kick.
type watcher struct {
	pair, node string
	state      *state
	log        zerolog.Logger
	kick       chan struct{} // size 1: the connection is back, watch anew
	logged     time.Time     // when a failure was last logged; zero after a success
}

func newWatcher(pair, node string, st *state, log zerolog.Logger) *watcher {
	return &watcher{pair: pair, node: node, state: st, log: log, kick: make(chan struct{}, 1)}
}

// connect connects to the node's NATS server, retrying for ever (the first
// connection too), and kicks w at every reconnection: the server may have
// restarted, and with it lost the watch's consumer.
//
// While the connection is down printq does not serve: it cannot see the
// pair any more, and the other node may be taking over right now (in the
// split layout the node's NATS server can die alone; the peer then sees this
// node as gone). An application that serves only while it can see that its
// node is active never serves beside the other node for longer than it takes
// to notice its own connection is gone. When the connection comes back the
// watch reads the current value first.
func connect(cfg config, w *watcher, log zerolog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{nats.Name("printq " + cfg.node), nats.MaxReconnects(-1),
		nats.CustomInboxPrefix(natsnode.InboxPrefix(tconfig.RolePrintq)),
		nats.RetryOnFailedConnect(true), nats.ReconnectWait(retryEvery),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if !nc.IsClosed() { // Close calls this too
				w.state.set(view{})
				log.Warn().Err(err).Msg("nats disconnected: not serving /jobs until the node's state is read again")
			}
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			log.Info().Msg("nats reconnected")
			select {
			case w.kick <- struct{}{}:
			default:
			}
		}),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Debug().Err(err).Msg("nats error")
		}),
	}
	if cfg.creds != "" {
		o, err := natsnode.CredsOption(cfg.creds)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	if cfg.tlsCA != "" {
		o, err := natsnode.TLSOption(cfg.tlsCA)
		if err != nil {
			return nil, err
		}
		opts = append(opts, o)
	}
	nc, err := nats.Connect(cfg.nats, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", cfg.nats, err)
	}
	return nc, nil
}

// run follows the state until ctx ends. The bucket may not exist yet (the
// notifier creates it), and a watch ends when its subscription does: run
// starts over every retryEvery, for ever, and at once after a kick.
func (w *watcher) run(ctx context.Context, nc *nats.Conn) {
	js, err := jetstream.New(nc)
	if err != nil { // only with bad options
		w.log.Error().Err(err).Msg("jetstream")
		return
	}
	for {
		select {
		case <-w.kick: // a watch started now sees the connection as it is
		default:
		}
		err := w.follow(ctx, nc, js)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			continue
		}
		if now := time.Now(); now.Sub(w.logged) >= logEvery {
			w.logged = now
			w.log.Warn().Err(err).Msgf("cannot watch the node's state; retrying every %v", retryEvery)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(retryEvery):
		}
	}
}

// follow watches key <pair> and applies its values. It returns nil when ctx
// ends or a kick asks for a new watch, an error when the watch cannot start
// or ends.
func (w *watcher) follow(ctx context.Context, nc *nats.Conn, js jetstream.JetStream) error {
	if !nc.IsConnected() {
		return errors.New("not connected to nats")
	}
	lctx, cancel := context.WithTimeout(ctx, requestTimeout)
	kv, err := js.KeyValue(lctx, subject.StateBucket)
	cancel()
	if err != nil {
		return fmt.Errorf("bucket %s: %w", subject.StateBucket, err)
	}
	// The watch lasts as long as wctx, and so do the requests that set it
	// up: the timer bounds those. Ending wctx ends the watch: nats.go then
	// unsubscribes, and deletes the watch's consumer, in a goroutine of its
	// own (kw.Stop would wait for that deletion, up to 5 s while the server
	// is away).
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	t := time.AfterFunc(requestTimeout, stop)
	kw, err := kv.Watch(wctx, w.pair)
	t.Stop()
	if err != nil {
		return fmt.Errorf("watch %s key %s: %w", subject.StateBucket, w.pair, err)
	}
	if !w.logged.IsZero() {
		w.logged = time.Time{}
		w.log.Info().Msg("watching the node's state")
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.kick:
			return nil
		case e, ok := <-kw.Updates():
			if !ok {
				return errors.New("the watch of the node's state ended")
			}
			if e != nil { // nil marks the end of the initial values
				w.apply(e)
			}
		}
	}
}

// apply takes the view from an entry of key <pair>. A deletion means nobody
// is known to be active; a value that does not decode, or is another pair's,
// is ignored, as sessions ignore it.
func (w *watcher) apply(e jetstream.KeyValueEntry) {
	v := view{}
	if e.Operation() == jetstream.KeyValuePut {
		n, err := api.DecodeNotification(e.Value())
		if err == nil && n.Pair != w.pair {
			err = fmt.Errorf("notification of pair %q", n.Pair)
		}
		if err != nil {
			w.log.Warn().Err(err).Uint64("revision", e.Revision()).Msg("state value ignored")
			return
		}
		v = view{active: n.Active, epoch: n.Epoch}
	}
	if old := w.state.set(v); old == v {
		return
	}
	ev := w.log.Info().Uint64(logging.FieldEpoch, v.epoch).Str("active", v.active)
	switch v.active {
	case w.node:
		ev.Msg("node active: serving /jobs")
	case "":
		ev.Msg("no active node known: not serving /jobs")
	default:
		ev.Msg("node not active: not serving /jobs")
	}
}

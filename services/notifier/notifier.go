// Package notifier is the notifier service: it tells every client session
// which node to use (SPEC §5, N1–N7).
//
// Each node runs one. It follows the monitor's activations durably (a
// durable consumer on its own event stream and one on its mirror of the
// peer's, so it learns of both nodes' activations), and for every epoch
// newer than the last it knows it builds one notification (internal/plan):
// the active node, the failed node, the host map and per-resource renames
// from the pair configuration. That configuration comes from the database
// through the replicator (ConfigSource, never the database itself), is
// cached in memory and on disk, and serves from the cache when the
// replicator does not answer; never read yet, the notifier's own hosts are
// used and the notification says so (N4).
//
// The notification is written as the value of key <pair> in the bucket
// subject.StateBucket of the node's own JetStream domain (so each node
// serves it even when the other is dead, N5), then — by the notifier of the
// node that became active — published on subject.Notify(pair) and
// re-announced periodically (N7), and sent to the push endpoint's SSE
// clients. Writing first closes a race: a session that reconnects and
// subscribes just after the message went out reads the state next, and
// finds the new one.
// Sessions acknowledge on subject.Ack(pair, session), in batches on
// subject.AckBatch(pair, client) (many sessions on one connection), or on
// the push endpoint;
// the notifier counts known sessions and acknowledgements
// (internal/progress) and the active node's notifier reports them as
// tandem.failover.notified (N6). A notifier that starts learns the sessions
// its peer's knows (catchup.go), so that a node back from an outage counts
// them before they reconnect to it.
//
// Both nodes' buckets have the same stream subjects in the same account, and
// subject interest crosses the leafnode, so while the link is up a write on
// one node is stored on both; every notifier writes only epochs newer than
// it has seen, so both buckets end at the newest epoch.
//
// # Concurrency
//
// s.mu guards the current notification, the pair configuration and the
// progress tracker. Writers: the followers (one goroutine per event stream),
// the ack subscription (NATS's goroutine) and the push endpoint's ack
// handler, the config refresher and the ticker (re-announcements, progress
// deadline). NATS publishes and KV writes happen outside the mutex. The push
// hub has its own mutex over its clients; each SSE client's handler
// goroutine owns its connection.
package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reject"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/notifier/internal/plan"
	"github.com/tandem-ha/tandem/services/notifier/internal/progress"
)

// Defaults of Options.
const (
	DefaultReannounce      = 5 * time.Second
	DefaultConfigRefresh   = 10 * time.Second
	DefaultProgressTimeout = 30 * time.Second
	configReadTimeout      = 2 * time.Second
	// storeTimeout bounds the write of the state, which the notification
	// waits for (it is published after the write, or after this).
	storeTimeout = time.Second
)

// Options are what a notifier needs.
type Options struct {
	Config config.Config
	Conn   *nats.Conn          // to the node's own NATS server
	JS     jetstream.JetStream // the node's own JetStream domain
	Events event.Sink          // pkg/bus.Emitter in production
	// Source reads the pair configuration; nil means NATSConfig for this
	// node on Conn.
	Source ConfigSource
	// Peer is the peer node's name; "" means Config.Peer(), or, when hosts
	// does not name it, the sender of the peer's heartbeats
	// (heartbeat.Peer).
	Peer string
	// PushListen overrides Config.Notifier.PushListen ("-" disables the
	// push endpoint).
	PushListen string
	// Tokens are the bearer tokens the push endpoint accepts. Without any it
	// refuses every request unless Open is set (the loopback demo).
	Tokens []string
	Open   bool
	// JanitorInterval is how often the state bucket's consumers are
	// checked (DefaultJanitorInterval when 0; janitor.go).
	JanitorInterval time.Duration
	// Reannounce, ConfigRefresh and ProgressTimeout default to the
	// constants above.
	Reannounce      time.Duration
	ConfigRefresh   time.Duration
	ProgressTimeout time.Duration
	Clock           clock.Clock
	Log             zerolog.Logger
	Registry        prometheus.Registerer
}

// Service is one node's notifier.
type Service struct {
	o     Options
	cfg   config.Config
	pair  string
	self  string
	log   zerolog.Logger
	clk   clock.Clock
	met   *metrics
	cache string // path of the on-disk configuration cache
	hub   *hub

	ready   chan struct{} // closed once the bucket, subscriptions and listener are up
	kv      jetstream.KeyValue
	pushLn  net.Listener
	rejects reject.Limiter

	mu      sync.Mutex // guards the fields below
	current *api.Notification
	peer    string
	db      *api.PairConfig
	dbFresh bool // the last read through the replicator succeeded
	tracker *progress.Tracker
	learned atomic.Bool // the peer's notifier listed its sessions (catchup.go)

	snapMu sync.Mutex // guards the snapshot of the sessions the peer pages through
	snap   []api.KnownSession
	snapAt time.Time
}

// New builds a notifier; Run starts it.
func New(o Options) (*Service, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Conn == nil || o.JS == nil || o.Events == nil {
		return nil, errors.New("notifier: a NATS connection, JetStream and an event sink are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	c := o.Config
	o.Reannounce = clock.Or(o.Reannounce, clock.Or(c.Notifier.Reannounce, DefaultReannounce))
	o.ConfigRefresh = clock.Or(o.ConfigRefresh, clock.Or(c.Notifier.ConfigRefresh, DefaultConfigRefresh))
	o.ProgressTimeout = clock.Or(o.ProgressTimeout, clock.Or(c.Notifier.ProgressTimeout, DefaultProgressTimeout))
	if o.PushListen == "" {
		o.PushListen = c.Notifier.PushListen
	}
	if o.Source == nil {
		o.Source = NATSConfig{Conn: o.Conn, Pair: c.Pair, Node: c.Node,
			HostsTable: c.Notifier.HostsTable, ResourcesTable: c.Notifier.ResourcesTable}
	}
	s := &Service{
		o: o, cfg: c, pair: c.Pair, self: c.Node, clk: o.Clock,
		log:     o.Log.With().Str("service", "notifier").Str("pair", c.Pair).Str("node", c.Node).Logger(),
		cache:   filepath.Join(c.DataDir, "notifier", "pairconfig.json"),
		ready:   make(chan struct{}),
		tracker: progress.New(),
		peer:    o.Peer,
	}
	s.hub = newHub()
	if s.peer == "" {
		s.peer = c.Peer()
	}
	met, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	s.met = met
	pc, err := loadCache(s.cache, c.Pair)
	if err != nil {
		s.log.Warn().Err(err).Msg("configuration cache unreadable; ignored")
	}
	s.db = pc
	return s, nil
}

// Run runs the service until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := s.openBucket(ctx); err != nil {
		return err
	}
	subs, err := s.subscribe(ctx)
	if err != nil {
		return err
	}
	defer subs.Unsubscribe()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	if s.o.PushListen != "-" {
		srv, err := s.startPush(ctx)
		if err != nil {
			return err
		}
		defer s.stopPush(srv)
	}
	for _, f := range []func(context.Context){s.refreshConfig, s.followOwn, s.followPeer, s.catchUp, s.tick, s.janitor} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	close(s.ready)
	s.log.Debug().Str("push", s.PushAddr()).Msg("notifier running")
	<-ctx.Done()
	return nil
}

// Ready reports whether the service is ready (for /readyz).
func (s *Service) Ready() error {
	select {
	case <-s.ready:
		return nil
	default:
		return errors.New("notifier: starting")
	}
}

// Started is closed once the notifier runs.
func (s *Service) Started() <-chan struct{} { return s.ready }

// PushAddr is the push endpoint's address once started, or "".
func (s *Service) PushAddr() string {
	if s.pushLn == nil {
		return ""
	}
	return s.pushLn.Addr().String()
}

// Current is the newest notification the notifier knows.
func (s *Service) Current() (api.Notification, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return api.Notification{}, false
	}
	return *s.current, true
}

// Status is the notifier's view of the sessions.
func (s *Service) Status() api.SessionStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statusLocked()
}

func (s *Service) statusLocked() api.SessionStatus {
	p := s.tracker.Progress()
	st := api.SessionStatus{Node: s.self, Known: p.Known, Acknowledged: p.Acknowledged, PushClients: s.hub.count()}
	if s.current != nil {
		st.Epoch, st.Active, st.Source = s.current.Epoch, s.current.Active, s.current.Source
	}
	if p.NotifiedMS >= 0 {
		v := p.NotifiedMS
		st.NotifiedMS = &v
	}
	if p.AllAckedMS >= 0 {
		v := p.AllAckedMS
		st.AllAckedMS = &v
	}
	return st
}

// ConfigSourceNow says where a notification made now would take its host
// map from (api.SourceDatabase, SourceCache or SourceLocal).
func (s *Service) ConfigSourceNow() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sourceLocked()
}

func (s *Service) sourceLocked() string {
	switch {
	case s.db == nil:
		return api.SourceLocal
	case s.dbFresh:
		return api.SourceDatabase
	}
	return api.SourceCache
}

// openBucket makes the node's state bucket and loads the current state.
func (s *Service) openBucket(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	kv, err := s.o.JS.CreateOrUpdateKeyValue(cctx, jetstream.KeyValueConfig{
		Bucket: subject.StateBucket, Description: "the last notification of each pair (SPEC §5 N5)",
		History: 1, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("notifier: state bucket: %w", err)
	}
	if err := s.boundStateConsumers(cctx); err != nil {
		return fmt.Errorf("notifier: state bucket: %w", err)
	}
	s.kv = kv
	e, err := kv.Get(cctx, s.pair)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("notifier: read state: %w", err)
	}
	n, err := api.DecodeNotification(e.Value())
	if err != nil || n.Pair != s.pair {
		s.log.Warn().Err(err).Msg("stored state unreadable; ignored")
		return nil
	}
	s.mu.Lock()
	s.current = &n
	s.tracker.Notified(n.Epoch, n.Time, time.Time{})
	s.mu.Unlock()
	s.met.epoch.Set(float64(n.Epoch))
	return nil
}

// subscribe listens for acknowledgements, status requests and, the quick
// path, this node's activations (onActivationMsg).
func (s *Service) subscribe(ctx context.Context) (bus.Subscriptions, error) {
	handlers := map[string]nats.MsgHandler{
		subject.Acks(s.pair):                     s.onAckMsg,
		subject.AckBatches(s.pair):               s.onAckBatchMsg,
		subject.NotifierStatus(s.pair):           s.onStatusMsg,
		subject.NotifierSessions(s.pair, s.self): s.onSessionsMsg,
	}
	for _, typ := range event.ActivationTypes() {
		handlers[subject.Event(s.pair, s.self, typ)] = func(m *nats.Msg) { s.onActivationMsg(ctx, m) }
	}
	subs, err := bus.SubscribeAll(s.o.Conn, handlers, bus.Limits{Msgs: 1 << 17, Bytes: 64 << 20})
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}
	return subs, nil
}

// refreshConfig reads the pair configuration now and then every
// ConfigRefresh, keeping the last one read in memory and on disk.
func (s *Service) refreshConfig(ctx context.Context) {
	t := s.clk.NewTicker(s.o.ConfigRefresh)
	defer t.Stop()
	for {
		s.readConfig(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func (s *Service) readConfig(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, configReadTimeout)
	pc, err := s.o.Source.Read(rctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil {
		s.met.configReads.WithLabelValues("failed").Inc()
		s.mu.Lock()
		was := s.dbFresh
		s.dbFresh = false
		s.mu.Unlock()
		if was {
			s.log.Warn().Err(err).Msg("pair configuration unavailable; using the cache")
		}
		return
	}
	s.met.configReads.WithLabelValues("ok").Inc()
	s.mu.Lock()
	changed := s.db == nil || !sameConfig(*s.db, pc)
	s.db, s.dbFresh = &pc, true
	s.mu.Unlock()
	if changed {
		if err := saveCache(s.cache, s.pair, pc, s.clk.Now()); err != nil {
			s.log.Error().Err(err).Msg("cannot write the configuration cache")
		}
		s.log.Info().Int("hosts", len(pc.Hosts)).Int("resources", len(pc.Resources)).Msg("pair configuration read from the database")
	}
}

func sameConfig(a, b api.PairConfig) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// onActivation makes and sends the notification for a, if it is newer
// than the current one.
func (s *Service) onActivation(ctx context.Context, a plan.Activation) {
	s.mu.Lock()
	if s.current != nil && a.Epoch == s.current.Epoch && a.EventID == s.current.Event {
		s.mu.Unlock() // taken by the other path (onActivationMsg, follow)
		return
	}
	if s.current != nil && a.Epoch <= s.current.Epoch {
		s.mu.Unlock()
		s.met.stale.Inc()
		return
	}
	n := plan.Notification(a, plan.Pair{Self: s.self, Peer: s.peer, Hosts: s.cfg.Hosts, DB: s.db, Source: s.sourceLocked()})
	b, err := json.Marshal(n)
	if err != nil || n.Validate() != nil {
		s.mu.Unlock()
		s.log.Error().Err(errors.Join(err, n.Validate())).Uint64("epoch", a.Epoch).Msg("cannot make a notification")
		return
	}
	s.current = &n
	mine := n.Active == s.self
	published := time.Time{}
	if mine {
		published = s.clk.Now()
	}
	s.tracker.Notified(n.Epoch, n.Time, published)
	s.mu.Unlock()
	// Persist, then publish: a session that subscribes too late for the
	// message reads the state next (N5), and must find it there.
	stored := s.clk.Now()
	s.store(ctx, n, b)
	storeTook := s.clk.Now().Sub(stored)
	if mine {
		if err := s.o.Conn.Publish(subject.Notify(s.pair), b); err != nil {
			s.log.Warn().Err(err).Msg("publish notification")
		}
		s.met.notifications.Inc()
	}
	s.hub.broadcast()
	s.met.epoch.Set(float64(n.Epoch))
	s.log.Info().Uint64("epoch", n.Epoch).Str("active", n.Active).Str("failed", n.Failed).Str("source", n.Source).
		Bool("published", mine).Dur("store_took", storeTook).Msg("notification")
	s.maybeReport()
}

// store writes n as the state, unless a newer one was written meanwhile.
func (s *Service) store(ctx context.Context, n api.Notification, b []byte) {
	s.mu.Lock()
	newest := s.current != nil && s.current.Epoch == n.Epoch
	s.mu.Unlock()
	if !newest {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := s.kv.Put(wctx, s.pair, b); err != nil && ctx.Err() == nil {
		s.log.Warn().Err(err).Uint64("epoch", n.Epoch).Msg("cannot store the state")
	}
}

// tick re-announces the current notification (N7) and reports progress
// when its deadline or hold passes.
func (s *Service) tick(ctx context.Context) {
	period := min(s.o.Reannounce, s.o.ProgressTimeout, unlearnedHold/5)
	t := s.clk.NewTicker(period)
	defer t.Stop()
	last := s.clk.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		s.maybeReport()
		if now := s.clk.Now(); now.Sub(last) >= s.o.Reannounce {
			last = now
			s.reannounce()
		}
	}
}

func (s *Service) reannounce() {
	s.mu.Lock()
	cur := s.current
	s.mu.Unlock()
	if cur == nil || cur.Active != s.self {
		return
	}
	b, _ := json.Marshal(cur)
	if err := s.o.Conn.Publish(subject.Notify(s.pair), b); err == nil {
		s.met.reannounced.Inc()
	}
}

// maybeReport emits tandem.failover.notified once per published
// notification: when all known sessions acknowledged, or at the deadline.
func (s *Service) maybeReport() {
	s.mu.Lock()
	var hold time.Duration
	if !s.learned.Load() {
		hold = unlearnedHold // catchup.go
	}
	p, ok := s.tracker.Report(s.clk.Now(), hold, s.o.ProgressTimeout)
	cur := s.current
	s.mu.Unlock()
	if !ok || cur == nil {
		return
	}
	data := event.Notified{
		Epoch: p.Epoch, Active: cur.Active, Failed: cur.Failed, Source: cur.Source,
		Known: p.Known, Acknowledged: p.Acknowledged, Switched: p.Switched, Complete: p.Complete,
		NotifiedMS: p.NotifiedMS,
	}
	if p.AllAckedMS >= 0 {
		data.AllAckedMS = &p.AllAckedMS
	}
	e, err := event.New(s.pair, s.self, "notifier", event.FailoverNotified, p.Epoch, s.clk.Now(), data)
	if err != nil {
		s.log.Error().Err(err).Msg("cannot build the progress event")
		return
	}
	s.log.Info().Uint64("epoch", p.Epoch).Int("known", p.Known).Int("acknowledged", p.Acknowledged).
		Bool("complete", p.Complete).Int64("all_acked_ms", p.AllAckedMS).Msg("failover notified")
	s.o.Events.Emit(e)
}

// Package license is the license service (SPEC §6, L1–L5): it holds the
// pair's signed licenses and the standby's grace clock.
//
// # Design
//
// The master owns a JetStream KV bucket (subject.LicenseBucket) in its own
// domain: key "lic.<id>" holds a license's armoured text, key "lease" a
// lease the master rewrites every LeaseInterval. The standby keeps a
// durable mirror of that bucket in its own domain (the master owns the push
// consumer, subject.LicenseMirrorConsumer), so the standby's copy is
// read-only, survives the master's absence, and catches up after a
// partition. Both nodes watch their own bucket and keep the licenses that
// verify against their own public key; a copy that does not verify is
// rejected (tandem.input.rejected) and never used.
//
// The standby's proof of contact with the master is a fresh answer of the
// master to its challenge, signed with the master's node key (contact.go);
// a new lease in the bucket only prompts a challenge. The grace decision is internal/grace, pure; this file is its
// driver: it reads the clock, persists the grace state (internal/statefile)
// before it reports anything, then publishes an event for each change of
// level, then a snapshot that requests read.
//
// Licenses are entered only on the master (api.VerbLicenseAdd on
// subject.License): the standby refuses with reply.CodeNotMaster naming the
// master. Every outcome of an add is an event (added or refused).
//
// The standby knows its master from hosts, or else learns it from the
// monitors' heartbeats (master.go) and only then sets up its mirror.
//
// # Concurrency
//
// One goroutine, run, owns the licenses, the grace state and the level; it
// takes its inputs from the clock's tickers, the bucket watcher, s.added and
// (on a standby without its mirror yet) the mirror setUpMirror set up.
// After each input it stores a snapshot (s.snap, atomic) that request
// handlers read. Request handlers run on the NATS subscription goroutine;
// an add verifies and stores the license there and then hands it to run
// and waits for the snapshot that holds it. setUpMirror, a goroutine of Run
// that ends before Run returns, writes the master's name (guarded by
// masterMu).
package license

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	lic "github.com/tandem-ha/tandem/pkg/license"
	"github.com/tandem-ha/tandem/pkg/reject"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/license/internal/grace"
	"github.com/tandem-ha/tandem/services/license/internal/statefile"
)

// Defaults.
const (
	// DefaultLeaseInterval is how often the master renews its lease.
	DefaultLeaseInterval = 10 * time.Second
	// DefaultCheckInterval is how often the grace is re-evaluated.
	DefaultCheckInterval = time.Minute
	// Tolerance is how far in the future a license may be issued (clocks
	// that are not quite in step).
	Tolerance = 5 * time.Minute
)

// Options are what the service needs. Conn and JS reach the node's own
// NATS server and JetStream domain.
type Options struct {
	Config        config.Config
	Conn          *nats.Conn
	JS            jetstream.JetStream
	Events        event.Sink  // pkg/bus.Emitter in production
	Clock         clock.Clock // clock.Real{} when nil
	Log           zerolog.Logger
	LeaseInterval time.Duration         // DefaultLeaseInterval when 0
	CheckInterval time.Duration         // DefaultCheckInterval when 0
	Registry      prometheus.Registerer // a fresh registry when nil
}

// Service is one node's license service.
type Service struct {
	cfg    config.Config
	nc     *nats.Conn
	js     jetstream.JetStream
	events event.Sink
	clk    clock.Clock
	log    zerolog.Logger
	pub    ed25519.PublicKey // nil without license.public_key: nothing is licensed
	dir    string
	lease  time.Duration
	check  time.Duration

	kv    jetstream.KeyValue // set by Run before the handlers start
	added chan *lic.Signed
	snap  atomic.Pointer[snapshot]
	epoch atomic.Uint64 // highest epoch seen in the pair's events
	ready atomic.Bool

	// Owned by run.
	licenses map[string]*lic.Signed
	rec      statefile.Record
	pinned   ed25519.PublicKey // standby: the master's node key, nil until known

	nodeKey  ed25519.PrivateKey     // master: signs answers to challenges; nil when unusable
	answers  chan answered          // standby: the challenger's answers, to run
	kick     chan struct{}          // standby: challenge now (size 1)
	stateErr atomic.Pointer[string] // trouble with the state file read at start, until contact, for status
	saveErr  atomic.Pointer[string] // the last save's failure, until a save succeeds, for status
	// answerErr: the master's answers fail against the pinned key, until one verifies.
	answerErr atomic.Pointer[string]
	seats     seatTable
	rejected  *prometheus.CounterVec

	rejects reject.Limiter

	masterMu sync.Mutex // guards master
	master   string     // the master's node name, "" while unknown
}

// snapshot is run's latest decision, read by request handlers, with its
// inputs: an answer is evaluated again at the time of the question.
type snapshot struct {
	status grace.Status
	at     time.Time
	in     grace.Input // Now is the time of run's evaluation
}

// New builds the service; Run starts it. It fails when license.public_key
// is set but cannot be read.
func New(o Options) (*Service, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if o.Conn == nil || o.JS == nil || o.Events == nil {
		return nil, errors.New("license: a NATS connection, JetStream and an event sink are required")
	}
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	s := &Service{
		cfg: o.Config, nc: o.Conn, js: o.JS, events: o.Events, clk: o.Clock,
		log:   o.Log.With().Str("service", "license").Logger(),
		dir:   filepath.Join(o.Config.DataDir, "license"),
		lease: clock.Or(o.LeaseInterval, DefaultLeaseInterval),
		check: clock.Or(o.CheckInterval, DefaultCheckInterval),
		added: make(chan *lic.Signed), licenses: map[string]*lic.Signed{},
		answers: make(chan answered), kick: make(chan struct{}, 1),
		rejected: newRejected(),
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if err := s.register(o.Registry); err != nil {
		return nil, fmt.Errorf("license: metrics: %w", err)
	}
	// A short grace is re-evaluated often enough for its events.
	s.check = min(s.check, max(o.Config.License.Grace/20, 100*time.Millisecond))
	s.setMaster(masterName(o.Config))
	if path := o.Config.License.PublicKey; path != "" {
		pub, err := readPublicKey(path)
		if err != nil {
			return nil, err
		}
		s.pub = pub
	}
	return s, nil
}

// masterName is the master's node name: this node on the master, else the
// other node named in hosts ("" when hosts does not say).
func masterName(c config.Config) string {
	if c.Role == config.Master {
		return c.Node
	}
	return c.Peer()
}

func readPublicKey(path string) (ed25519.PublicKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("license.public_key: %w", err)
	}
	defer f.Close()
	b := make([]byte, lic.MaxKeySize+1)
	n, _ := f.Read(b)
	pub, err := lic.ParsePublicKey(b[:n])
	if err != nil {
		return nil, fmt.Errorf("license.public_key %s: %w", path, err)
	}
	return pub, nil
}

// Run runs the service until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	s.loadState(ctx)
	kv, err := s.openBucket(ctx)
	if err != nil {
		return err
	}
	s.kv = kv
	// The bucket watcher ends with wctx: nats.go then unsubscribes and
	// deletes its consumer in a goroutine of its own. watcher.Stop would do
	// the same here and, when the server is gone, wait out the JetStream
	// request timeout (5 s) before Run could return; the consumer is an
	// ephemeral one the server drops by itself.
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	var updates <-chan jetstream.KeyValueEntry
	if kv != nil {
		if updates, err = watch(wctx, kv); err != nil {
			return err
		}
	}
	if err := s.evaluate(); err != nil {
		return err
	}
	subs, err := s.subscribe()
	if err != nil {
		return err
	}
	defer subs.Unsubscribe()
	if s.cfg.Role == config.Standby {
		cctx, stopChallenger := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { s.challenger(cctx) })
		defer wg.Wait()
		defer stopChallenger()
	}
	var learned chan jetstream.KeyValue
	if kv == nil { // a standby without its mirror yet
		learned = make(chan jetstream.KeyValue)
		lctx, stopLearning := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Go(func() { s.setUpMirror(lctx, learned) })
		defer wg.Wait()
		defer stopLearning()
	}
	s.log.Info().Str("role", string(s.cfg.Role)).Str("master", s.masterNode()).Bool("public_key", s.pub != nil).
		Msg("license service running")
	return s.run(ctx, watchState{ctx: wctx, updates: updates, learned: learned})
}

// openBucket is the bucket run watches from the start: the master's, or
// the mirror an earlier run made (readable while the master is down; made
// again as it must be when the standby knows its master); nil when there
// is none yet: the standby makes it once the master answers (setUpMirror).
func (s *Service) openBucket(ctx context.Context) (jetstream.KeyValue, error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if s.cfg.Role == config.Master {
		return s.ensureBucket(sctx)
	}
	kv, err := s.js.KeyValue(sctx, subject.LicenseBucket(s.cfg.Pair))
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("license: open the mirror %s: %w", subject.LicenseBucket(s.cfg.Pair), err)
	case s.masterNode() != "":
		return s.ensureBucket(sctx)
	}
	return kv, nil
}

func watch(ctx context.Context, kv jetstream.KeyValue) (<-chan jetstream.KeyValueEntry, error) {
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("license: watch %s: %w", kv.Bucket(), err)
	}
	return w.Updates(), nil
}

// watchState is run's bucket input: the watcher's updates (nil while there
// is no bucket) and, while the master is being learned, the mirror that
// setUpMirror sets up; ctx is the watcher's context.
type watchState struct {
	ctx     context.Context
	updates <-chan jetstream.KeyValueEntry
	learned <-chan jetstream.KeyValue
}

func (s *Service) run(ctx context.Context, w watchState) error {
	check := s.clk.NewTicker(s.check)
	defer check.Stop()
	var leaseC <-chan time.Time
	if s.cfg.Role == config.Master {
		lt := s.clk.NewTicker(s.lease)
		defer lt.Stop()
		leaseC = lt.C()
		s.writeLease(ctx)
	}
	s.ready.Store(true)
	defer s.ready.Store(false)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-check.C():
		case <-leaseC:
			s.writeLease(ctx)
			continue
		case kv := <-w.learned:
			w.learned = nil
			if w.updates == nil { // else: the mirror an earlier run made, watched already
				u, err := watch(w.ctx, kv)
				if err != nil {
					if ctx.Err() != nil {
						return nil // stopped meanwhile
					}
					return err
				}
				w.updates = u
			}
			continue
		case e, ok := <-w.updates:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				if s.nc.IsClosed() { // an in-process server went away
					return fmt.Errorf("license: bucket watcher stopped: %w", nats.ErrConnectionClosed)
				}
				return errors.New("license: bucket watcher stopped")
			}
			s.onEntry(e)
		case l := <-s.added:
			s.licenses[l.ID] = l
		case a := <-s.answers:
			s.onAnswer(a)
		}
		if err := s.evaluate(); err != nil {
			return err
		}
	}
}

// evaluate runs the grace decision at now, persists, reports, publishes.
// A state that cannot be persisted is reported, never fatal: the node runs
// on, and the standby's grace is not extended by it.
func (s *Service) evaluate() error {
	now := s.clk.Now()
	in := s.input(now)
	st, status := grace.Evaluate(in)
	if status.RolledBack > 0 {
		s.log.Warn().Dur("set_back", status.RolledBack).Msg("the clock was set back; the grace keeps counting from where it was")
	}
	typ := grace.Transition(s.rec.Level, status.Level)
	// The snapshot first: answers are evaluated at the time of the question
	// from it, and a higher high-water mark in it only makes them stricter.
	in.State = st
	s.snap.Store(&snapshot{status: status, at: now, in: in})
	rec := statefile.Record{State: st, Level: status.Level, Proof: s.rec.Proof}
	if rec.State != s.rec.State || rec.Level != s.rec.Level {
		s.save(rec)
		s.rec = rec
	}
	if typ != "" {
		s.log.Info().Str("level", status.Level.String()).Dur("left", status.Left).Msg("license state changed")
		s.emit(typ, now, event.LicenseState{Level: status.Level.String(), DaysLeft: status.Level.DaysLeft(),
			GraceLeft: status.Left.Round(time.Second).String(), LastContact: status.Contact.UTC(), Why: event.Because(status.Reason())})
	}
	return nil
}

// input is the grace decision's input at now.
func (s *Service) input(now time.Time) grace.Input {
	in := grace.Input{Master: s.cfg.Role == config.Master, State: s.rec.State, Now: now,
		Grace: s.cfg.License.Grace, Tolerance: Tolerance}
	for _, l := range s.licenses {
		in.Licenses = append(in.Licenses, l.Payload)
	}
	return in
}

// current is the license decision at the time of the question (L5): run's
// last inputs, evaluated at now. Nothing is persisted from here.
func (s *Service) current() grace.Status {
	sn := s.snap.Load()
	in := sn.in
	in.Now = s.clk.Now()
	_, st := grace.Evaluate(in)
	return st
}

func (s *Service) emit(typ string, now time.Time, data any) {
	e, err := event.New(s.cfg.Pair, s.cfg.Node, "license", typ, s.epoch.Load(), now, data)
	if err != nil {
		s.log.Error().Err(err).Str("type", typ).Msg("event not made")
		return
	}
	s.events.Emit(e)
}

// reject logs, and reports as an event (at most reject.PerSecond a second), an input
// that was refused without changing any state.
func (s *Service) reject(kind, subj string, err error) {
	s.rejected.WithLabelValues(kind).Inc()
	now := s.clk.Now()
	if !s.rejects.Log(s.log, now, kind, subj, err) {
		return
	}
	s.emit(event.InputRejected, now, event.Rejected{Why: event.Because(err.Error()), Kind: kind, Subject: subj})
}

// Ready reports whether the service runs (for /readyz).
func (s *Service) Ready() error {
	if !s.ready.Load() {
		return errors.New("license: not running")
	}
	return nil
}

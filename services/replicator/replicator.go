// Package replicator is the replicator service: it keeps both nodes'
// databases identical (SPEC §4, R1–R9). The application writes its SQLite
// database as usual; triggers capture every change; each node ships its
// changes to the peer over NATS; the peer applies them, master-wins on
// concurrent changes.
//
// # Design, and why
//
// Capture (R6). Triggers write each row change, with the row's version pair,
// into the change log in the writer's own transaction (internal/store), so
// every writer is captured — the sqlite3 shell too, and while the
// replicator is down. The shipper polls every PollInterval (10 ms) while the
// database is busy and backs off to 50 ms, then 2 s, when it is idle: it
// watches the database's directory for writes (internal/dbwatch, inotify)
// and polls at once after one, so the first change after a quiet spell does
// not wait out the sleep (200 ms idle polls where the database cannot be
// watched). A poll stats the database and WAL files and asks PRAGMA
// data_version (which changes when another connection commits) only when
// they moved or a second has passed (store.Changed).
//
// Transport (R2, R4, R9). Each node publishes its changes into its own
// JetStream stream, ReplStream(pair, node), in its own domain, one message
// per group of whole source transactions (package wire; one transaction at
// rest, many under load, split into parts of at most 256 KiB). The peer reads
// that stream across the leafnode through the domain's API
// ($JS.<domain>.API) with an ordered consumer that starts after the last
// stream sequence it applied. The position — source database id, source log
// sequence, stream sequence — is stored in the peer's database in the same
// transaction as the apply, so the database, not the consumer, is the
// record of what was applied: a crash before the commit applies nothing and
// the group is read again; a redelivered or re-shipped group is recognised
// by its log sequences and skipped row by row. Exactly once, in commit order,
// atomically per group (R9). Nothing is acknowledged to JetStream, so no
// redelivery can overtake: the ordered consumer delivers in stream order or
// restarts itself at the gap.
//
// The stream keeps every batch until the peer reports (ReplApplied, a core
// message after each apply and every second) that it applied it; only then
// are the stream and the change log pruned. A cut link, a dead peer, a
// paused replicator or a restart therefore lose nothing: the batches wait in
// the owner's stream, the changes in its log. A row too large to be read
// whole from the log (over 1 MiB: a blob's literal is twice its size)
// travels in the stream as its pieces without their chunks; the receiver
// asks the owner for each chunk (ReplPiece, pieces.go), which reads it from
// the log, unchanged until the peer applied it, after checking it is the
// same change (database id, sequence, version): the owner's JetStream never
// holds the row, and at most one chunk of it is on the link. The owner
// ships even while the link is down (its own domain is always there). A durable mirror was the
// alternative (NOTES.md); it would copy every batch to the peer's disk first
// and still need a consumer there, while the position in the database already
// gives exactly-once; reading the peer's stream directly is one moving part
// fewer. When the owner node is down its unshipped changes are unreachable
// either way.
//
// Conflicts (R3, R5). Each row carries a version pair: changes made on the
// master and on the standby. An incoming change whose version does not cover
// the local one, nor is covered by it, was made concurrently; the master's
// version wins on both nodes and the standby's loser is kept in
// _tandem_conflict on both and reported as tandem.repl.conflict
// (internal/conflict has the rule as a pure function). A partition with both
// nodes active is the same case on many rows: after the heal each side's
// stream is applied by the other and the master's versions win (R5).
//
// Database identity (R1, R9). Every database has an id (in _tandem_meta).
// A snapshot restore gives the standby a new id; the shipper then purges its
// stream and publishes a genesis message naming the master database it was
// restored from, which the master accepts. At start the shipper compares its
// stream's last batch with the database: a database whose log is behind what
// it already shipped was restored from a backup; it gets a new id, and the
// standby re-syncs from the master (a restored master announces its new id,
// and the standby re-syncs from it). A batch of an unknown database id is
// rejected and reported.
//
// Snapshot and reconcile (R1, R10). A standby without a position in the
// master's changes (first start, foreign database) or told the master's
// database changed (rebuilt, restored from a backup) asks the master for a
// snapshot: the master runs VACUUM INTO (one consistent read; the copy
// holds its own log position and the last sequence of the master's batch
// stream before it), and serves the file in checksummed 512 KiB chunks; the
// standby verifies every chunk and the whole file, reports progress, and
// merges it into its live database row by row by version in one
// transaction (store.Restore; the application's connections stay valid).
// The safety rule, enforced there and nowhere else: a node's data is never
// overwritten by a snapshot from a node that lacks writes it holds — rows
// the standby has newer, or that the master lacks, are kept and queued for
// the master; concurrent ones go the master's way with the loser kept on
// both. An empty standby simply takes the snapshot whole. Row versions
// never fall below the wall clock in milliseconds, so a restored backup's
// new writes order after everything it held. A resync that fails, or that
// is needed again within 30 s, backs off (1 s doubling to a minute) in the
// state "blocked", with one tandem.repl.blocked event per reason.
// A table whose schema is incompatible with the master's (another key, a
// column one side lacks, another type affinity) is left alone by the
// reconcile and refused on the standby, the rest merged; a later schema
// change or resync compares it again (internal/store/sqlite_mismatch.go).
// The one exception to the safety rule is an operator's explicit command,
// resync --from NODE --discard (discard.go): the other node is made equal
// to NODE, and every row it discards is recorded in _tandem_conflict on
// both nodes.
//
// Decisions (internal/lineage). Which side seeds, whether a batch is
// applied, skipped, rejected or calls for a reconcile, how this node's and
// the peer's database lineages compare, and the back-off, are made by a pure
// core with no goroutines, clock or I/O: the receiver steps each batch's
// metadata and each outcome into a lineage.Receiver and carries out its
// Ready in the documented order (receive.go, carryOut); the shipper asks
// lineage.PlanShip at every look at the log. The core's script tests
// (internal/lineage/testdata) run a simulated pair over the in-memory store
// (internal/store/storefake), which keeps the same contract as SQLite
// (storetest.RunCore).
//
// Pause (R4) is persisted in the database: while paused a node neither ships
// nor applies; changes wait in its log and in the peer's stream. Pause and
// resume are the pair's: each node stores when the decision it follows was
// made and tells its peer with every applied position (also while paused),
// and a node that missed a newer decision — it was down, or starting when
// the operator's command came — follows its peer's.
//
// Failover status (R8): the replicator consumes this node's activation events
// from its event stream with a durable consumer and acknowledges each only
// after writing it into _tandem_failover (one row per node, the epoch and
// time; replicated like application data); a database that is down gets the
// row when it is back. The view _tandem_failover_status is the newest.
//
// # Parts, and concurrency
//
// Service only wires the parts and runs them; each part owns its state and
// its lock, and reaches the others through the functions and channels it
// is given:
//
//   - shipper (ship.go): the goroutine run reads the log and ships; the
//     NATS handler onApplied hears the peer's position and prunes. Shared
//     state under shipper.mu.
//   - receiver (receive.go, snapshot.go, discard.go): the goroutine run owns
//     the lineage.Receiver, the consumer and the group being assembled; a
//     reconcile or a discard runs inside it; requests reach it through ctl.
//     What status shows of it is under receiver.mu; snapFetch fetches the
//     peer's snapshots and holds the transfer's progress.
//   - snapServer (snapserve.go): NATS handlers and the goroutines making
//     snapshots for the peer, under snapServer.mu.
//   - failoverStatus (failover.go): its goroutine owns the event consumer.
//   - pause (pause.go), board (board.go), reporter (metrics.go): the pair's
//     pause, the state shown in status and the events, safe for concurrent
//     use.
//   - the admin surface (admin.go, discard.go, config_read.go): NATS
//     handlers answering the operator's verbs from the parts.
//
// The store is safe for concurrent use; it serialises writes on one
// connection. Service.mu guards only the peer's name (learnPeer).
package replicator

import (
	"context"
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

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/heartbeat"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
)

// Options are what a replicator needs.
type Options struct {
	Config config.Config
	// Conn is a connection to the node's own NATS server.
	Conn *nats.Conn
	// Peer is the peer's node name; empty means Config.Peer(), or, when
	// hosts does not name it, the sender of the peer's heartbeats
	// (heartbeat.Peer): Run waits for it.
	Peer string
	// JetStream is the node's own JetStream (its domain); nil means one on
	// Conn in Domain.
	JetStream jetstream.JetStream
	// Domain and PeerDomain are the nodes' JetStream domains; empty means
	// subject.ServerName(pair, node).
	Domain, PeerDomain string
	Events             event.Sink // pkg/bus.Emitter in production
	Log                zerolog.Logger
	Registry           prometheus.Registerer
	// PollInterval is how often the change log is polled while the
	// database is busy (default 10 ms; idle, the shipper backs off).
	PollInterval time.Duration
	// IdlePoll is how often an idle database is polled while it is watched
	// for writes (default DefaultIdlePoll); a write wakes the shipper at
	// once. A database that cannot be watched is polled every 200 ms.
	IdlePoll time.Duration
	// GroupTimeout bounds how long the next part of a group may take to
	// arrive once applying has started (default 30 s): a large group whose
	// parts keep coming is never cut short, however long it takes.
	GroupTimeout time.Duration

	// BeforeApply, if set, is called before each change is applied with
	// its source log sequence; an error aborts the apply as a crash would
	// (the group is rolled back and Run returns the error). Fault tests only.
	BeforeApply func(seq uint64) error
	// DropSnapshotRequest, if set, is asked on each snapshot request this
	// node receives; true drops it unanswered, as a cut link loses a
	// request or its reply. Fault tests only.
	DropSnapshotRequest func() bool
}

// Service is one node's replicator.
type Service struct {
	// base ends when Run returns; work that NATS handlers start (a
	// snapshot for the peer) derives its context from it.
	base       context.Context
	cancelBase context.CancelFunc

	cfg      config.Config
	nc       *nats.Conn
	peer     string
	domain   string
	peerDom  string
	events   event.Sink
	log      zerolog.Logger
	met      *metrics
	poll     time.Duration
	idlePoll time.Duration
	groupTTL time.Duration
	hook     func(uint64) error
	dropSnap func() bool
	dir      string

	// sess guards the parts of a session (st, file, cancelSess, snap, ship,
	// recv): open writes them, between sessions; a NATS handler or a
	// caller of Status reads them under RLock.
	sess         sync.RWMutex
	st           store.Store
	file         os.FileInfo // the database file st opened
	cancelSess   context.CancelFunc
	js           jetstream.JetStream
	ready        atomic.Bool
	awaitingPeer atomic.Bool // Run waits for the peer's heartbeat to learn its name
	registry     prometheus.Registerer

	rep   *reporter
	board *board

	pause  *pause
	wake   chan struct{} // size 1: the shipper should look now
	resume chan struct{} // size 1: the receiver should look now
	ctl    chan ctlReq   // to the receiver

	subs bus.Subscriptions
	wg   sync.WaitGroup
	mu   sync.Mutex // guards peer and peerDom (learnPeer sets them)

	// The parts of a session, set by open (guarded by sess).
	snap *snapServer
	// pieces serves the chunks of this node's large rows to the peer.
	pieces *pieceServer
	ship   *shipper
	recv   *receiver
}

type inStatus struct {
	db      string
	applied uint64
	pending uint64
	lastTS  float64 // commit time of the last applied change on the peer (Unix s)
	at      time.Time
}

type peerPos struct {
	db     string
	log    uint64
	stream uint64
}

// New builds a replicator; Run starts it.
func New(o Options) (*Service, error) {
	c := o.Config
	if o.Conn == nil || o.Events == nil {
		return nil, errors.New("replicator: a NATS connection and an event sink are required")
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	base, cancelBase := context.WithCancel(context.Background())
	s := &Service{
		cfg: c, nc: o.Conn, js: o.JetStream, peer: o.Peer, domain: o.Domain, peerDom: o.PeerDomain, events: o.Events,
		log:  o.Log.With().Str("service", "replicator").Logger(),
		poll: o.PollInterval, idlePoll: clock.Or(o.IdlePoll, DefaultIdlePoll), groupTTL: o.GroupTimeout, hook: o.BeforeApply, dropSnap: o.DropSnapshotRequest,
		dir:  filepath.Join(c.DataDir, "replicator"),
		wake: make(chan struct{}, 1), resume: make(chan struct{}, 1), ctl: make(chan ctlReq),
		base: base, cancelBase: cancelBase,
	}
	if s.poll <= 0 {
		s.poll = 10 * time.Millisecond
	}
	if s.groupTTL <= 0 {
		s.groupTTL = 30 * time.Second
	}
	if s.peer == "" {
		s.peer = c.Peer()
	}
	if s.domain == "" {
		s.domain = subject.ServerName(c.Pair, c.Node)
	}
	s.registry = o.Registry
	met, err := newMetrics(o.Registry)
	if err != nil {
		return nil, err
	}
	s.met = met
	s.rep = &reporter{pair: c.Pair, node: c.Node, events: o.Events, log: s.log, met: met}
	s.board = &board{log: s.log, state: "starting"}
	s.pause = &pause{board: s.board, rep: s.rep, gauge: met.paused, wake: s.wake, resume: s.resume}
	return s, nil
}

// DatabasePath is the replicated database: database.path, or tandem.db in
// the data directory (SPEC R6: embedded, in the node's data directory).
func DatabasePath(c config.Config) string {
	if c.Database.Path != "" {
		return c.Database.Path
	}
	return filepath.Join(c.DataDir, "tandem.db")
}

func (s *Service) master() bool { return s.cfg.Role == config.Master }

func (s *Service) side() store.Side {
	if s.master() {
		return store.Master
	}
	return store.Standby
}

// Run runs the service until ctx is done. It returns an error when the
// database cannot be replicated (a table without a primary key, say) or a
// fault hook fired.
func (s *Service) Run(ctx context.Context) error {
	defer s.cancelBase()
	admin, err := s.subscribeAdmin()
	if err != nil {
		return err
	}
	defer admin.Unsubscribe()
	if err := s.learnPeer(ctx); err != nil {
		return nil // ctx ended first
	}
	for {
		err := s.session(ctx)
		var gone *databaseGone
		if !errors.As(err, &gone) {
			return err
		}
		// As at a restart: the database at the path is opened anew, and
		// its identity decides (R9, R10) — an empty one is seeded from the
		// peer, a restored one reconciled.
		s.log.Warn().Str("db", gone.path).Str("reason", gone.why).Msg("the database file was deleted or replaced while open: opening it again")
		s.rep.emit(event.ReplBlocked, event.Blocked{Why: event.Because("R9: " + gone.Error() + "; opening it again")})
		s.board.set("starting", gone.Error()+"; opening it again")
	}
}

// session opens the database and replicates until ctx ends, a part
// fails, or the database file is deleted or replaced under it
// (*databaseGone: Run opens it again).
func (s *Service) session(ctx context.Context) error {
	if err := s.open(ctx); err != nil {
		return err
	}
	defer s.close()
	if err := s.subscribe(); err != nil {
		return err
	}
	defer s.subs.Unsubscribe()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	fail := func(err error) {
		if err != nil && ctx.Err() == nil {
			cancel(err)
		}
	}
	s.wg.Go(func() { fail(s.ship.run(ctx)) })
	s.wg.Go(func() { fail(s.recv.run(ctx)) })
	s.wg.Go(func() { fail(s.watchFile(ctx)) })
	fo := &failoverStatus{pair: s.cfg.Pair, node: s.cfg.Node, js: s.js, st: s.st, log: s.log, registry: s.registry,
		rep: s.rep, failures: s.met.failoverFailures}
	s.wg.Go(func() { fo.run(ctx) })
	s.ready.Store(true)
	s.log.Info().Str("peer", s.peer).Str("db", DatabasePath(s.cfg)).Msg("replicator running")
	<-ctx.Done()
	s.ready.Store(false)
	s.wg.Wait()
	s.snap.clean(true)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// learnPeer waits, when the peer's name is not configured, for the peer's
// heartbeats to say it; replication starts with it.
func (s *Service) learnPeer(ctx context.Context) error {
	s.mu.Lock()
	peer := s.peer
	s.mu.Unlock()
	if peer == "" {
		s.board.set("starting", "waiting for the peer's heartbeat to learn its name (hosts does not name it)")
		s.awaitingPeer.Store(true)
		defer s.awaitingPeer.Store(false)
	}
	peer, err := heartbeat.Peer(ctx, s.nc, s.cfg.Pair, s.cfg.Node, peer)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.peer = peer
	if s.peerDom == "" {
		s.peerDom = subject.ServerName(s.cfg.Pair, peer)
	}
	s.mu.Unlock()
	return nil
}

// open opens the store and the node's own batch stream.
func (s *Service) open(ctx context.Context) error {
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		return fmt.Errorf("replicator: %w", err)
	}
	st, err := s.openStore(ctx)
	if err != nil {
		return fmt.Errorf("replicator: %w", err)
	}
	file, err := os.Stat(DatabasePath(s.cfg))
	if err != nil {
		st.Close()
		return fmt.Errorf("replicator: %w", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		st.Close()
		return fmt.Errorf("replicator: %w", err)
	}
	s.sess.Lock()
	defer s.sess.Unlock()
	s.st, s.file = st, file
	base, cancelBase := context.WithCancel(s.base)
	s.cancelSess = cancelBase
	s.pause.st = st
	s.pause.load(info)
	s.rep.refused(st.Refused(), s.st.Refused())
	if s.js == nil {
		if s.js, err = jetstream.NewWithDomain(s.nc, s.domain); err != nil {
			st.Close()
			return err
		}
	}
	s.snap = &snapServer{pair: s.cfg.Pair, node: s.cfg.Node, peer: s.peer, master: s.master(), dir: s.dir, st: st, js: s.js,
		paused: s.pause.on, drop: s.dropSnap, rep: s.rep, log: s.log, base: base, snaps: map[string]*servedSnap{}}
	s.pieces = &pieceServer{pair: s.cfg.Pair, st: st, rep: s.rep, base: base}
	s.recv = &receiver{pair: s.cfg.Pair, node: s.cfg.Node, peer: s.peer, peerDom: s.peerDom, master: s.master(), nc: s.nc, st: st,
		log: s.log, rep: s.rep, met: s.met, board: s.board, pause: s.pause, groupTTL: s.groupTTL, hook: s.hook,
		ctl: s.ctl, resume: s.resume, wake: s.wake,
		fetch: &snapFetch{pair: s.cfg.Pair, node: s.cfg.Node, peer: s.peer, nc: s.nc, dir: s.dir, log: s.log, met: s.met}}
	s.ship = &shipper{pair: s.cfg.Pair, node: s.cfg.Node, peer: s.peer, master: s.master(), poll: s.poll, idlePoll: s.idlePoll,
		db: DatabasePath(s.cfg), st: st, js: s.js,
		log: s.log, rep: s.rep, met: s.met, board: s.board, base: base, wake: s.wake,
		paused: s.pause.on, follow: s.followPause, askResync: s.recv.askResync}
	s.recv.ship = s.ship
	return nil
}

// close ends a session: snapshots stop starting and those being made end
// (their context is cancelled first), then the database is closed.
func (s *Service) close() {
	s.snap.close()
	s.cancelSess()
	s.snap.wait()
	s.pieces.close()
	s.st.Close()
}

// openStore opens the application database. A table of database.tables
// that does not exist yet is waited for (the application creates its schema
// when it first starts, perhaps after us), and so is a database the
// application keeps locked past the busy timeout (SQLite's "database is
// locked": a long write transaction, or the lock taken to change the
// journal mode, which SQLite does not wait for) — each with the state
// "waiting" and a log line every tableWaitLog. Every other error is
// returned at once.
func (s *Service) openStore(ctx context.Context) (*store.SQLite, error) {
	var logged time.Time
	for {
		st, err := store.OpenSQLite(ctx, DatabasePath(s.cfg), s.side(), s.cfg.Database.Tables)
		var what string
		switch {
		case errors.Is(err, store.ErrNoTable):
			what = "waiting for the application to create its tables"
		case store.IsBusy(err):
			what = "waiting for the application to release its lock on the database"
		default:
			return st, err
		}
		s.board.set("waiting", err.Error())
		if time.Since(logged) >= tableWaitLog {
			s.log.Warn().Err(err).Msg(what)
			logged = time.Now()
		}
		if !clock.Sleep(ctx, tableWaitPoll) {
			return nil, ctx.Err()
		}
	}
}

// How often a missing table is looked for again, and logged.
const (
	tableWaitPoll = 500 * time.Millisecond
	tableWaitLog  = 10 * time.Second
)

// Ready reports whether the service is ready (for /readyz).
//
// Waiting for the peer's name is ready, as a lone node whose hosts name
// the peer is.
func (s *Service) Ready() error {
	if !s.ready.Load() && !s.awaitingPeer.Load() {
		return errors.New("replicator starting")
	}
	return nil
}

func poke(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

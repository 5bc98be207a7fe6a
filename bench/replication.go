//go:build linux

package main

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	_ "modernc.org/sqlite" // the application's side of the benchmark

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/services/replicator"
)

// The replication rows of SPEC §10. They run two replicators in this
// process, each on its own embedded NATS server (the real leafnode link on
// loopback) and its own SQLite file, as `tandem node` runs them; the
// application is this process writing the master's file.
func init() {
	benchmarks = append(benchmarks,
		benchmark{"repl-throughput", "rows/s master → standby: runs of 100,000 rows in transactions of 1,000, each run as its time per 10,000 rows", replThroughput},
		benchmark{"repl-lag", "replication lag at 1,000 rows/s for 10 s (10 rows every 10 ms): p99 of commit → applied", replLag},
		benchmark{"repl-snapshot", "resync of a standby from a snapshot of a 1 GiB database (BENCH_SNAPSHOT_MIB to change)", replSnapshot},
		benchmark{"repl-reconcile", "reconcile of two 1 GiB databases differing in 1 % of their rows, written on both sides (BENCH_SNAPSHOT_MIB to change)", replReconcile},
	)
}

// replPair is a master and a standby replicator with their databases.
type replPair struct {
	t      proctest.T
	dir    string
	srv    map[string]*natsnode.Server
	app    map[string]*sql.DB
	cancel map[string]context.CancelFunc
	done   map[string]chan error
	svc    map[string]*replicator.Service
}

type discard struct{}

func (discard) Emit(event.Envelope) {}

const replSchema = `CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, name TEXT, qty INTEGER, ts REAL)`

func newReplPair(t proctest.T) *replPair {
	p := &replPair{t: t, dir: t.TempDir(), srv: map[string]*natsnode.Server{}, app: map[string]*sql.DB{},
		cancel: map[string]context.CancelFunc{}, done: map[string]chan error{}, svc: map[string]*replicator.Service{}}
	a, err := natsnode.Start(natsnode.Options{Pair: "bench", Node: "a", Listen: "127.0.0.1:-1", LeafListen: "127.0.0.1:-1",
		StoreDir: filepath.Join(p.dir, "a-nats"), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("start a: %v", err)
	}
	t.Cleanup(a.Shutdown)
	b, err := natsnode.Start(natsnode.Options{Pair: "bench", Node: "b", Listen: "127.0.0.1:-1", Peer: a.LeafURL(), Solicit: true,
		StoreDir: filepath.Join(p.dir, "b-nats"), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("start b: %v", err)
	}
	t.Cleanup(b.Shutdown)
	p.srv["a"], p.srv["b"] = a, b
	deadline := time.Now().Add(waitLimit)
	for !a.Linked() || !b.Linked() {
		if time.Now().After(deadline) {
			t.Fatalf("the pair did not link")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, n := range []string{"a", "b"} {
		db, err := sql.Open("sqlite", "file:"+p.path(n)+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
		if err != nil {
			t.Fatalf("open %s: %v", n, err)
		}
		t.Cleanup(func() { db.Close() })
		p.app[n] = db
		p.exec(n, replSchema)
	}
	t.Cleanup(func() {
		for n := range p.cancel {
			p.stop(n)
		}
	})
	return p
}

func (p *replPair) path(n string) string { return filepath.Join(p.dir, n+".db") }

func (p *replPair) exec(n, q string, args ...any) {
	if _, err := p.app[n].Exec(q, args...); err != nil {
		p.t.Fatalf("%s: %s: %v", n, q, err)
	}
}

func (p *replPair) start(n string) {
	c := config.Default()
	c.Pair, c.Node, c.DataDir = "bench", n, filepath.Join(p.dir, n)
	c.Role = config.Master
	if n == "b" {
		c.Role = config.Standby
	}
	c.Hosts = map[string]string{"a": "a", "b": "b"}
	c.Database.Path = p.path(n)
	nc, err := p.srv[n].Connect("bench-replicator-" + n)
	if err != nil {
		p.t.Fatalf("connect: %v", err)
	}
	p.t.Cleanup(nc.Close)
	js, _ := jetstream.NewWithDomain(nc, p.srv[n].Domain())
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := audit.EnsureOriginStream(ctx, js, "bench", n, audit.Retention{}); err != nil {
		p.t.Fatalf("event stream: %v", err)
	}
	svc, err := replicator.New(replicator.Options{Config: c, Conn: nc, Events: discard{}, Log: zerolog.Nop()})
	if err != nil {
		p.t.Fatalf("replicator: %v", err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	p.svc[n], p.cancel[n], p.done[n] = svc, rcancel, make(chan error, 1)
	go func() { p.done[n] <- svc.Run(rctx) }()
}

func (p *replPair) stop(n string) {
	if c := p.cancel[n]; c != nil {
		c()
		<-p.done[n]
		delete(p.cancel, n)
	}
}

// waitSynced waits until the standby runs from a snapshot and the master
// accepted its database.
func (p *replPair) waitSynced(limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		b := p.svc["b"].Status()
		if b.State == "running" && b.In.DB != "" && b.In.DB != "fenced" && p.svc["a"].Status().In.DB == b.DB {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the standby did not sync within %v: %+v", limit, b)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (p *replPair) count(n string) int {
	var c int
	if err := p.app[n].QueryRow(`SELECT count(*) FROM items`).Scan(&c); err != nil {
		p.t.Fatalf("count: %v", err)
	}
	return c
}

// replThroughput writes 100,000 rows on the master in transactions of
// 1,000, as fast as the writer can, and times until the standby holds the
// last of them; each run's sample is that time per 10,000 rows (its
// average rate, so ≤ 1 s ⇔ ≥ 10,000 rows/s sustained over the run). The
// standby applies in bursts, a batch at a time, so a clock read at every
// 10,000th row would measure the bursts, not the rate.
func replThroughput(t proctest.T, e env) []row {
	p := newReplPair(t)
	p.start("a")
	p.start("b")
	p.waitSynced(waitLimit)
	const total, perTx, step = 100_000, 1_000, 10_000
	var samples []float64
	for run := range min(e.runs, 5) {
		base := run * total
		start := time.Now()
		for i := base; i < base+total; i += perTx {
			p.insertRange(i, i+perTx)
		}
		written := time.Since(start)
		deadline := time.Now().Add(5 * waitLimit)
		for p.count("b") < base+total {
			if time.Now().After(deadline) {
				t.Fatalf("run %d: the standby has %d of %d rows", run+1, p.count("b"), base+total)
			}
			time.Sleep(2 * time.Millisecond) // polling with a deadline
		}
		all := time.Since(start)
		samples = append(samples, all.Seconds()*step/total)
		fmt.Fprintf(e.log, "benchrun: repl-throughput run %d: %d rows written in %v, all on the standby after %v: %.0f rows/s end to end\n",
			run+1, total, written.Round(time.Millisecond), all.Round(time.Millisecond), float64(total)/all.Seconds())
	}
	return []row{{what: "replication: time per 10,000 rows, each run of 100,000 (≤ 1 s ⇔ ≥ 10,000 rows/s)", unit: seconds, samples: samples,
		target: &target{stat: "max", limit: 1}}}
}

// insertRange writes rows [from, to) on a's database in one transaction.
func (p *replPair) insertRange(from, to int) {
	tx, err := p.app["a"].Begin()
	if err != nil {
		p.t.Fatalf("begin: %v", err)
	}
	st, err := tx.Prepare(`INSERT INTO items(id, name, qty) VALUES(?, ?, ?)`)
	if err != nil {
		p.t.Fatalf("prepare: %v", err)
	}
	for j := from; j < to; j++ {
		if _, err := st.Exec(j, fmt.Sprintf("row %d", j), j); err != nil {
			p.t.Fatalf("insert: %v", err)
		}
	}
	st.Close()
	if err := tx.Commit(); err != nil {
		p.t.Fatalf("commit: %v", err)
	}
}

func replLag(t proctest.T, e env) []row {
	p := newReplPair(t)
	// The standby stamps each row when the apply inserts it (an
	// application trigger; applied changes are not captured again).
	p.exec("b", `CREATE TABLE IF NOT EXISTS arrivals(id INTEGER PRIMARY KEY, at REAL)`)
	p.exec("b", `CREATE TRIGGER IF NOT EXISTS arrive AFTER INSERT ON items BEGIN
		INSERT INTO arrivals VALUES(NEW.id, (julianday('now') - 2440587.5) * 86400.0); END`)
	p.start("a")
	p.start("b")
	p.waitSynced(waitLimit)
	const rate, seconds, perTick = 1000, 10, 10
	tick := time.NewTicker(time.Second * perTick / rate)
	defer tick.Stop()
	id := 0
	for id < rate*seconds {
		<-tick.C
		tx, err := p.app["a"].Begin()
		if err != nil {
			t.Fatalf("begin: %v", err)
		}
		ts := float64(time.Now().UnixNano()) / 1e9
		for j := 0; j < perTick; j++ {
			if _, err := tx.Exec(`INSERT INTO items(id, name, qty, ts) VALUES(?, 'x', 0, ?)`, id, ts); err != nil {
				t.Fatalf("insert: %v", err)
			}
			id++
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit: %v", err)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for p.count("b") < id {
		if time.Now().After(deadline) {
			t.Fatalf("the standby has %d of %d rows", p.count("b"), id)
		}
		time.Sleep(10 * time.Millisecond)
	}
	lags := p.lags()
	if len(lags) != id {
		t.Fatalf("%d arrivals for %d rows", len(lags), id)
	}
	sort.Float64s(lags)
	p99 := lags[int(math.Ceil(0.99*float64(len(lags))))-1]
	fmt.Fprintf(e.log, "benchrun: repl-lag: %d rows: p50 %.1f ms, p99 %.1f ms, max %.1f ms\n", len(lags),
		lags[len(lags)/2]*1e3, p99*1e3, lags[len(lags)-1]*1e3)
	return []row{
		{what: "replication lag at 1,000 rows/s, each row (commit → applied)", unit: seconds, samples: lags},
		{what: "replication lag at 1,000 rows/s: p99 of the rows above", unit: seconds, samples: []float64{p99},
			target: &target{stat: "max", limit: 0.1}},
	}
}

// lags reads each row's commit → arrival time from the standby (the
// master's commit stamp travels in the row).
func (p *replPair) lags() []float64 {
	rows, err := p.app["b"].Query(`SELECT a.at - i.ts FROM items i JOIN arrivals a USING (id)`)
	if err != nil {
		p.t.Fatalf("lags: %v", err)
	}
	defer rows.Close()
	var out []float64
	for rows.Next() {
		var l float64
		if err := rows.Scan(&l); err != nil {
			p.t.Fatalf("lags: %v", err)
		}
		out = append(out, max(l, 0))
	}
	return out
}

// snapshotMiB is the database size of the snapshot and reconcile rows.
func snapshotMiB(t proctest.T) int {
	mib := 1024
	if v := os.Getenv("BENCH_SNAPSHOT_MIB"); v != "" {
		if _, err := fmt.Sscan(v, &mib); err != nil || mib < 1 {
			t.Fatalf("BENCH_SNAPSHOT_MIB=%q", v)
		}
	}
	return mib
}

// replReconcile: a synced pair; while the standby is stopped, 0.5 % of the
// rows change on the master and another 0.5 % on the standby, and the
// standby loses its position (as a database restored or rebuilt does), so
// it must reconcile (R10). Timed from the standby's start until both
// databases hold both sides' changes.
func replReconcile(t proctest.T, e env) []row {
	mib := snapshotMiB(t)
	p := newReplPair(t)
	fillRows(t, p.app["a"], mib)
	p.start("a")
	p.start("b")
	p.waitSynced(10 * time.Minute)
	p.stop("b")
	p.exec("a", `UPDATE items SET qty = qty + 1 WHERE id % 200 = 0`)
	p.exec("b", `UPDATE items SET qty = qty + 2 WHERE id % 200 = 100`)
	p.exec("b", `DELETE FROM _tandem_pos`)
	want := p.sumBoth()
	start := time.Now()
	p.start("b")
	deadline := start.Add(10 * time.Minute)
	for p.sum("a") != want || p.sum("b") != want {
		if time.Now().After(deadline) {
			t.Fatalf("not reconciled within 10 min: sums %d and %d, want %d", p.sum("a"), p.sum("b"), want)
		}
		time.Sleep(200 * time.Millisecond)
	}
	took := time.Since(start)
	fmt.Fprintf(e.log, "benchrun: repl-reconcile: %d rows, 1 %% changed on both sides, reconciled in %v\n", p.count("a"), took.Round(time.Millisecond))
	what := fmt.Sprintf("reconcile of two %d MiB databases differing in 1 %% of the rows (standby start → both hold both sides' changes)", mib)
	return []row{{what: what, unit: seconds, samples: []float64{took.Seconds()}, target: &target{stat: "max", limit: 60}}}
}

// sum is the sum of qty on node n: it changes with every update of the
// reconcile benchmark.
func (p *replPair) sum(n string) int64 {
	var s int64
	if err := p.app[n].QueryRow(`SELECT sum(qty) FROM items`).Scan(&s); err != nil {
		p.t.Fatalf("sum: %v", err)
	}
	return s
}

// sumBoth is the sum both nodes reach once each has the other's changes
// (their updates touch different rows, each adding to qty).
func (p *replPair) sumBoth() int64 {
	var base int64
	if err := p.app["a"].QueryRow(`SELECT sum(qty - (id % 200 = 0)) FROM items`).Scan(&base); err != nil {
		p.t.Fatalf("sum: %v", err)
	}
	return base + p.extra("a", 0, 1) + p.extra("b", 100, 2)
}

// extra is what node n's updates (rows id % 200 = rem, by add) added.
func (p *replPair) extra(n string, rem, add int) int64 {
	var c int64
	if err := p.app[n].QueryRow(`SELECT count(*) FROM items WHERE id % 200 = ?`, rem).Scan(&c); err != nil {
		p.t.Fatalf("count: %v", err)
	}
	return c * int64(add)
}

func replSnapshot(t proctest.T, e env) []row {
	mib := snapshotMiB(t)
	p := newReplPair(t)
	fillRows(t, p.app["a"], mib)
	var size int64
	if fi, err := os.Stat(p.path("a")); err == nil {
		size = fi.Size()
	}
	p.start("a")
	start := time.Now()
	p.start("b")
	p.waitSynced(10 * time.Minute)
	took := time.Since(start)
	fmt.Fprintf(e.log, "benchrun: repl-snapshot: %.0f MiB database, %d rows: resync (VACUUM INTO, checksummed transfer, restore) in %v\n",
		float64(size)/(1<<20), p.count("b"), took.Round(time.Millisecond))
	what := fmt.Sprintf("snapshot resync of a %d MiB database (request → restored on the standby)", size>>20)
	return []row{{what: what, unit: seconds, samples: []float64{took.Seconds()}, target: &target{stat: "max", limit: 60}}}
}

// fillRows writes about mib MiB of rows (1 KiB each) into db.
func fillRows(t proctest.T, db *sql.DB, mib int) {
	pad := strings.Repeat("x", 1000)
	const perTx = 10_000
	rows := mib * 1024
	for i := 0; i < rows; i += perTx {
		tx, err := db.Begin()
		if err != nil {
			t.Fatalf("fill: %v", err)
		}
		if _, err := tx.Exec(`WITH RECURSIVE c(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM c WHERE x + 1 < ?)
			INSERT INTO items(id, name, qty) SELECT x, ?, x FROM c`, i, min(i+perTx, rows), pad); err != nil {
			tx.Rollback() //nolint:errcheck
			t.Fatalf("fill: %v", err)
		}
		if err := tx.Commit(); err != nil {
			t.Fatalf("fill: %v", err)
		}
	}
}

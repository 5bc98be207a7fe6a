package main

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// The fault suite: two real tandem node processes, each in a network
// namespace of its own joined by a veth pair (the pair's link), an
// application writing on both nodes' databases every 20 ms and recording
// every write that committed, and a schedule of faults: kill -9 of either
// node, SIGSTOP past the heartbeat timeout, a silent link cut (both ways or
// one way) and heal, the master's database replaced by an empty one or
// restored from an older copy, the standby's database deleted, pause and
// resume across a restart, ALTER TABLE … ADD COLUMN during writes. After
// every fault `tandem repl verify` must come clean; at the end every
// acknowledged write is on both nodes (or in both conflict tables), the
// number of snapshots is bounded, and no two nodes were ever active in one
// epoch.
//
// TestReplicationFaultSchedule runs every fault once, in a fixed order (make
// test). TestReplicationFaultSoak runs rounds of faults drawn at random for
// $TANDEM_SOAK (a Go duration; make soak) and is skipped without it.

// TestReplicationFaultSchedule runs every fault of the suite once.
func TestReplicationFaultSchedule(t *testing.T) {
	r := startFaultRun(t, 1)
	for _, k := range faultKinds {
		for _, v := range k.variants {
			r.step(k, v)
		}
	}
	r.finish()
}

// TestReplicationFaultSoak runs random faults for $TANDEM_SOAK and prints
// what it did; $TANDEM_SOAK_SEED repeats a run.
func TestReplicationFaultSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("TANDEM_SOAK"))
	if err != nil || d <= 0 {
		t.Skip("a long run: set TANDEM_SOAK to a duration (make soak)")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TANDEM_SOAK_SEED"); s != "" {
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("TANDEM_SOAK_SEED: %v", err)
		}
	}
	kinds := soakKinds(t, os.Getenv("TANDEM_SOAK_FAULTS"))
	t.Logf("soak for %v, seed %d (TANDEM_SOAK_SEED=%d repeats the schedule), %d kinds of fault", d, seed, seed, len(kinds))
	r := startFaultRun(t, seed)
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if r.rounds%5 == 0 {
			r.takeBackup()
		}
		k := kinds[r.rng.IntN(len(kinds))]
		r.step(k, k.variants[r.rng.IntN(len(k.variants))])
	}
	r.finish()
}

// TestReplicationPauseRestart repeats "pause, restart the standby, resume"
// $TANDEM_PAUSE_ROUNDS times (default 2), with the timing varied: once, 1
// run in 16 of an earlier suite, the nodes did not converge after it.
func TestReplicationPauseRestart(t *testing.T) {
	rounds := 2
	if s := os.Getenv("TANDEM_PAUSE_ROUNDS"); s != "" {
		var err error
		if rounds, err = strconv.Atoi(s); err != nil {
			t.Fatalf("TANDEM_PAUSE_ROUNDS: %v", err)
		}
	}
	r := startFaultRun(t, uint64(time.Now().UnixNano()))
	k := faultKindNamed(t, "pause, a restart of the standby, resume")
	for i := 0; i < rounds; i++ {
		r.step(k, k.variants[i%len(k.variants)])
	}
	r.finish()
}

// soakKinds are the kinds of fault whose name matches the regular
// expression expr ($TANDEM_SOAK_FAULTS, to chase one failure with the faults
// that lead to it), every kind when expr is empty.
func soakKinds(t *testing.T, expr string) []faultKind {
	if expr == "" {
		return faultKinds
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		t.Fatalf("TANDEM_SOAK_FAULTS: %v", err)
	}
	var out []faultKind
	for _, k := range faultKinds {
		if re.MatchString(k.name) {
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		t.Fatalf("TANDEM_SOAK_FAULTS %q matches no fault", expr)
	}
	return out
}

func faultKindNamed(t *testing.T, name string) faultKind {
	for _, k := range faultKinds {
		if k.name == name {
			return k
		}
	}
	t.Fatalf("no fault %q", name)
	return faultKind{}
}

// faultKind is one kind of fault; its variants differ in the node it
// strikes or the direction of a cut.
type faultKind struct {
	name     string
	variants []string
	dbLoss   bool // a database file is lost: a snapshot or reconcile may follow
	run      func(r *faultRun, variant string)
}

var faultKinds = []faultKind{
	{name: "kill -9", variants: []string{master, standby}, run: (*faultRun).kill9},
	{name: "SIGSTOP past the heartbeat timeout", variants: []string{master, standby}, run: (*faultRun).freeze},
	{name: "silent link cut and heal", variants: []string{"both ways"}, run: (*faultRun).cut},
	{name: "one-way link cut and heal", variants: []string{master + "→" + standby, standby + "→" + master}, run: (*faultRun).cut},
	{name: "the master's database replaced by an empty one", variants: []string{master}, dbLoss: true, run: (*faultRun).emptyMaster},
	{name: "the master's database restored from an older copy", variants: []string{master}, dbLoss: true, run: (*faultRun).restoreMaster},
	{name: "the standby's database deleted", variants: []string{standby}, dbLoss: true, run: (*faultRun).deleteStandby},
	{name: "pause, a restart of the standby, resume", variants: []string{"SIGTERM", "kill -9", "kill -9, resume while it starts"}, run: (*faultRun).pauseRestart},
	{name: "ALTER TABLE … ADD COLUMN during writes", variants: []string{master}, run: (*faultRun).alter},
}

// faultRun is one run of the suite: the pair, the application and the
// record of what was done.
type faultRun struct {
	t      *testing.T
	p      *proctest.Pair
	app    *faultApp
	rng    *rand.Rand
	stop   func()
	dir    string
	backup string // a copy of the master's database, "" when none is kept

	rounds     int
	kinds      map[string]int
	resumedOne int // resumes only the master answered
	dbLoss     int
	columns    int
	started    time.Time
}

// startFaultRun starts the pair in network namespaces with the table on
// the master only (the first install) and the application writing.
func startFaultRun(t *testing.T, seed uint64) *faultRun {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	if err := proctest.NetnsAvailable(); err != nil {
		t.Skipf("the fault suite runs the nodes in network namespaces: %v", err)
	}
	dir := t.TempDir()
	db := map[string]string{master: filepath.Join(dir, master+".db"), standby: filepath.Join(dir, standby+".db")}
	app := &faultApp{t: t, db: db, acked: map[int]string{}}
	r := &faultRun{t: t, app: app, dir: dir, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		kinds: map[string]int{}, started: time.Now()}
	app.sql(master, r.createItems())
	for i := 1; i <= 100; i++ {
		app.write(master, i)
	}
	r.p, _ = proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit, Netns: true,
		Extra: func(n string) map[string]any { return map[string]any{"database.path": db[n]} },
	})
	app.p = r.p
	r.stop = app.writeOn(r.rng.Uint64(), master, standby)
	app.converged("the first start")
	return r
}

// step runs one fault, waits until the pair has one active node and the
// databases converged, and counts it.
func (r *faultRun) step(k faultKind, variant string) {
	r.t.Helper()
	name := k.name + " (" + variant + ")"
	r.t.Logf("round %d: %s", r.rounds+1, name)
	k.run(r, variant)
	r.settle(name)
	r.app.converged(name)
	r.rounds++
	r.kinds[name]++
	if k.dbLoss {
		r.dbLoss++
	}
}

// settle waits until both nodes run, hear each other, and exactly one of
// them is active.
func (r *faultRun) settle(after string) {
	r.t.Helper()
	r.p.WaitStatus("one active node after "+after, 3*waitLimit, func(s proctest.Status) bool {
		return s.Stable(master) || s.Stable(standby)
	})
}

// pauseLength is how long a fault that must outlast the heartbeat timeout
// lasts: the timeout and up to two seconds more.
func (r *faultRun) pauseLength() time.Duration {
	return testHeartbeat.Timeout + time.Duration(r.rng.Int64N(int64(2*time.Second)))
}

// kill9 kills node's process; the application writes on while it is down
// for up to a second, then the node restarts.
func (r *faultRun) kill9(node string) {
	r.p.Kill9(node)
	time.Sleep(time.Duration(r.rng.Int64N(int64(time.Second)))) // the outage: writes go on in both files
	r.p.Restart(node)
}

// freeze stops node's process with SIGSTOP past the heartbeat timeout (the
// peer takes over if node was active: both active once it resumes, F7),
// then resumes it.
func (r *faultRun) freeze(node string) {
	r.p.Stop(node)
	time.Sleep(r.pauseLength()) // the freeze
	r.p.Cont(node)
}

// cut drops the link's packets silently, both ways or one way ("a→b": what
// a sends is lost), past the heartbeat timeout, then heals it.
func (r *faultRun) cut(variant string) {
	if from, to, ok := strings.Cut(variant, "→"); ok {
		r.p.CutOneWay(from, to)
	} else {
		r.p.Cut()
	}
	time.Sleep(r.pauseLength()) // the partition: both sides write
	r.p.Heal()
}

// createItems is the application's current schema of its table: a
// reinstalled node gets the schema the application has now (after every
// ALTER TABLE of the run).
func (r *faultRun) createItems() string {
	cols := "id INTEGER PRIMARY KEY, v TEXT"
	for i := 1; i <= r.columns; i++ {
		cols += fmt.Sprintf(", note%d TEXT DEFAULT 'none'", i)
	}
	return "CREATE TABLE items(" + cols + ")"
}

func (r *faultRun) emptyMaster(string) {
	r.app.pause(func() {
		r.p.Kill9(master)
		r.app.remove(master)
		r.app.sql(master, r.createItems())
	})
	r.p.Restart(master)
	r.backup = "" // its rows predate a lineage the master no longer has: take a new one
}

// takeBackup copies the master's database (an operator's backup) and lets
// the application write after it, on both nodes.
func (r *faultRun) takeBackup() {
	r.t.Helper()
	r.backup = filepath.Join(r.dir, "backup.db")
	os.Remove(r.backup)
	r.app.sql(master, `VACUUM INTO '`+r.backup+`'`)
}

func (r *faultRun) restoreMaster(string) {
	if r.backup == "" {
		r.takeBackup()
		time.Sleep(500 * time.Millisecond) // writes after the backup, on both
		r.app.converged("writes after the backup")
	}
	r.app.pause(func() {
		r.p.Kill9(master)
		r.app.remove(master)
		if err := os.Rename(r.backup, r.app.db[master]); err != nil {
			r.t.Fatal(err)
		}
	})
	r.backup = ""
	r.p.Restart(master)
}

func (r *faultRun) deleteStandby(string) {
	r.app.pause(func() {
		r.p.Kill9(standby)
		r.app.remove(standby)
	})
	r.p.Restart(standby)
}

// pauseRestart pauses replication, restarts the standby (stopped with
// SIGTERM, a software update, or killed), and resumes: each step at once or
// after a random delay, or ("resume while it starts") the resume sent while
// the standby is starting, when it may not answer yet.
func (r *faultRun) pauseRestart(how string) {
	r.app.cli("repl", "pause", "--pair", "p1")
	time.Sleep(time.Duration(r.rng.Int64N(int64(time.Second))))
	if how == "SIGTERM" {
		r.p.Term(standby)
	} else {
		r.p.Kill9(standby)
	}
	if how == "kill -9, resume while it starts" {
		delay := time.Duration(r.rng.Int64N(int64(time.Second)))
		resumed := make(chan proctest.CLIResult, 1)
		go func() {
			time.Sleep(delay)
			resumed <- r.p.CLI("repl", "resume", "--pair", "p1", "--server", r.p.Servers())
		}()
		r.p.StartNode(standby)
		r.resumed(<-resumed)
		return
	}
	r.p.StartNode(standby)
	time.Sleep(time.Duration(r.rng.Int64N(int64(time.Second))))
	r.resumed(r.p.CLI("repl", "resume", "--pair", "p1", "--server", r.p.Servers()))
}

// resumed checks the outcome of tandem repl resume: it succeeded, through
// both nodes or through the master only (the standby, starting, did not
// answer yet: it must follow the master by itself).
func (r *faultRun) resumed(out proctest.CLIResult) {
	r.t.Helper()
	if out.Code != 0 {
		r.t.Fatalf("tandem repl resume: exit %d: %s%s", out.Code, out.Stdout, out.Stderr)
	}
	if strings.Contains(out.Stderr, "only one node answered") {
		r.resumedOne++
	}
}

// alter adds a column on the master while both nodes write.
func (r *faultRun) alter(string) {
	r.columns++
	col := fmt.Sprintf("note%d", r.columns)
	r.app.sql(master, `ALTER TABLE items ADD COLUMN `+col+` TEXT DEFAULT 'none'`)
	r.app.sql(master, `UPDATE items SET `+col+` = 'after the alter' WHERE id = 1`)
	// A backup from before the change has another schema: restoring it is
	// a schema change of its own, not what the restore fault tests.
	r.backup = ""
}

// finish stops the application, checks the invariants and reports.
func (r *faultRun) finish() {
	r.t.Helper()
	r.stop()
	r.app.converged("the end")
	r.app.checkAcked()
	snaps := 0
	for _, n := range []string{master, standby} {
		log, _ := os.ReadFile(r.p.Node(n).LogPath)
		snaps += strings.Count(string(log), "re-synced from the master's snapshot")
	}
	// The first start and each lost database may take one snapshot; a
	// retry after a kill in the middle of one may take another.
	if limit := 2 * (1 + r.dbLoss); snaps > limit {
		r.t.Errorf("%d snapshots for %d lost databases (at most %d): a resync loop", snaps, r.dbLoss, limit)
	}
	checkInvariants(r.t, r.p)
	activations := map[string]bool{}
	for _, b := range r.p.Watch().All() {
		if b.State == "active" {
			activations[fmt.Sprintf("%s/%d", b.Node, b.Epoch)] = true
		}
	}
	kinds := make([]string, 0, len(r.kinds))
	for k, n := range r.kinds {
		kinds = append(kinds, fmt.Sprintf("%d × %s", n, k))
	}
	sort.Strings(kinds)
	r.t.Logf("fault suite: %d rounds in %v, %d acknowledged writes (%d rows), %d activations, %d snapshots, %d conflicts recorded, %d resumes only the master answered, 0 failures; faults:\n  %s",
		r.rounds, time.Since(r.started).Round(time.Second), r.app.writes, len(r.app.acked), len(activations), snaps, r.app.conflicts(), r.resumedOne,
		strings.Join(kinds, "\n  "))
}

// faultApp is the application of the fault suite: it writes on both
// nodes' databases and records every write that committed.
type faultApp struct {
	t  *testing.T
	p  *proctest.Pair
	db map[string]string

	mu     sync.Mutex // guards the fields below; held while a database file is replaced
	acked  map[int]string
	next   int
	writes int // writes that committed (inserts and updates)
}

func (f *faultApp) open(node string) *sql.DB {
	d, err := sql.Open("sqlite", "file:"+f.db[node]+"?_pragma=busy_timeout(10000)")
	if err != nil {
		f.t.Fatal(err)
	}
	return d
}

func (f *faultApp) sql(node, q string) {
	f.t.Helper()
	d := f.open(node)
	defer d.Close()
	if _, err := d.Exec(q); err != nil {
		f.t.Fatalf("%s: %s: %v", node, q, err)
	}
}

// write writes row id on node (a new row, or a new value of an old one)
// and records it once committed.
func (f *faultApp) write(node string, id int) {
	d := f.open(node)
	defer d.Close()
	f.writes++
	v := fmt.Sprintf("%s-%d-%d", node, id, f.writes)
	if _, err := d.Exec(`INSERT INTO items(id, v) VALUES(?, ?) ON CONFLICT(id) DO UPDATE SET v = excluded.v`, id, v); err == nil {
		f.acked[id] = v
	} else {
		f.writes--
	}
}

// writeOn writes on each node in turn every 20 ms until stopped: mostly new
// rows, and one write in five a new value of one of the first 100 rows (on
// both nodes during a partition: conflicts, R3).
func (f *faultApp) writeOn(seed uint64, nodes ...string) (stop func()) {
	done, ended := make(chan struct{}), make(chan struct{})
	rng := rand.New(rand.NewPCG(seed, seed))
	f.next = 1000
	go func() {
		defer close(ended)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			f.mu.Lock()
			id := f.next + 1
			if rng.IntN(5) == 0 {
				id = 1 + rng.IntN(100)
			} else {
				f.next++
			}
			f.write(nodes[i%len(nodes)], id)
			f.mu.Unlock()
		}
	}()
	return func() { close(done); <-ended }
}

// pause runs fn with the writer held once both databases are equal: a
// database file is about to be lost, and a write that never left it would
// be lost with it (rightly: the disk is gone).
func (f *faultApp) pause(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verify("before a database is lost")
	fn()
}

func (f *faultApp) remove(node string) {
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(f.db[node] + suffix)
	}
}

func (f *faultApp) cli(args ...string) {
	f.t.Helper()
	r := f.p.CLI(append(args, "--server", f.p.Servers())...)
	if r.Code != 0 {
		f.t.Fatalf("tandem %s: exit %d: %s%s", strings.Join(args, " "), r.Code, r.Stdout, r.Stderr)
	}
}

// converged waits until tandem repl verify is clean, with the writer held.
func (f *faultApp) converged(after string) {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.verify(after)
}

// verify waits until tandem repl verify is clean; the caller holds mu.
func (f *faultApp) verify(after string) {
	f.t.Helper()
	deadline := time.Now().Add(3 * waitLimit)
	for {
		r := f.p.CLI("repl", "verify", "--pair", "p1", "--attempts", "1", "--server", f.p.Servers())
		if r.Code == 0 {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("after %s: the databases did not converge: %s%s\n(their copies are kept in %s)", after, r.Stdout, r.Stderr, f.keep())
		}
		time.Sleep(500 * time.Millisecond) // polling with a deadline
	}
}

// checkAcked: every acknowledged write is on both nodes, or its value is
// in both nodes' conflict tables.
func (f *faultApp) checkAcked() {
	f.t.Helper()
	for _, node := range []string{master, standby} {
		d := f.open(node)
		missing := 0
		for id, v := range f.acked {
			var got sql.NullString
			d.QueryRow(`SELECT v FROM items WHERE id = ?`, id).Scan(&got) //nolint:errcheck
			if got.String == v {
				continue
			}
			var n int
			// A loser row maps each column to its SQL literal: {"id":"7","v":"'x'"}.
			d.QueryRow(`SELECT count(*) FROM _tandem_conflict WHERE tbl = 'items' AND instr(loser_row, ?) > 0`, `"v":"'`+v+`'"`).Scan(&n) //nolint:errcheck
			if n == 0 {
				missing++
				if missing <= 5 {
					f.t.Errorf("%s: acknowledged write %d = %q is neither there (%q) nor in the conflict table", node, id, v, got.String)
				}
			}
		}
		d.Close()
		if missing > 0 {
			f.t.Errorf("%s: %d of %d acknowledged writes lost (kept in %s)", node, missing, len(f.acked), f.keep())
		}
	}
}

// conflicts is the number of rows in the master's conflict table.
func (f *faultApp) conflicts() int {
	d := f.open(master)
	defer d.Close()
	var n int
	d.QueryRow(`SELECT count(*) FROM _tandem_conflict`).Scan(&n) //nolint:errcheck
	return n
}

// keep copies both databases (with their WAL) where a failed run can be
// inspected, and returns the folder.
func (f *faultApp) keep() string {
	dir, err := os.MkdirTemp("", "tandem-fault-dbs-")
	if err != nil {
		return err.Error()
	}
	for _, node := range []string{master, standby} {
		for _, suffix := range []string{"", "-wal"} {
			if b, err := os.ReadFile(f.db[node] + suffix); err == nil {
				_ = os.WriteFile(filepath.Join(dir, node+".db"+suffix), b, 0o644)
			}
		}
	}
	return dir
}

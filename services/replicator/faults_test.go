package replicator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// acked records writes the application committed, to check at the end that
// every one is on both nodes (STYLE §15).
type acked map[int]string

func (w *world) write(node string, id int, name string, a acked) {
	w.exec(node, `INSERT INTO items VALUES(?, ?, 0) ON CONFLICT(id) DO UPDATE SET name = excluded.name`, id, name)
	a[id] = name
}

func (w *world) checkAcked(a acked) {
	w.t.Helper()
	for _, n := range []string{"a", "b"} {
		for id, name := range a {
			if got := w.query(n, `SELECT coalesce((SELECT name FROM items WHERE id = ?), '<missing>')`, id); got != name {
				w.t.Errorf("%s: row %d is %q, want %q", n, id, got, name)
			}
		}
	}
}

// A replicator that starts while the link is down cannot read the peer's
// batch stream; its status says so, instead of an unexplained "starting"
// with no reason and nothing logged (TestMasterDatabaseLost at load 25–45:
// the leaf link dropped when a process stalled for 3 s, and the master's
// replicator "never reported running"; soak run 5, round 106). It runs
// once the link is back.
func TestStartWhileLinkDown(t *testing.T) {
	w := newWorld(t)
	w.pair.Cut()
	w.start("a")
	w.start("b")
	w.waitFor("a's status says why it is not running", func() bool {
		st := w.nodes["a"].svc.Status()
		return st.State == "starting" && strings.Contains(st.Reason, "cannot read b's batches")
	})
	w.pair.Heal()
	w.waitSynced()
	w.waitFor("a running", func() bool {
		st := w.nodes["a"].svc.Status()
		return st.State == "running" && st.Reason == ""
	})
}

// R2, R5: a cut link with writes on both sides; after the heal both
// converge and verify is clean; every acknowledged write is on both.
func TestCutAndHeal(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	w.write("a", 1, "a before", a)
	w.waitFor("row 1 on b", func() bool { return strings.Contains(w.items("b"), "a before") })
	w.pair.Cut()
	for i := 0; i < 50; i++ {
		w.write("a", 100+i, fmt.Sprintf("a%d", i), a)
		w.write("b", 200+i, fmt.Sprintf("b%d", i), a)
	}
	w.pair.Heal()
	w.pair.WaitLinked(t, waitLimit)
	w.waitConverged()
	w.checkAcked(a)
	if n := rowCount(w, "a", "items"); n != 101 {
		t.Fatalf("%d rows after the heal, want 101", n)
	}
}

// R4: pause, writes, restart of the replicator (pause is persisted), resume:
// nothing is lost.
func TestPauseRestartResume(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	w.admin("a", api.VerbReplPause, api.ReplRequest{})
	a := acked{}
	for i := 0; i < 20; i++ {
		w.write("a", i, fmt.Sprintf("a%d", i), a)
		w.write("b", 100+i, fmt.Sprintf("b%d", i), a)
	}
	w.stop("b")
	w.start("b")
	w.waitFor("b paused after its restart", func() bool { return w.nodes["b"].svc.Status().State == "paused" })
	if n := rowCount(w, "b", "items"); n != 20 {
		t.Fatalf("b has %d rows while paused, want only its own 20", n)
	}
	if _, ok := w.nodes["a"].sink.Find(event.ReplPaused, "R4"); !ok {
		t.Fatal("no pause event")
	}
	w.admin("a", api.VerbReplResume, api.ReplRequest{})
	w.waitConverged()
	w.checkAcked(a)
}

// R9: the replicator dies in the middle of applying a group; after a
// restart no change is applied twice and none is missing. An application
// trigger on b (items is the only replicated table) counts what the apply
// does to the table.
func TestCrashMidApply(t *testing.T) {
	w := newWorld(t)
	for _, n := range []string{"a", "b"} {
		w.exec(n, `CREATE TABLE applied(n INTEGER PRIMARY KEY AUTOINCREMENT, id INTEGER, op TEXT)`)
		w.exec(n, `CREATE TRIGGER count_ins AFTER INSERT ON items BEGIN INSERT INTO applied(id, op) VALUES(NEW.id, 'i'); END`)
		w.exec(n, `CREATE TRIGGER count_upd AFTER UPDATE ON items BEGIN INSERT INTO applied(id, op) VALUES(NEW.id, 'u'); END`)
	}
	only := func(o *replicator.Options) { o.Config.Database.Tables = []string{"items"} }
	w.nodes["a"].edit = only
	w.start("a")
	w.nodes["b"].edit = only
	w.start("b")
	w.waitSynced()
	w.exec("b", `DELETE FROM applied`)
	w.stop("b")
	// One transaction of 200 inserts on a; b dies at its 120th change.
	tx, err := w.nodes["a"].app.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 200; i++ {
		if _, err := tx.Exec(`INSERT INTO items VALUES(?, 'x', ?)`, i, i); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("crash")
	seen := 0
	w.nodes["b"].edit = func(o *replicator.Options) {
		only(o)
		o.BeforeApply = func(uint64) error {
			if seen++; seen == 120 {
				return crash
			}
			return nil
		}
	}
	w.start("b")
	if err := w.waitExit("b"); !errors.Is(err, crash) {
		t.Fatalf("b ended with %v, want the crash", err)
	}
	w.stop("b")
	if n := rowCount(w, "b", "items"); n != 0 {
		t.Fatalf("%d rows of the crashed group on b", n)
	}
	w.nodes["b"].edit = only
	w.start("b")
	w.waitFor("200 rows on b", func() bool { return rowCount(w, "b", "items") == 200 })
	w.exec("a", `UPDATE items SET name = 'y' WHERE id = 7`)
	w.waitFor("the update on b", func() bool { return w.query("b", `SELECT name FROM items WHERE id = 7`) == "y" })
	if got := w.query("b", `SELECT count(*) || '/' || count(DISTINCT id) || '/' || sum(op = 'u') FROM applied`); got != "201/200/1" {
		t.Fatalf("apply counts (changes/distinct/updates) %s, want 201/200/1: a change applied twice or missing", got)
	}
}

// R9, R1: a standby restored from an old backup is detected and re-synced.
func TestBackupRestoreDetected(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	w.exec("b", `INSERT INTO items VALUES(1, 'b early', 0)`)
	w.waitFor("row 1 on a", func() bool { return w.items("a") != "" })
	backup := w.nodes["b"].path + ".bak"
	w.exec("b", `VACUUM INTO '`+backup+`'`)
	a := acked{}
	for i := 2; i < 10; i++ {
		w.write("b", i, "b later", a)
		w.write("a", 100+i, "a later", a)
	}
	w.waitConverged()
	before := w.nodes["b"].svc.Status().DB
	w.stop("b")
	w.nodes["b"].app.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(w.nodes["b"].path + suffix)
	}
	if err := os.Rename(backup, w.nodes["b"].path); err != nil {
		t.Fatal(err)
	}
	w.openApp("b")
	if n := rowCount(w, "b", "items"); n != 1 {
		t.Fatalf("backup has %d rows", n)
	}
	w.start("b")
	w.waitFor("backup detected", func() bool {
		_, ok := w.nodes["b"].sink.Find(event.ReplSnapshot, "backup-detected")
		return ok
	})
	w.waitSynced()
	w.waitConverged()
	w.checkAcked(a)
	if w.nodes["b"].svc.Status().DB == before {
		t.Fatal("b kept its database id")
	}
	w.write("b", 50, "after", a)
	w.waitFor("b's new row on a", func() bool { return strings.Contains(w.items("a"), "50:after") })
}

// §9: malformed batches, unknown tables and a wrong database id in the
// peer's stream are rejected and reported; nothing is applied; replication
// goes on.
func TestBadInput(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	w.exec("b", `INSERT INTO items VALUES(1, 'good', 0)`)
	// The status says the row is applied a moment after it is visible;
	// the batches below start at that position (one read too early made
	// the unknown table's batch a change already applied, skipped).
	w.waitFor("row 1 on a, in a's status", func() bool {
		return w.items("a") == "1:good:0" && w.nodes["a"].svc.Status().In.Applied >= 1
	})
	st := w.nodes["a"].svc.Status()
	js, err := jetstream.NewWithDomain(w.nodes["b"].nc, w.pair.Server("b").Domain())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	subj := subject.ReplChanges(pairName, "b")
	good := func(db, table string) []byte {
		b := wire.Batch{V: 1, Pair: pairName, Node: "b", DB: db, Start: st.In.Applied, From: st.In.Applied, To: st.In.Applied + 1, Final: true,
			Changes: []wire.Change{{Seq: st.In.Applied + 1, Table: table, Op: "i", PK: "666", Row: json.RawMessage(`{"id":"666"}`), S: 9}}}
		data, _ := b.Encode()
		return data
	}
	for _, data := range [][]byte{
		[]byte(`{not json`),
		[]byte(`{"v":1,"pair":"p","node":"b","db":"x","from":5,"to":1,"changes":[]}`),
		good("wrongdb", "items"),
		good(st.In.DB, "nosuch"),
	} {
		if _, err := js.Publish(ctx, subj, data); err != nil {
			t.Fatal(err)
		}
	}
	w.waitFor("4 rejections on a", func() bool { return w.nodes["a"].sink.Count(event.InputRejected) >= 4 })
	for _, want := range []string{"wrong database id", "unknown table", "invalid batch"} {
		if _, ok := w.nodes["a"].sink.Find(event.InputRejected, want); !ok {
			t.Errorf("no rejection naming %q", want)
		}
	}
	w.exec("b", `INSERT INTO items VALUES(2, 'good', 0)`)
	w.waitFor("row 2 on a", func() bool { return w.items("a") == "1:good:0,2:good:0" })
	if got := w.query("a", `SELECT count(*) FROM items WHERE id = 666`); got != "0" {
		t.Fatal("a refused batch was applied")
	}
	w.waitConverged()
}

// R8: an activation event of the node's monitor is written into the
// database and replicated; while the database is locked it is written as
// soon as it is free.
func TestFailoverStatus(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	publish := func(node string, epoch uint64) {
		w.publishMonitorEvent(node, event.NodeActivated, epoch, event.Activation{Why: event.Because("test")})
	}
	status := `SELECT coalesce((SELECT active || '@' || epoch FROM _tandem_failover_status), '')`
	publish("a", 2)
	w.waitFor("a@2 on both", func() bool { return w.query("a", status) == "a@2" && w.query("b", status) == "a@2" })
	// b's database is locked (by another writer) when b activates.
	lock, err := w.nodes["b"].app.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(context.Background(), `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	publish("b", 3)
	w.waitFor("a failed attempt to write while locked", func() bool {
		return metricValue(t, w.nodes["b"], "tandem_repl_failover_write_failures_total") >= 1
	})
	if w.nodes["b"].sink.Count(event.ReplStatusWritten) != 0 {
		t.Fatal("written while the database was locked")
	}
	if _, err := lock.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	lock.Close()
	w.waitFor("b@3 on both", func() bool { return w.query("a", status) == "b@3" && w.query("b", status) == "b@3" })
	if _, ok := w.nodes["b"].sink.Find(event.ReplStatusWritten, `"epoch":3`); !ok {
		t.Fatal("no status-written event")
	}
}

// publishMonitorEvent stores an event of node's monitor in its event stream.
func (w *world) publishMonitorEvent(node, typ string, epoch uint64, data any) {
	w.t.Helper()
	n := w.nodes[node]
	js, _ := jetstream.NewWithDomain(n.nc, w.pair.Server(node).Domain())
	e, err := event.New(pairName, node, "monitor", typ, epoch, time.Now(), data)
	if err != nil {
		w.t.Fatal(err)
	}
	b, _ := e.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := js.Publish(ctx, e.Subject(), b); err != nil {
		w.t.Fatal(err)
	}
}

// R8 with event.IsActivation: the taking node's switchover.completed
// (to itself) is not an activation of its own — its node.activated of the
// same epoch is — so the status is written once per activation.
func TestFailoverStatusOncePerActivation(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	status := `SELECT coalesce((SELECT active || '@' || epoch FROM _tandem_failover_status), '')`
	w.publishMonitorEvent("a", event.SwitchoverCompleted, 5, event.SwitchoverDone{Why: event.Because("a is active in epoch 5"), To: "a", Epoch: 5})
	w.publishMonitorEvent("a", event.NodeActivated, 6, event.Activation{Why: event.Because("F8: switchover from b")})
	// The consumer takes one event at a time, in order: once epoch 6 is
	// written, the switchover event was handled.
	w.waitFor("a@6 on a", func() bool { return w.query("a", status) == "a@6" })
	// The event follows the write: wait for the activation's, which comes
	// after any the switchover would have caused.
	w.waitFor("epoch 6's status-written event", func() bool {
		_, ok := w.nodes["a"].sink.Find(event.ReplStatusWritten, `"epoch":6`)
		return ok
	})
	if n := w.nodes["a"].sink.Count(event.ReplStatusWritten); n != 1 {
		t.Fatalf("%d status-written events for one activation, want 1", n)
	}
}

// SPEC §9 on the failover consumer (a watermill Router): an activation
// whose data is not an activation's is poison — reported as
// tandem.input.rejected with the reason, acknowledged, not written — and
// the consumer goes on with the next event.
func TestFailoverConsumerPoison(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	status := `SELECT coalesce((SELECT active || '@' || epoch FROM _tandem_failover_status), '')`
	w.publishMonitorEvent("a", event.NodeActivated, 7, map[string]any{"reason": "forged", "bogus": true})
	w.publishMonitorEvent("a", event.NodeActivated, 8, event.Activation{Why: event.Because("F2: test")})
	w.waitFor("a@8 on a", func() bool { return w.query("a", status) == "a@8" })
	e, ok := w.nodes["a"].sink.Find(event.InputRejected, `"kind":"failover-event"`)
	if !ok || !strings.Contains(string(e.Data), "bogus") {
		t.Fatalf("no input.rejected for the poison activation: %s", e.Data)
	}
	if _, ok := w.nodes["a"].sink.Find(event.ReplStatusWritten, `"epoch":7`); ok {
		t.Fatal("the poison activation was written")
	}
}

// R4: an operator's resume that reaches only one node (the other is down,
// or restarting and not yet subscribed: `tandem repl resume` then warns and
// exits 0) is followed by the other node when it hears its peer, in either
// direction; a pause likewise. Before, the node that missed it stayed paused
// for good: each side's rows stayed on that side (the fault suite's rare
// non-convergence after "pause, restart the standby, resume").
func TestPauseDecisionFollowed(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	for i, down := range []string{"b", "a"} {
		up := "a"
		if down == "a" {
			up = "b"
		}
		w.admin(up, api.VerbReplPause, api.ReplRequest{})
		w.stop(down)
		resumeOn(w, up)
		w.start(down)
		for j := 0; j < 10; j++ {
			w.write("a", 1000*i+j, fmt.Sprintf("a%d", j), a)
			w.write("b", 1000*i+500+j, fmt.Sprintf("b%d", j), a)
		}
		w.waitFor(down+" follows the resume it missed", func() bool { return w.nodes[down].svc.Status().State == "running" })
		w.waitConverged()
	}
	w.checkAcked(a)

	// A pause that reaches a only: b follows it.
	w.stop("b")
	w.admin1("a", api.VerbReplPause)
	w.start("b")
	w.waitFor("b follows the pause it missed", func() bool { return w.nodes["b"].svc.Status().State == "paused" })
}

// resumeOn resumes replication through node while its peer is down: only
// node answers.
func resumeOn(w *world, node string) { w.admin1(node, api.VerbReplResume) }

// admin1 sends a replication verb that only node can answer.
func (w *world) admin1(node, verb string) {
	w.t.Helper()
	req := api.ReplRequest{Request: api.Request{V: api.Version, Pair: pairName}}
	raw, err := reply.Gather(context.Background(), w.nodes[node].nc, subject.ReplAdmin(pairName, verb), req, 1, 5*time.Second)
	if err != nil || len(raw) != 1 {
		w.t.Fatalf("%s through %s: %d replies, %v", verb, node, len(raw), err)
	}
	var r api.ReplReply
	if err := decodeReply(raw[0], &r); err != nil || r.Status.Node != node {
		w.t.Fatalf("%s through %s: %v (answered by %q)", verb, node, err, r.Status.Node)
	}
}

// R9, R10: the master's database restored from a backup taken before it
// applied some of the standby's changes, with no write of its own since:
// its own log does not show the restore, but its position in the standby's
// changes is behind what it acknowledged, and the standby has pruned those
// changes. The gap is detected (positions that cannot be trusted) and the
// nodes reconcile: the standby's rows reach the master again. Before, the
// master rejected every later batch of the standby as leaving a gap, for
// good (found by the fault suite's soak).
func TestMasterRestoredBehindItsPosition(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	w.write("a", 1, "a early", a)
	w.write("b", 2, "b early", a)
	w.waitConverged()
	backup := w.nodes["a"].path + ".bak"
	w.exec("a", `VACUUM INTO '`+backup+`'`)
	for i := 3; i < 8; i++ {
		w.write("b", i, "b after the backup", a)
	}
	w.waitConverged()
	w.waitFor("b pruned what a applied", func() bool { return rowCount(w, "b", "_tandem_log") == 0 })
	w.stop("a")
	w.nodes["a"].app.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(w.nodes["a"].path + suffix)
	}
	if err := os.Rename(backup, w.nodes["a"].path); err != nil {
		t.Fatal(err)
	}
	w.openApp("a")
	w.start("a")
	for i := 10; i < 15; i++ {
		w.write("b", i, "b after the restore", a)
	}
	w.waitConverged()
	w.checkAcked(a)
}

// R9: the master's database restored from a backup, and the application
// writes on it before the replicator starts again, so that its change log
// reaches the sequence it had shipped before the restore: the log alone no
// longer shows the restore, and the new changes reuse sequences the standby
// already applied. The restore is detected by the shipped mark the shipper
// keeps in the database; the nodes reconcile; nothing is lost. Before, the
// new changes were never shipped and the changes made after the backup
// never came back to the master (found by the fault suite's soak).
func TestMasterRestoredThenWritten(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	for i := 1; i <= 3; i++ {
		w.write("a", i, "a before the backup", a)
	}
	w.waitConverged()
	backup := w.nodes["a"].path + ".bak"
	w.exec("a", `VACUUM INTO '`+backup+`'`)
	for i := 4; i <= 6; i++ {
		w.write("a", i, "a after the backup", a) // on b, lost on a with the restore
	}
	w.waitConverged()
	w.stop("a")
	w.nodes["a"].app.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(w.nodes["a"].path + suffix)
	}
	if err := os.Rename(backup, w.nodes["a"].path); err != nil {
		t.Fatal(err)
	}
	w.openApp("a")
	for i := 7; i <= 9; i++ {
		w.write("a", i, "a after the restore", a) // while a's replicator is down
	}
	w.start("a")
	w.waitConverged()
	w.checkAcked(a)
}

// R9: as TestMasterRestoredThenWritten, with the backup taken when the
// shipped mark was 0 (right after a new database id): a mark of 0 is a
// mark, not its absence (found by the fault schedule).
func TestMasterRestoredAtMarkZero(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	backup := w.nodes["a"].path + ".bak"
	w.waitFor("a's shipped mark recorded", func() bool { return w.query("a", `SELECT (SELECT v FROM _tandem_meta WHERE k = 'shipped')`) != "" })
	w.exec("a", `VACUUM INTO '`+backup+`'`)
	a := acked{}
	w.write("a", 1, "a after the backup", a)
	w.waitConverged()
	w.stop("a")
	w.nodes["a"].app.Close()
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Remove(w.nodes["a"].path + suffix)
	}
	if err := os.Rename(backup, w.nodes["a"].path); err != nil {
		t.Fatal(err)
	}
	w.openApp("a")
	w.write("a", 2, "a after the restore", a)
	w.start("a")
	w.waitConverged()
	w.checkAcked(a)
}

// A snapshot request lost with a cut link (or its reply) is asked again:
// the first sync completes well before the ten minutes a standby waits for
// a large snapshot to be made. Before, the standby waited those ten
// minutes in `syncing` (a soak round after a master restore and a cut).
func TestSnapshotRequestLost(t *testing.T) {
	w := newWorld(t)
	w.exec("a", `INSERT INTO items VALUES(1, 'before', 1)`)
	var dropped atomic.Int32
	w.nodes["a"].edit = func(o *replicator.Options) {
		o.DropSnapshotRequest = func() bool { return dropped.Add(1) <= 2 } // the first two are lost
	}
	w.start("a")
	w.start("b")
	w.waitSynced()
	if got := w.items("b"); got != "1:before:1" {
		t.Fatalf("b after the first sync: %q", got)
	}
	if n := dropped.Load(); n < 3 {
		t.Fatalf("%d snapshot requests reached a, want the two lost and one answered", n)
	}
	if _, ok := w.nodes["b"].sink.Find(event.ReplSnapshot, `"restored"`); !ok {
		t.Fatal("no snapshot restored on b")
	}
}

// R10: a master's request to re-sync names the standby's database id it
// is about; a standby that has left that id since (it re-synced already,
// and the master answered a batch of its old id still in flight) ignores
// it, and acts on one about its present id. Before, every such request
// made it re-sync again, until it backed off into blocked (the soak's
// sixth run: four stale batches after a master restore).
func TestStaleResyncRequestIgnored(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	ask := func(about string) {
		a := wire.Applied{V: wire.Version, Pair: pairName, Node: "a", Resync: true, ResyncDB: about,
			Reason: "a test asks about database " + about}
		data, _ := json.Marshal(a)
		if err := w.nodes["a"].nc.Publish(subject.ReplApplied(pairName, "b"), data); err != nil {
			t.Fatal(err)
		}
	}
	before := w.nodes["b"].sink.Count(event.ReplSnapshot)
	ask("0ld1d0fb")
	deadline := time.Now().Add(2 * time.Second) // a window in which a re-sync would start
	for time.Now().Before(deadline) {
		if n := w.nodes["b"].sink.Count(event.ReplSnapshot); n != before {
			t.Fatalf("b re-synced for a request about a database it does not have (%d snapshot events)", n-before)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ask(w.nodes["b"].svc.Status().DB)
	w.waitFor("b re-syncs for a request about its database", func() bool {
		return w.nodes["b"].sink.Count(event.ReplSnapshot) > before
	})
	w.waitSynced()
}

// R9: a node's database file deleted while its replicator runs (the
// standby's, then the master's), and the application opening the path
// again, as it would after a failover: the replicator notices, opens the
// new file as at a restart, and the pair converges with every acknowledged
// write on both nodes — the emptied node is seeded from, or reconciled
// with, the other. Before, the replicator went on with the unlinked file:
// status "running", verify "identical", and after a failover the
// application found an empty database.
func TestDatabaseDeletedWhileRunning(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	a := acked{}
	for i := 1; i < 5; i++ {
		w.write("a", i, "before", a)
		w.write("b", 100+i, "before", a)
	}
	w.waitConverged()
	for round, node := range []string{"b", "a"} {
		w.nodes[node].app.Close()
		for _, suffix := range []string{"", "-wal", "-shm"} {
			os.Remove(w.nodes[node].path + suffix)
		}
		w.openApp(node)
		w.exec(node, schema) // the application creates its tables again
		w.waitFor(node+" reopens its database", func() bool {
			_, ok := w.nodes[node].sink.Find(event.ReplBlocked, "while open")
			return ok
		})
		for i := 10 * (round + 1); i < 10*(round+1)+3; i++ {
			w.write("a", i, "after "+node+"'s file was deleted", a)
			w.write("b", 100+i, "after "+node+"'s file was deleted", a)
		}
		w.waitConverged()
		w.checkAcked(a)
		w.nodes[node].sink.Reset()
	}
	// A re-sync asked again soon after the last one backs off (blocked
	// for a moment), then runs.
	for _, n := range []string{"a", "b"} {
		w.waitFor(n+" running", func() bool { return w.nodes[n].svc.Status().State == "running" })
	}
	w.waitConverged()
	w.checkAcked(a)
}

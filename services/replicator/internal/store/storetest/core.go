package storetest

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/services/replicator/internal/store"
	"github.com/tandem-ha/tandem/services/replicator/internal/wire"
)

// The core contract is what the replication logic relies on, stated on
// data only (no SQL), so that every adapter runs it — the SQLite store and
// the in-memory fake (storefake) the logic's unit tests use: capture, apply
// without echo, master-wins conflicts, and the reconcile of a snapshot (the
// safety rule: nothing the receiver holds is lost).

// Core is what the core contract drives of a store.
type Core interface {
	store.LogReader
	store.Applier
	store.Reconciler
	store.Identity
	Conflicts(ctx context.Context) ([]store.Conflict, error)
}

// App writes to one table of a database as the application would, on its
// own connection: rows of a key and a text value.
type App interface {
	Put(t *testing.T, key, value string)
	Delete(t *testing.T, key string)
	// Rows is the table's rows, key → value.
	Rows(t *testing.T) map[string]string
}

// CoreDB is one database under the core contract.
type CoreDB struct {
	Store Core
	App   App
}

// CoreHarness makes databases for the core contract; snapshot paths are
// files in t.TempDir() (a fake keeps them in memory by that name).
type CoreHarness struct {
	// Open opens a fresh, empty database for side, with the table the App
	// writes, and its store.
	Open func(t *testing.T, side store.Side) CoreDB
}

// RunCore runs the core contract.
func RunCore(t *testing.T, h CoreHarness) {
	t.Run("capture", func(t *testing.T) { coreCapture(t, h) })
	t.Run("apply", func(t *testing.T) { coreApply(t, h) })
	t.Run("conflicts", func(t *testing.T) { coreConflicts(t, h) })
	t.Run("reconcile", func(t *testing.T) { coreReconcile(t, h) })
	t.Run("reconcile empty", func(t *testing.T) { coreReconcileEmpty(t, h) })
}

func coreLog(t *testing.T, db CoreDB, after uint64) ([]wire.Change, uint64) {
	t.Helper()
	return readLog(t, db.Store, after)
}

// coreShip applies src's changes after seq to dst as one group.
func coreShip(t *testing.T, src, dst CoreDB, srcName string, fromMaster bool, after uint64) (uint64, store.Result) {
	t.Helper()
	return ship(t, src.Store, dst.Store, srcName, fromMaster, after)
}

func coreCapture(t *testing.T, h CoreHarness) {
	db := h.Open(t, store.Master)
	db.App.Put(t, "k1", "one")
	db.App.Put(t, "k1", "two")
	db.App.Delete(t, "k1")
	changes, to := coreLog(t, db, 0)
	if len(changes) != 3 || to != changes[2].Seq {
		t.Fatalf("captured %d changes up to %d: %+v", len(changes), to, changes)
	}
	for i, op := range []string{wire.OpInsert, wire.OpUpdate, wire.OpDelete} {
		c := changes[i]
		if c.Op != op || c.S != 0 || (i > 0 && c.M <= changes[i-1].M) {
			t.Errorf("change %d: %s %d/%d, want %s with a rising master counter", i, c.Op, c.M, c.S, op)
		}
	}
	if err := db.Store.Prune(ctx(t), to); err != nil {
		t.Fatal(err)
	}
	if rest, _ := coreLog(t, db, 0); len(rest) != 0 {
		t.Fatalf("%d changes after prune", len(rest))
	}
	info, _ := db.Store.Info(ctx(t))
	if info.LogHigh != to {
		t.Fatalf("log high %d after prune, want %d", info.LogHigh, to)
	}
	id, err := db.Store.NewID(ctx(t))
	after, _ := db.Store.Info(ctx(t))
	if err != nil || id == info.DB || after.DB != id || after.DBStart != info.LogHigh {
		t.Fatalf("new id %q (%v): info %+v, before %+v", id, err, after, info)
	}
}

func coreApply(t *testing.T, h CoreHarness) {
	a, b := h.Open(t, store.Master), h.Open(t, store.Standby)
	a.App.Put(t, "k1", "one")
	a.App.Put(t, "k2", "two")
	a.App.Delete(t, "k2")
	to, res := coreShip(t, a, b, "a", true, 0)
	if res.Applied != 3 || len(res.Conflicts) != 0 {
		t.Fatalf("result %+v", res)
	}
	if got := b.App.Rows(t); !maps.Equal(got, map[string]string{"k1": "one"}) {
		t.Fatalf("rows on b: %v", got)
	}
	if echo, _ := coreLog(t, b, 0); len(echo) != 0 {
		t.Fatalf("applied changes were captured again: %+v", echo)
	}
	p, ok, err := b.Store.Position(ctx(t), "a")
	if err != nil || !ok || p.Log != to {
		t.Fatalf("position %+v %v %v, want log %d", p, ok, err, to)
	}
	// Applying the same group again changes nothing: every change is at or
	// below the position.
	if _, res := coreShip(t, a, b, "a", true, 0); res.Applied != 0 {
		t.Fatalf("the group applied twice: %+v", res)
	}
	b.App.Put(t, "k1", "b's")
	if _, res := coreShip(t, b, a, "b", false, 0); res.Applied != 1 || len(res.Conflicts) != 0 {
		t.Fatalf("result back %+v", res)
	}
	if got := a.App.Rows(t)["k1"]; got != "b's" {
		t.Fatalf("k1 on a: %q", got)
	}
}

func coreConflicts(t *testing.T, h CoreHarness) {
	a, b := h.Open(t, store.Master), h.Open(t, store.Standby)
	a.App.Put(t, "k1", "base")
	seqA, _ := coreShip(t, a, b, "a", true, 0)
	a.App.Put(t, "k1", "master")
	b.App.Put(t, "k1", "standby")
	_, resB := coreShip(t, a, b, "a", true, seqA)
	_, resA := coreShip(t, b, a, "b", false, 0)
	for name, db := range map[string]CoreDB{"a": a, "b": b} {
		if got := db.App.Rows(t)["k1"]; got != "master" {
			t.Fatalf("k1 on %s: %q, want the master's", name, got)
		}
		cs, err := db.Store.Conflicts(ctx(t))
		if err != nil || len(cs) != 1 || cs[0].Loser != "standby" || cs[0].Kind != "update/update" {
			t.Fatalf("conflicts on %s: %+v %v", name, cs, err)
		}
	}
	if len(resA.Conflicts) != 1 || len(resB.Conflicts) != 1 {
		t.Fatalf("conflicts reported: a %d, b %d", len(resA.Conflicts), len(resB.Conflicts))
	}
}

// coreReconcile: the safety rule. The standby's own row is kept and queued
// for the master; its concurrent row loses to the master's and is recorded
// and queued; the master's rows are taken.
func coreReconcile(t *testing.T, h CoreHarness) {
	a, b := h.Open(t, store.Master), h.Open(t, store.Standby)
	a.App.Put(t, "k1", "one")
	a.App.Put(t, "k2", "two")
	b.App.Put(t, "k9", "own")
	b.App.Put(t, "k2", "concurrent")
	path := t.TempDir() + "/snap.db"
	snap, err := a.Store.Snapshot(ctx(t), path)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := b.Store.Info(ctx(t))
	rec, err := b.Store.Restore(ctx(t), path, "a", 7)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := b.Store.Info(ctx(t))
	if after.DB == before.DB || after.DBStart != after.LogHigh-2 || after.Conflicts != 1 {
		t.Fatalf("after restore: %+v (before %+v)", after, before)
	}
	if rec.Taken != 2 || rec.Kept != 1 || len(rec.Conflicts) != 1 {
		t.Fatalf("reconciled: %+v", rec)
	}
	if got := b.App.Rows(t); !maps.Equal(got, map[string]string{"k1": "one", "k2": "two", "k9": "own"}) {
		t.Fatalf("rows after restore: %v", got)
	}
	queued, _ := coreLog(t, b, after.DBStart)
	if len(queued) != 2 || !strings.Contains(queued[0].PK+string(queued[0].Row), "k2") || !strings.Contains(queued[1].PK, "k9") {
		t.Fatalf("queued for the master: %+v", queued)
	}
	p, _, _ := b.Store.Position(ctx(t), "a")
	if p.DB != snap.DB || p.Log != snap.Log || p.Stream != 7 {
		t.Fatalf("position %+v, snapshot %+v", p, snap)
	}
	// The queue reaches the master: it gets b's row and records the loser.
	coreShip(t, b, a, "b", false, after.DBStart)
	if got := a.App.Rows(t); !maps.Equal(got, map[string]string{"k1": "one", "k2": "two", "k9": "own"}) {
		t.Fatalf("rows on the master: %v", got)
	}
	if cs, _ := a.Store.Conflicts(ctx(t)); len(cs) != 1 {
		t.Fatalf("the master recorded %d conflicts", len(cs))
	}
}

// coreReconcileEmpty: an empty standby takes the snapshot whole and queues
// nothing.
func coreReconcileEmpty(t *testing.T, h CoreHarness) {
	a, b := h.Open(t, store.Master), h.Open(t, store.Standby)
	a.App.Put(t, "k1", "one")
	a.App.Put(t, "k2", "two")
	a.App.Delete(t, "k2")
	path := t.TempDir() + "/snap.db"
	if _, err := a.Store.Snapshot(ctx(t), path); err != nil {
		t.Fatal(err)
	}
	rec, err := b.Store.Restore(ctx(t), path, "a", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.App.Rows(t); !maps.Equal(got, map[string]string{"k1": "one"}) || rec.Kept != 0 {
		t.Fatalf("rows %v, reconciled %+v", got, rec)
	}
	after, _ := b.Store.Info(ctx(t))
	if q, _ := coreLog(t, b, after.DBStart); len(q) != 0 {
		t.Fatalf("queued %+v", q)
	}
}

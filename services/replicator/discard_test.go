package replicator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// resyncFrom sends repl.resync with From (and Discard) through node's
// server and returns each node's reply (or error) by node; a node that
// skipped is "skipped".
func (w *world) resyncFrom(via string, req api.ReplRequest, wait time.Duration) (map[string]api.ReplReply, []error) {
	w.t.Helper()
	req.Request = api.Request{V: api.Version, Pair: pairName}
	raw, err := reply.Gather(context.Background(), w.nodes[via].nc, subject.ReplAdmin(pairName, api.VerbReplResync), req, 2, wait)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]api.ReplReply{}
	var errs []error
	for _, b := range raw {
		var r api.ReplReply
		if err := reply.Decode(b, &r); err != nil {
			errs = append(errs, err)
			continue
		}
		out[r.Status.Node] = r
	}
	return out, errs
}

func (w *world) conflicts(node, kind string) string {
	return w.query(node, `SELECT coalesce(group_concat(pk || '=' || coalesce(loser_row, 'NULL'), ' '), '') FROM
		(SELECT * FROM _tandem_conflict WHERE kind = ? ORDER BY pk)`, kind)
}

// R10: an operator makes one node equal to the other with resync --from
// NODE --discard. The rows the target held only itself, or differently,
// are replaced — and recorded in _tandem_conflict on both nodes; the
// target's deleted row comes back; afterwards both replicate as before.
// Both directions: the standby takes the master's data, then the master
// takes the standby's.
func TestResyncDiscard(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	for i := 1; i <= 5; i++ {
		w.exec("a", `INSERT INTO items VALUES(?, 'good', ?)`, i, i)
	}
	w.waitConverged()
	ctx := context.Background()

	// b's replication is paused while a bug writes garbage on b.
	if err := w.nodes["b"].svc.SetPaused(ctx, true, true); err != nil {
		t.Fatal(err)
	}
	w.exec("b", `UPDATE items SET name = 'garbage' WHERE id = 1`)
	w.exec("b", `INSERT INTO items VALUES(50, 'garbage only on b', 0)`)
	w.exec("b", `DELETE FROM items WHERE id = 2`)
	w.exec("a", `INSERT INTO items VALUES(60, 'a meanwhile', 0)`)
	w.exec("a", `UPDATE items SET qty = 33 WHERE id = 3`)
	wantA := "1:good:1,2:good:2,3:good:33,4:good:4,5:good:5,60:a meanwhile:0"

	rep, errs := w.resyncFrom("b", api.ReplRequest{From: "a", Discard: true}, time.Minute)
	if len(errs) > 0 || len(rep) != 2 {
		t.Fatalf("resync --from a --discard: %v %v", rep, errs)
	}
	if !rep["a"].Skipped || rep["b"].Discarded["items"] != 2 {
		t.Fatalf("replies: a %+v, b %+v", rep["a"], rep["b"])
	}
	if got := w.items("b"); got != wantA {
		t.Fatalf("b after the discard: %s, want %s", got, wantA)
	}
	if err := w.nodes["b"].svc.SetPaused(ctx, false, true); err != nil {
		t.Fatal(err)
	}
	wantRec := `1={"id":"1","name":"'garbage'","qty":"1"} 50={"id":"50","name":"'garbage only on b'","qty":"0"}`
	w.waitFor("the discarded rows recorded on both", func() bool {
		return w.conflicts("a", "discard") == wantRec && w.conflicts("b", "discard") == wantRec
	})
	if got := w.items("a"); got != wantA {
		t.Fatalf("a changed: %s", got)
	}
	w.exec("b", `INSERT INTO items VALUES(70, 'b after', 0)`)
	w.exec("a", `INSERT INTO items VALUES(71, 'a after', 0)`)
	w.waitFor("both replicate again", func() bool { return rowCount(w, "a", "items") == 8 && rowCount(w, "b", "items") == 8 })
	w.waitConverged()

	// The other way: the master's own writes are discarded, the standby's
	// data kept.
	if err := w.nodes["a"].svc.SetPaused(ctx, true, true); err != nil {
		t.Fatal(err)
	}
	w.exec("a", `UPDATE items SET name = 'bad master write' WHERE id = 4`)
	w.exec("b", `UPDATE items SET name = 'b meanwhile' WHERE id = 5`)
	w.waitFor("b's change shipped", func() bool { return w.nodes["b"].svc.Status().Shipped >= w.nodes["b"].svc.Status().LogHigh })
	rep, errs = w.resyncFrom("a", api.ReplRequest{From: "b", Discard: true}, time.Minute)
	if len(errs) > 0 || rep["a"].Discarded["items"] != 1 || !rep["b"].Skipped {
		t.Fatalf("resync --from b --discard: %+v %v", rep, errs)
	}
	if err := w.nodes["a"].svc.SetPaused(ctx, false, true); err != nil {
		t.Fatal(err)
	}
	w.waitFor("a equal to b", func() bool {
		return w.query("a", `SELECT name FROM items WHERE id = 4`) == "good" && w.query("a", `SELECT name FROM items WHERE id = 5`) == "b meanwhile"
	})
	w.waitFor("the master's discarded row recorded on both", func() bool {
		return strings.Contains(w.conflicts("b", "discard"), "bad master write") && strings.Contains(w.conflicts("a", "discard"), "bad master write")
	})
	w.waitSynced()
	w.exec("a", `INSERT INTO items VALUES(80, 'a at the end', 0)`)
	w.exec("b", `INSERT INTO items VALUES(81, 'b at the end', 0)`)
	w.waitFor("both replicate at the end", func() bool { return rowCount(w, "a", "items") == 10 && rowCount(w, "b", "items") == 10 })
	w.waitConverged()
	checkSnapshots(t, w, 4)
}

// Bad requests are refused clearly and change nothing: an unknown node,
// a node resyncing from itself, --discard without --from, --from the
// standby without --discard, and the peer out of reach.
func TestResyncDiscardRefused(t *testing.T) {
	w := newWorld(t)
	w.start("a")
	w.start("b")
	w.waitSynced()
	w.exec("a", `INSERT INTO items VALUES(1, 'one', 1)`)
	w.waitConverged()
	for _, c := range []struct {
		req  api.ReplRequest
		want string
	}{
		{api.ReplRequest{From: "zz", Discard: true}, `unknown node "zz"`},
		{api.ReplRequest{Discard: true}, "--discard needs --from NODE"},
		{api.ReplRequest{From: "b", Node: "b", Discard: true}, "cannot resync from itself"},
		{api.ReplRequest{From: "b"}, "without --discard"},
	} {
		_, errs := w.resyncFrom("a", c.req, 5*time.Second)
		if len(errs) == 0 || !strings.Contains(errs[0].Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", c.req, errs, c.want)
		}
	}
	w.pair.Cut()
	w.exec("b", `INSERT INTO items VALUES(2, 'b while cut', 2)`)
	rep, errs := w.resyncFrom("b", api.ReplRequest{From: "a", Discard: true}, 10*time.Second)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "the peer a is unreachable") {
		t.Fatalf("with the link cut: %v %v", rep, errs)
	}
	w.pair.Heal()
	w.waitFor("b's row on a", func() bool { return rowCount(w, "a", "items") == 2 })
	w.waitConverged()
	if got := w.conflicts("a", "discard") + w.conflicts("b", "discard"); got != "" {
		t.Fatalf("refused requests recorded discards: %s", got)
	}
}

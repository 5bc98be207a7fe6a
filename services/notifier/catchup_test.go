package notifier_test

import (
	"context"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/notifier"
)

// TestRestartedNotifierKnowsTheSessions: a notifier restarted while its
// peer runs learns the sessions from the peer's notifier — its NATS server
// stayed up, so no session's connection moves and none says hello again;
// the active a re-announces too rarely to matter here — over more than one
// page, and its report of the next takeover counts every session.
func TestRestartedNotifierKnowsTheSessions(t *testing.T) {
	const sessions = 2*api.MaxSessionsPage + 17
	w := newWorld(t)
	for _, n := range []string{"a", "b"} {
		w.start(n, func(o *notifier.Options) { o.Reannounce = time.Hour })
	}
	w.activate("a", 2, false)
	w.waitEpoch("a", 2)
	w.waitEpoch("b", 2)
	f := w.newFleet(sessions, 5, "ts")
	for _, n := range []string{"a", "b"} {
		waitFor(t, "notifier "+n+" knows every session", func() bool {
			st := w.nodes[n].svc.Status()
			return st.Known == sessions && st.Acknowledged == sessions
		})
	}

	w.stop("b")
	b := w.start("b", func(o *notifier.Options) { o.Reannounce = time.Hour })
	waitFor(t, "the restarted notifier b knows every session at epoch 2", func() bool {
		st := b.svc.Status()
		return st.Known == sessions && st.Acknowledged == sessions
	})

	w.activate("b", 3, false)
	waitFor(t, "every session at epoch 3", func() bool { return f.allAt(3) })
	d := b.report(t)
	if d.Epoch != 3 || d.Known != sessions || d.Acknowledged != sessions || !d.Complete {
		t.Fatalf("b's report of epoch 3: %+v, want all %d sessions known and acknowledged", d, sessions)
	}
}

// TestSessionsListPages: the list a notifier answers with is in name
// order, in pages of at most the limit asked (and never more than
// api.MaxSessionsPage), each after the last name of the page before, and
// ends with a page that says no more follow; a malformed request gets an
// error and changes nothing.
func TestSessionsListPages(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	w.sessionsOn("a", 2, 25, 2, "s")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	ask := func(after string, limit int) (api.NotifierSessionsReply, error) {
		var r api.NotifierSessionsReply
		err := reply.Request(ctx, a.nc, subject.NotifierSessions(pairName, "a"), api.NotifierSessionsRequest{
			Request: api.Request{V: api.Version, Pair: pairName}, After: after, Limit: limit}, &r)
		return r, err
	}
	var names []string
	after := ""
	for range 10 {
		r, err := ask(after, 10)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Validate(after); err != nil || len(r.Sessions) > 10 {
			t.Fatalf("page after %q: %v (%d sessions)", after, err, len(r.Sessions))
		}
		for _, k := range r.Sessions {
			if k.Epoch != 2 {
				t.Errorf("session %s at epoch %d, want 2", k.Session, k.Epoch)
			}
			names = append(names, k.Session)
		}
		if !r.More {
			break
		}
		after = names[len(names)-1]
	}
	if len(names) != 25 || names[0] != "s00000" || names[24] != "s00024" {
		t.Fatalf("listed %d sessions: %v", len(names), names)
	}
	if r, err := ask("", 0); err != nil || len(r.Sessions) != 25 || r.More {
		t.Fatalf("no limit: %d sessions, more %v, %v", len(r.Sessions), r.More, err)
	}

	before := a.svc.Status()
	for _, bad := range []any{
		map[string]any{"v": api.Version, "pair": "q"},
		map[string]any{"v": api.Version, "pair": pairName, "after": "a.b"},
		map[string]any{"v": api.Version, "pair": pairName, "limit": "ten"},
	} {
		err := reply.Request(ctx, a.nc, subject.NotifierSessions(pairName, "a"), bad, nil)
		if _, ok := err.(*reply.Error); !ok {
			t.Errorf("request %v: %v, want an error reply", bad, err)
		}
	}
	if after := a.svc.Status(); after.Known != before.Known || after.Acknowledged != before.Acknowledged {
		t.Fatalf("bad requests changed the counts: %+v, before %+v", after, before)
	}
}

// TestUnlearnedNotifierWaitsForSessions: a notifier whose peer's notifier
// never listed its sessions (it does not run) does not report its
// notification complete as soon as the sessions it knows (none) have
// acknowledged: it gives the sessions time to come back to its node, and
// its report counts those that did.
func TestUnlearnedNotifierWaitsForSessions(t *testing.T) {
	w := newWorld(t)
	b := w.start("b", nil)
	w.activate("b", 2, true)
	w.waitEpoch("b", 2)
	if st := b.svc.Status(); st.NotifiedMS == nil || st.Known != 0 {
		t.Fatalf("b's status after its notification: %+v", st)
	}
	f := w.newFleet(10, 2, "back")
	waitFor(t, "every session at epoch 2", func() bool { return f.allAt(2) })
	d := b.report(t)
	if d.Epoch != 2 || d.Known != 10 || d.Acknowledged != 10 || !d.Complete {
		t.Fatalf("b's report: %+v, want the 10 sessions that came back", d)
	}
}

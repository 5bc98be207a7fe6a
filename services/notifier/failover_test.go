package notifier_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/session"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// wantAfterFailover are sessionConns after a failover from a to b: the
// printer by host, the label printer by its rename, the scanner untouched,
// every setting kept.
func wantAfterFailover(renamed bool) []session.Connection {
	c := sessionConns()
	c[0].Address = `\\print-b\Floor3`
	c[1].Address = "ipp://print-b:631/printers/Label"
	if renamed {
		c[1].Address = "ipp://print-b:631/printers/Label-B"
	}
	return c
}

// TestKillActiveSwitchesEverySession: 1,000 sessions over NATS (half of the
// connections on the node that dies) and 50 over SSE; the active node is
// killed and the standby activates: every session switches to the other
// host exactly once with its settings, the notifier reports the progress, a
// session that connects afterwards gets the state at once, and replayed
// older notifications and activations are ignored.
func TestKillActiveSwitchesEverySession(t *testing.T) {
	w := newWorld(t)
	for _, n := range []string{"a", "b"} {
		w.serveReplicator(n, dbConfig)
		w.start(n, nil)
	}
	waitFor(t, "both notifiers read the configuration", func() bool {
		return w.nodes["a"].svc.ConfigSourceNow() == api.SourceDatabase && w.nodes["b"].svc.ConfigSourceNow() == api.SourceDatabase
	})
	first := w.activate("a", 2, false)
	w.waitEpoch("a", 2)
	w.waitEpoch("b", 2)

	f := w.newFleet(1000, 20, "ts")
	waitFor(t, "every session at epoch 2", func() bool { return f.allAt(2) })
	for _, n := range []string{"a", "b"} {
		waitFor(t, "notifier "+n+" knows every session", func() bool {
			st := w.nodes[n].svc.Status()
			return st.Known == 1000 && st.Acknowledged == 1000
		})
	}

	// 50 SSE clients, half on each node's push endpoint, each able to move
	// to the other.
	pushA, pushB := "http://"+w.nodes["a"].svc.PushAddr(), "http://"+w.nodes["b"].svc.PushAddr()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var sse []*sseClient
	for i := range 50 {
		c := &sseClient{urls: []string{pushA, pushB}}
		if i%2 == 1 {
			c.urls = []string{pushB, pushA}
		}
		sse = append(sse, c)
		wg.Add(1)
		go c.run(ctx, &wg)
	}
	waitFor(t, "every SSE client has the state", func() bool {
		for _, c := range sse {
			if !slices.Equal(c.epochs(), []uint64{2}) {
				return false
			}
		}
		return true
	})

	w.crash("a")
	w.activate("b", 3, true)
	n := w.waitEpoch("b", 3)
	if n.Active != "b" || n.Failed != "a" || !n.Outage || n.Source != api.SourceDatabase {
		t.Fatalf("notification %+v", n)
	}
	if !reflect.DeepEqual(n.Hosts, map[string]string{"print-a": "print-b"}) ||
		!reflect.DeepEqual(n.Renames, map[string]string{"ipp://print-a:631/printers/Label": "ipp://print-b:631/printers/Label-B"}) {
		t.Fatalf("host map %v, renames %v", n.Hosts, n.Renames)
	}

	waitFor(t, "every session at epoch 3", func() bool { return f.allAt(3) })
	want := wantAfterFailover(true)
	for _, s := range f.sessions {
		if got := s.Connections(); !reflect.DeepEqual(got, want) {
			t.Fatalf("session %s: connections %+v, want %+v", s.Name(), got, want)
		}
		if k := f.switchesOf(s.Name()); k != 1 {
			t.Fatalf("session %s switched %d times", s.Name(), k)
		}
	}
	waitFor(t, "every SSE client has epoch 3", func() bool {
		for _, c := range sse {
			if last, ok := c.lastNotification(); !ok || last.Epoch != 3 {
				return false
			}
		}
		return true
	})
	for i, c := range sse {
		if got := c.epochs(); !slices.Equal(got, []uint64{2, 3}) {
			t.Fatalf("SSE client %d got epochs %v, want [2 3] (each once)", i, got)
		}
	}

	// N6: the survivor counts every session's acknowledgement and reports.
	b := w.nodes["b"]
	d := b.report(t)
	if d.Epoch != 3 || d.Known != 1000 || d.Acknowledged != 1000 || d.Switched != 2000 || !d.Complete {
		t.Fatalf("progress %+v", d)
	}

	// N5: a session that connects after the failover gets the state at once.
	late := w.newFleet(1, 1, "late")
	waitFor(t, "the late session at epoch 3", func() bool { return late.allAt(3) })
	if got := late.sessions[0].Connections(); !reflect.DeepEqual(got, want) {
		t.Fatalf("late session: %+v", got)
	}

	// A replayed older notification is ignored by every session…
	old, _ := json.Marshal(api.Notification{V: 1, Pair: pairName, Epoch: 2, Active: "a", Failed: "b",
		Hosts: map[string]string{"print-b": "print-a"}, Source: api.SourceDatabase, Time: first.Time, Reason: "replay"})
	if err := b.nc.Publish(subject.Notify(pairName), old); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every client saw the replay", func() bool {
		for _, c := range f.clients {
			if c.Stats().Stale == 0 {
				return false
			}
		}
		return true
	})
	// … and so is an older activation replayed into the notifier's stream.
	w.activate("b", 1, true)
	waitFor(t, "the stale activation counted", func() bool { return metric(t, b, "tandem_notifier_stale_activations_total") >= 1 })
	if cur, _ := b.svc.Current(); cur.Epoch != 3 {
		t.Fatalf("current epoch %d after a stale activation", cur.Epoch)
	}
	for _, s := range f.sessions {
		if s.Epoch() != 3 || f.switchesOf(s.Name()) != 1 || !reflect.DeepEqual(s.Connections(), want) {
			t.Fatalf("session %s moved by a replay", s.Name())
		}
	}
}

package notifier_test

import (
	"reflect"
	"testing"

	"github.com/tandem-ha/tandem/pkg/api"
)

// TestReplicatorStoppedBeforeFailoverUsesCache: b's notifier read the
// configuration once; the replicator stops, b's notifier restarts (memory
// gone, disk cache kept), then a dies: the notification still carries the
// database's host map and renames, from the cache (N4).
func TestReplicatorStoppedBeforeFailoverUsesCache(t *testing.T) {
	w := newWorld(t)
	w.serveReplicator("b", dbConfig)
	w.start("a", nil)
	w.start("b", nil)
	waitFor(t, "b read the configuration", func() bool { return w.nodes["b"].svc.ConfigSourceNow() == api.SourceDatabase })
	w.activate("a", 2, false)
	w.waitEpoch("b", 2)
	f := w.newFleet(100, 4, "ts")
	waitFor(t, "sessions at epoch 2", func() bool { return f.allAt(2) })

	w.stopReplicator("b")
	w.stop("b")
	w.start("b", nil)
	if got := w.nodes["b"].svc.ConfigSourceNow(); got != api.SourceCache {
		t.Fatalf("restarted without the replicator: source %q, want cache", got)
	}
	w.waitEpoch("b", 2) // from its state bucket

	w.crash("a")
	w.activate("b", 3, true)
	n := w.waitEpoch("b", 3)
	if n.Source != api.SourceCache || n.Hosts["print-a"] != "print-b" ||
		n.Renames["ipp://print-a:631/printers/Label"] != "ipp://print-b:631/printers/Label-B" {
		t.Fatalf("notification %+v", n)
	}
	waitFor(t, "sessions at epoch 3", func() bool { return f.allAt(3) })
	for _, s := range f.sessions {
		if got := s.Connections(); !reflect.DeepEqual(got, wantAfterFailover(true)) || f.switchesOf(s.Name()) != 1 {
			t.Fatalf("session %s: %+v", s.Name(), got)
		}
	}
}

// TestNoCacheUsesConfiguredHostsFlagged: the database was never read: the
// notification maps the hosts of the notifier's own configuration and says
// so; without renames the label printer keeps its name on the new host.
func TestNoCacheUsesConfiguredHostsFlagged(t *testing.T) {
	w := newWorld(t)
	w.start("a", nil)
	w.start("b", nil)
	if got := w.nodes["b"].svc.ConfigSourceNow(); got != api.SourceLocal {
		t.Fatalf("source %q, want %q", got, api.SourceLocal)
	}
	w.activate("a", 2, false)
	w.waitEpoch("b", 2)
	f := w.newFleet(100, 4, "ts")
	waitFor(t, "sessions at epoch 2", func() bool { return f.allAt(2) })
	w.crash("a")
	w.activate("b", 3, true)
	n := w.waitEpoch("b", 3)
	if n.Source != api.SourceLocal || !reflect.DeepEqual(n.Hosts, map[string]string{"print-a": "print-b"}) || n.Renames != nil {
		t.Fatalf("notification %+v", n)
	}
	waitFor(t, "sessions at epoch 3", func() bool { return f.allAt(3) })
	for _, s := range f.sessions {
		if got := s.Connections(); !reflect.DeepEqual(got, wantAfterFailover(false)) {
			t.Fatalf("session %s: %+v", s.Name(), got)
		}
	}
}

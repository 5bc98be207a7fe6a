package monitor_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/heartbeat"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/monitor"
	"github.com/tandem-ha/tandem/services/monitor/internal/epochfile"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
)

func head() api.Request { return api.Request{V: api.Version, Pair: pairName} }

// F2: a node that hears no peer during discovery activates.
func TestDiscoveryAlone(t *testing.T) {
	w := newWorld(t, nil)
	w.start("a")
	st := w.waitState("a", failover.Active)
	if st.Epoch != 2 {
		t.Fatalf("first activation of the master in epoch %d, want 2", st.Epoch)
	}
	e := w.waitEvent("a", event.NodeActivated, "F2")
	if e.Epoch != 2 || e.Pair != pairName || e.Node != "a" {
		t.Fatalf("activation event %+v", e)
	}
}

// F4: both nodes start at once: the master activates, the standby stays passive.
func TestSimultaneousStart(t *testing.T) {
	w := newWorld(t, nil)
	w.start("a")
	w.start("b")
	w.waitState("a", failover.Active)
	w.waitState("b", failover.Passive)
	w.waitFor("b hears a active", func() bool { return w.status("b").PeerState == failover.Active })
	if w.inv.both() != 0 {
		t.Fatal("both nodes were active at once during a simultaneous start")
	}
}

// F6: the active node's process dies (its server's sockets close): the
// standby activates in a higher epoch on the link signal, not the timeout.
func TestCrashFailover(t *testing.T) {
	w := newWorld(t, func(c *config.Config) { c.Heart.Timeout = 5 * time.Second }) // the timeout cannot be what fails over
	w.start("a")
	w.start("b")
	a := w.waitSteady()
	w.crash("a")
	b := w.waitState("b", failover.Active)
	if b.Epoch <= a.Epoch {
		t.Fatalf("b active in epoch %d, not above a's %d", b.Epoch, a.Epoch)
	}
	e := w.waitEvent("b", event.NodeActivated, "refused the connection")
	if !strings.Contains(reason(e), "F6") {
		t.Fatalf("activation reason %q", reason(e))
	}
	if got := metricValue(t, w.nodes["b"], "tandem_monitor_failovers_total"); got != 1 {
		t.Fatalf("failovers_total = %v", got)
	}
}

// F7: a cut link makes both active; after the heal and the settle delay the
// master stays active in an epoch above both, the standby turns passive.
func TestPartitionAndHeal(t *testing.T) {
	w := newWorld(t, nil)
	w.start("a")
	w.start("b")
	w.waitSteady()
	w.pair.Cut()
	b := w.waitState("b", failover.Active)
	a := w.status("a")
	if a.State != failover.Active {
		t.Fatalf("a is %s during the cut, want active", a.State)
	}
	w.pair.Heal()
	w.pair.WaitLinked(t, waitLimit)
	w.waitFor("a active and b passive after the heal", func() bool {
		return w.status("a").State == failover.Active && w.status("b").State == failover.Passive
	})
	if e := w.status("a").Epoch; e <= max(a.Epoch, b.Epoch) {
		t.Fatalf("master epoch %d after the heal, want above %d and %d", e, a.Epoch, b.Epoch)
	}
	w.waitEvent("a", event.CollisionResolved, "F7")
	w.waitEvent("b", event.NodeDeactivated, "F7")
}

// F8: a switchover through the standby is refused naming the master; through
// the master it hands over with no moment of two actives, and back.
func TestSwitchover(t *testing.T) {
	w := newWorld(t, nil)
	a, b := w.start("a"), w.start("b")
	w.waitSteady()

	_, err := admin(t, b.nc, "b", api.VerbSwitchover, api.SwitchoverRequest{Request: head()})
	var re *reply.Error
	if !errors.As(err, &re) || re.Code != reply.CodeNotMaster || re.Node != "a" || !strings.Contains(re.Message, "a") {
		t.Fatalf("switchover through the standby: %v, want not_master naming a", err)
	}
	w.waitEvent("b", event.SwitchoverRefused, "only by the master")

	before := w.status("a").Epoch
	if _, err := admin(t, a.nc, "a", api.VerbSwitchover, api.SwitchoverRequest{Request: head()}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("b active after the switchover", func() bool {
		return w.status("b").State == failover.Active && w.status("a").State == failover.Passive
	})
	if e := w.status("b").Epoch; e <= before {
		t.Fatalf("b active in epoch %d, want above %d", e, before)
	}
	w.waitEvent("a", event.SwitchoverCompleted, "b is active")

	// And back, through the master, which is now passive.
	if _, err := admin(t, a.nc, "a", api.VerbSwitchover, api.SwitchoverRequest{Request: head(), To: "a"}); err != nil {
		t.Fatal(err)
	}
	w.waitFor("a active again", func() bool {
		return w.status("a").State == failover.Active && w.status("b").State == failover.Passive
	})
	if n := w.inv.both(); n != 0 {
		t.Fatalf("both nodes were seen active at once %d times during switchovers", n)
	}
}

// F8: when the other node does not confirm in time, the yielding node takes
// back over.
func TestSwitchoverRollback(t *testing.T) {
	w := newWorld(t, func(c *config.Config) { c.Heart.Timeout = 2 * time.Second })
	a := w.start("a")
	w.start("b")
	w.waitSteady()
	before := w.status("a").Epoch
	w.stop("b") // b's monitor is gone, but a still hears it within the timeout
	if _, err := admin(t, a.nc, "a", api.VerbSwitchover, api.SwitchoverRequest{Request: head()}); err != nil {
		t.Fatal(err)
	}
	w.waitEvent("a", event.SwitchoverRolledBack, "")
	st := w.waitState("a", failover.Active)
	if st.Epoch <= before {
		t.Fatalf("rolled back into epoch %d, want above %d", st.Epoch, before)
	}
}

// F10: maintenance mode blocks failover and expires by itself.
func TestMaintenanceBlocksFailoverAndExpires(t *testing.T) {
	w := newWorld(t, nil)
	a := w.start("a")
	w.start("b")
	w.waitSteady()
	out, err := admin(t, a.nc, "a", api.VerbMaintenance, api.MaintenanceRequest{Request: head(), On: true, For: "1500ms"})
	if err != nil || out["maintenance"] != true {
		t.Fatalf("maintenance on: %v %v", out, err)
	}
	w.waitFor("b learns of maintenance", func() bool { return w.status("b").Maintenance })
	w.crash("a")
	w.waitEvent("b", event.FailoverSuppressed, "maintenance")
	if st := w.status("b"); st.State != failover.Passive {
		t.Fatalf("b is %s while maintenance is on", st.State)
	}
	w.waitEvent("b", event.MaintenanceChanged, "expired")
	w.waitState("b", failover.Active)
	w.waitEvent("b", event.NodeActivated, "F6")
}

// F11: hooks run on transitions with the documented environment, and their
// outcome is an event.
func TestHooksEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "hook.env")
	w := newWorld(t, func(c *config.Config) {
		c.Hooks.OnActive = "env | grep '^TANDEM_' | sort > " + out
	})
	w.start("a")
	w.waitState("a", failover.Active)
	e := w.waitEvent("a", event.HookFinished, "on_active")
	if !strings.Contains(string(e.Data), `"exit_code":0`) {
		t.Fatalf("hook event %s", e.Data)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	want := "TANDEM_EPOCH=2\nTANDEM_NODE=a\nTANDEM_PAIR=p\nTANDEM_ROLE=master\nTANDEM_STATE=active\n"
	if string(b) != want {
		t.Fatalf("hook environment:\n%s\nwant:\n%s", b, want)
	}
}

// A passive node that cannot write the newest epoch it has seen (its
// epoch.json cannot be replaced) keeps running passive, counts the failure
// and writes the file once it can: a full disk on the standby does not take
// the pair's standby away.
func TestSeenEpochUnwritable(t *testing.T) {
	w := newWorld(t, func(c *config.Config) {
		if c.Node == "b" {
			c.Heart.Timeout = time.Minute // a's monitor restarts below: b must not take over meanwhile
		}
	})
	w.start("a")
	w.start("b")
	a := w.waitSteady()
	dir := filepath.Join(w.nodes["b"].dir, "monitor")
	file := filepath.Join(dir, epochfile.Name)
	w.waitFor("b's epoch file", func() bool {
		e, err := epochfile.Load(dir)
		return err == nil && e.Seen == a.Epoch
	})
	// A directory where the file was: the rename that replaces it fails,
	// even for root.
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(file, "in-the-way"), 0o750); err != nil {
		t.Fatal(err)
	}
	w.stop("a")
	w.start("a") // the master comes back and activates in a newer epoch, which b sees
	w.waitFor("a active again in a newer epoch", func() bool {
		st := w.status("a")
		return st.State == failover.Active && st.Epoch > a.Epoch
	})
	newer := w.status("a").Epoch
	w.waitFor("b hears the newer epoch and counts the failed write", func() bool {
		st := w.status("b")
		return st.PeerEpoch >= newer && st.Seen >= newer &&
			metricValue(t, w.nodes["b"], "tandem_monitor_epoch_persist_failures_total") >= 1
	})
	select {
	case <-w.nodes["b"].run.Exited():
		t.Fatalf("b's monitor stopped: %v", w.nodes["b"].run.Err())
	default:
	}
	if st := w.status("b"); st.State != failover.Passive {
		t.Fatalf("b: %s while a is active in %d", st.State, newer)
	}
	if err := os.RemoveAll(file); err != nil {
		t.Fatal(err)
	}
	w.waitFor("b writes the newer epoch once it can", func() bool {
		e, err := epochfile.Load(dir)
		return err == nil && e.Seen == newer
	})
}

// TestActivationOnUnwritableDisk: the standby keeps the epoch of its
// next activation reserved in epoch.json, so a failover announces it before
// it is written. With the file unwritable (a directory in its way) b still
// takes over from the crashed master in its reserved epoch, counts the
// failed write and keeps running — the monitor used to stop, as an
// activation was written first — and records the epoch once it can. A clean
// stop of the passive node gives its reservation back (the next start need
// not skip it); an active node reserves nothing beyond its own epoch.
func TestActivationOnUnwritableDisk(t *testing.T) {
	w := newWorld(t, func(c *config.Config) { c.Heart.Timeout = 5 * time.Second }) // the crash, not the timeout, fails over
	w.start("a")
	w.start("b")
	a := w.waitSteady()
	dir := filepath.Join(w.nodes["b"].dir, "monitor")
	file := filepath.Join(dir, epochfile.Name)
	reservation := func() (reserved uint64) {
		w.waitFor("b's reservation of its next activation", func() bool {
			e, err := epochfile.Load(dir)
			reserved = e.Reserve
			return err == nil && e.Seen == a.Epoch && e.Reserve > a.Epoch
		})
		return reserved
	}
	reservation()
	w.stop("b")
	if e, err := epochfile.Load(dir); err != nil || e.Reserve != 0 {
		t.Fatalf("b's epoch.json after a clean stop: %+v, %v; want the reservation given back", e, err)
	}
	w.start("b")
	reserved := reservation()
	if err := os.Remove(file); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(file, "in-the-way"), 0o750); err != nil {
		t.Fatal(err)
	}
	w.crash("a")
	st := w.waitState("b", failover.Active)
	if st.Epoch != reserved {
		t.Fatalf("b active in epoch %d, want its reserved %d", st.Epoch, reserved)
	}
	w.waitFor("the failed write counted", func() bool {
		return metricValue(t, w.nodes["b"], "tandem_monitor_epoch_persist_failures_total") >= 1
	})
	select {
	case <-w.nodes["b"].run.Exited():
		t.Fatalf("b's monitor stopped: %v", w.nodes["b"].run.Err())
	default:
	}
	if err := os.RemoveAll(file); err != nil {
		t.Fatal(err)
	}
	w.waitFor("b records its epoch once it can", func() bool {
		e, err := epochfile.Load(dir)
		return err == nil && e.Epoch == reserved
	})
	w.stop("b")
	if e, err := epochfile.Load(dir); err != nil || e.Epoch != reserved || e.Reserve > e.Epoch {
		t.Fatalf("the active b's epoch.json after a clean stop: %+v, %v; want epoch %d and nothing reserved beyond it", e, err, reserved)
	}
}

// TestActivationAnnouncedBeforeWritten: with b's write of its new epoch held
// back, b's active heartbeat in its reserved epoch is on the wire before the
// write ends — a failover does not wait for the disk — and the epoch is on
// disk once the write goes through.
func TestActivationAnnouncedBeforeWritten(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(release) }) }
	t.Cleanup(open)
	w := newWorld(t, func(c *config.Config) { c.Heart.Timeout = 5 * time.Second }) // the crash, not the timeout, fails over
	w.prepare = func(node string, s *monitor.Service) {
		if node != "b" {
			return
		}
		monitor.SetSave(s, func(dir string, e epochfile.Epochs) error {
			if e.Epoch != 0 { // b's own epoch: its activation
				select {
				case <-release:
				case <-time.After(waitLimit):
				}
			}
			return epochfile.Save(dir, e)
		})
	}
	w.start("a")
	w.start("b")
	a := w.waitSteady()
	dir := filepath.Join(w.nodes["b"].dir, "monitor")
	var reserved uint64
	w.waitFor("b's reservation of its next activation", func() bool {
		e, err := epochfile.Load(dir)
		reserved = e.Reserve
		return err == nil && e.Seen == a.Epoch && e.Reserve > a.Epoch
	})
	beats := make(chan heartbeat.Heartbeat, 64)
	sub, err := w.nodes["b"].nc.Subscribe(subject.Heartbeat(pairName, "b"), func(m *nats.Msg) {
		if h, err := heartbeat.Decode(m.Data, pairName); err == nil {
			select {
			case beats <- h:
			default:
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the test ends
	w.crash("a")
	deadline := time.After(waitLimit / 2)
	for active := false; !active; {
		select {
		case h := <-beats:
			active = h.State == string(failover.Active)
			if active && h.Epoch != reserved {
				t.Fatalf("b announced epoch %d, want its reserved %d", h.Epoch, reserved)
			}
		case <-deadline:
			t.Fatal("no active heartbeat from b while the write of its epoch was held back: the activation waited for the disk")
		}
	}
	if e, err := epochfile.Load(dir); err != nil || e.Epoch != 0 {
		t.Fatalf("epoch.json before the write went through: %+v, %v", e, err)
	}
	open()
	w.waitFor("b's epoch on disk once the write goes through", func() bool {
		e, err := epochfile.Load(dir)
		return err == nil && e.Epoch == reserved
	})
}

// With the link closed a node says at once that its peer is unreachable,
// before it calls the peer lost (a master without nats.peer cannot probe
// its peer, and gives it a heartbeat interval): tandem status, which
// reaches the peer only through that link, then waits for nobody.
func TestPeerUnreachableOnceTheLinkCloses(t *testing.T) {
	w := newWorld(t, func(c *config.Config) {
		c.Heart.Interval, c.Heart.Timeout = 2*time.Second, 6*time.Second
		if c.Node == "a" {
			c.NATS.Peer = ""
		}
	})
	w.start("a")
	w.start("b")
	w.waitSteady()
	if r := w.nodes["a"].svc.StatusReply(); r.Peer == nil || !r.Peer.Reachable {
		t.Fatalf("a's view of b while both run: %+v", r.Peer)
	}
	w.crash("b")
	w.waitFor("a to say b is unreachable while b still counts as heard", func() bool {
		r := w.nodes["a"].svc.StatusReply()
		return r.Peer != nil && !r.Peer.Reachable && w.status("a").PeerHeard
	})
}

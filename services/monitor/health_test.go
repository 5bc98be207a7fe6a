package monitor_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
)

// sickCheck is an exec check that fails while the file <dir>/sick exists.
func sickCheck(c *config.Config) {
	c.Checks.List = []config.Check{config.Check{Name: "spooler", Exec: "test ! -e " + filepath.Join(c.DataDir, "sick") + " || { echo spooler hung; exit 1; }",
		Interval: 100 * time.Millisecond, Timeout: 5 * time.Second, Fall: 2, Rise: 2}.WithDefaults()}
}

// sickPair starts a pair with sickCheck on both nodes and waits until a is
// active and b passive; it returns a's status.
func sickPair(t *testing.T) (*world, failover.Status) {
	w := newWorld(t, sickCheck)
	w.start("a")
	w.start("b")
	return w, w.waitSteady()
}

func (w *world) setSick(node string, sick bool) {
	p := filepath.Join(w.nodes[node].dir, "sick")
	if !sick {
		if err := os.Remove(p); err != nil {
			w.t.Fatal(err)
		}
		return
	}
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// F15: the active node's check fails: the pair hands over to the healthy
// passive node, the reason names the check on both sides, status and the
// metrics show it, and the events are published.
func TestCheckFailureHandsOver(t *testing.T) {
	w, a := sickPair(t)
	w.setSick("a", true)
	b := w.waitState("b", failover.Active)
	if b.Epoch <= a.Epoch {
		t.Fatalf("b active in epoch %d, not above a's %d", b.Epoch, a.Epoch)
	}
	if r := reason(w.waitEvent("b", event.NodeActivated, "spooler")); !strings.Contains(r, "F15: check spooler failed on a") {
		t.Errorf("b's activation reason %q", r)
	}
	if r := reason(w.waitEvent("a", event.NodeDeactivated, "spooler")); !strings.Contains(r, "handing over to b") {
		t.Errorf("a's deactivation reason %q", r)
	}
	w.waitEvent("a", event.CheckFailed, "spooler hung")
	w.waitState("a", failover.Passive)

	sr := w.nodes["b"].svc.StatusReply()
	if !sr.Self.IsHealthy() || sr.Peer == nil || sr.Peer.IsHealthy() || len(sr.Peer.Checks) != 1 ||
		sr.Peer.Checks[0].Name != "spooler" || sr.Peer.Checks[0].Output != "exit 1: spooler hung" || sr.Peer.Checks[0].Since.IsZero() {
		t.Errorf("b's status of the pair: self %+v peer %+v", sr.Self, sr.Peer)
	}
	if got := metricValue(t, w.nodes["a"], "tandem_monitor_check_healthy"); got != 0 {
		t.Errorf("a's tandem_monitor_check_healthy = %v", got)
	}
	if got := metricValue(t, w.nodes["a"], "tandem_monitor_check_runs_total"); got < 2 {
		t.Errorf("a's tandem_monitor_check_runs_total = %v", got)
	}
	// a recovers: it says so, and stays passive (failback manual).
	w.setSick("a", false)
	w.waitEvent("a", event.CheckRecovered, "spooler")
	w.waitFor("b sees a healthy", func() bool { return w.nodes["b"].svc.StatusReply().Peer.IsHealthy() })
	if st := w.status("b"); st.State != failover.Active {
		t.Fatalf("b is %s after a recovered", st.State)
	}
	if w.inv.both() != 0 {
		t.Fatal("both nodes were active at once during the handover")
	}
}

// F15: both nodes unhealthy: nothing moves, both report critical; once the
// passive node recovers, the active one hands over to it.
func TestBothUnhealthyCritical(t *testing.T) {
	w, a := sickPair(t)
	w.setSick("b", true)
	w.waitFor("a sees b unhealthy", func() bool { return !w.status("a").PeerHealthy })
	w.setSick("a", true)
	w.waitEvent("a", event.HealthCritical, "both nodes are unhealthy")
	w.waitFor("both critical", func() bool { return w.status("a").Critical && w.status("b").Critical })
	if st := w.status("a"); st.State != failover.Active || st.Epoch != a.Epoch {
		t.Fatalf("a moved while both were unhealthy: %+v", st)
	}
	w.setSick("b", false)
	w.waitState("b", failover.Active)
	w.waitEvent("b", event.NodeActivated, "check spooler failed on a")
}

// F15: an unhealthy passive node does not take over from a crashed peer.
func TestUnhealthyPassiveNoTakeover(t *testing.T) {
	w, _ := sickPair(t)
	w.setSick("b", true)
	w.waitFor("a sees b unhealthy", func() bool { return !w.status("a").PeerHealthy })
	// On a loaded machine a starved heartbeat may have made b active for a
	// moment (F6, then F7): crash a only once the pair has settled again.
	w.waitSteady()
	w.crash("a")
	w.waitEvent("b", event.FailoverSuppressed, "F15: this node is unhealthy")
	if st := w.status("b"); st.State != failover.Passive {
		t.Fatalf("unhealthy b is %s after the crash", st.State)
	}
	w.setSick("b", false)
	w.waitState("b", failover.Active)
}

// stamp is a hook command that writes the time in ns to <dir>/<name>,
// after sleeping.
func stamp(dir, name string, sleep string) string {
	return "sleep " + sleep + "; date +%s%N > " + filepath.Join(dir, name)
}

// readStamp waits for the file stamp writes and reads it.
func (w *world) readStamp(dir, name string) int64 {
	w.t.Helper()
	var n int64
	w.waitFor(name, func() bool {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return false
		}
		n, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return err == nil
	})
	return n
}

// F8: in a switchover the side giving up finishes on_passive before the
// other side activates: a's slow on_passive hook ends before b's on_active
// starts, and b is not active before then.
func TestSwitchoverWaitsForOnPassive(t *testing.T) {
	w := newWorld(t, func(c *config.Config) {
		c.Hooks.OnPassive = stamp(c.DataDir, "passive_done", "0.6")
		c.Hooks.OnActive = "date +%s%N > " + filepath.Join(c.DataDir, "active_started")
	})
	w.start("a")
	w.start("b")
	w.waitSteady()
	w.waitFor("the first hooks", func() bool {
		return w.nodes["a"].count(event.HookFinished) > 0 && w.nodes["b"].count(event.HookFinished) > 0
	})
	if _, err := admin(t, w.nodes["a"].nc, "a", api.VerbSwitchover, api.SwitchoverRequest{Request: head()}); err != nil {
		t.Fatal(err)
	}
	w.waitState("b", failover.Active)
	done, started := w.readStamp(w.nodes["a"].dir, "passive_done"), w.readStamp(w.nodes["b"].dir, "active_started")
	if started < done {
		t.Fatalf("b's on_active started %v before a's on_passive finished", time.Duration(done-started))
	}
	t.Logf("b's on_active started %v after a's on_passive finished", time.Duration(started-done))
	if w.inv.both() != 0 {
		t.Fatal("both nodes were active at once")
	}
}

// fakeRepl answers repl.status for node on its server, with the state the
// test sets; it counts the questions.
type fakeRepl struct {
	state atomic.Value // string
	asked atomic.Int64
	sub   *nats.Subscription
}

func (w *world) fakeReplicator(node, state string) *fakeRepl {
	f := &fakeRepl{}
	f.state.Store(state)
	nc, err := w.pair.Server(node).Connect("fake-replicator-" + node)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(nc.Close)
	f.sub, err = nc.Subscribe(subject.ReplAdmin(pairName, api.VerbReplStatus), func(m *nats.Msg) {
		var req api.ReplRequest
		if json.Unmarshal(m.Data, &req) != nil {
			return
		}
		f.asked.Add(1)
		_ = m.Respond(reply.OK(api.ReplReply{Status: api.ReplStatus{Node: node, Role: "master", State: f.state.Load().(string)}}))
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

// F9: failback automatic waits until the replicator says the master is in
// sync: while it answers "syncing" the master stays passive, however many
// settle delays pass; once it answers "running" the master takes back over.
func TestFailbackWaitsForSync(t *testing.T) {
	w := newWorld(t, func(c *config.Config) {
		c.Failback = config.FailbackAutomatic
	})
	repl := w.fakeReplicator("a", "syncing")
	w.start("b")
	w.waitState("b", failover.Active)
	w.start("a")
	w.waitState("a", failover.Passive)
	// The settle delay is 3 intervals (300 ms); the master asks every
	// interval: 10 answers of "syncing" span three settle delays.
	w.waitFor("a asked its replicator 10 times", func() bool { return repl.asked.Load() >= 10 })
	if st := w.status("a"); st.State != failover.Passive || st.InSync {
		t.Fatalf("a failed back while its replicator said syncing: %+v", st)
	}
	repl.state.Store("running")
	w.waitState("a", failover.Active)
	w.waitEvent("a", event.SwitchoverRequested, "F9: automatic failback")
}

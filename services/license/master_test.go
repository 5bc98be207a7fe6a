package license_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Run returns promptly when its node's NATS server died: it does not wait
// on the dead connection (the watcher's consumer delete used to wait out
// its 5 s request timeout on a connection that reconnects). In process,
// the connection closes with the server and Run says so.
func TestStopPromptAfterServerDied(t *testing.T) {
	w := newWorld(t, func(w *world) { w.tcp = true })
	for _, node := range []string{"a", "b"} {
		w.kill(node)
		start := time.Now()
		w.stop(node)
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("%s: Run took %v to return after its server died, want well under a second", node, took)
		}
	}
}

// heartbeatFrom publishes a monitor's heartbeat of node on node's server,
// as services/monitor does.
func (w *world) heartbeatFrom(node, pair, role string) {
	w.t.Helper()
	b, err := json.Marshal(map[string]any{"v": 1, "pair": pair, "node": node, "role": role, "state": "active",
		"epoch": 1, "maintenance": false, "maintenance_left_ms": 0, "maintenance_version": 0, "seq": 1,
		"sent": time.Now().UTC()})
	if err != nil {
		w.t.Fatal(err)
	}
	if err := w.nodes[node].nc.Publish(subject.Heartbeat(pair, node), b); err != nil {
		w.t.Fatal(err)
	}
}

// SPEC §8 does not make hosts mandatory: a standby that hosts does not tell
// its master starts, refuses adds saying so, learns the master from its
// heartbeats, then mirrors its licenses and names it in refusals (L2, L3).
// Restarted while the master is down, it reads the mirror it made.
func TestStandbyLearnsMasterFromHeartbeats(t *testing.T) {
	w := newWorld(t, func(w *world) { w.hosts = nil })
	_, err := w.add("b", w.issue("l1", "audit"))
	if re := asReplyError(t, err); re.Code != reply.CodeNotMaster || re.Node != "" || !contains(re.Message, "does not know yet") {
		t.Fatalf("refusal before the master is known: %+v", re)
	}
	if _, err := w.add("a", w.issue("l1", "audit")); err != nil {
		t.Fatal(err)
	}
	w.waitFor("b lists l1", func() bool {
		w.heartbeatFrom("b", pairName, "standby") // its own monitor's: not the master
		w.heartbeatFrom("a", "other", "master")   // another pair's
		w.heartbeatFrom("a", pairName, "master")
		for _, l := range w.list("b").Licenses {
			if l.ID == "l1" && l.Valid {
				return true
			}
		}
		return false
	})
	if st := w.waitStatus("b", api.LicenseValid, nil); st.Role != "standby" {
		t.Fatalf("standby state %+v", st)
	}
	_, err = w.add("b", w.issue("l2", "audit"))
	if re := asReplyError(t, err); re.Code != reply.CodeNotMaster || re.Node != "a" || !contains(re.Message, "master a") {
		t.Fatalf("refusal once the master is known: %+v", re)
	}

	w.kill("a")
	w.stop("a")
	w.stop("b")
	w.start("b")
	w.waitListed("b", "l1")
	_, err = w.add("b", w.issue("l3", "audit"))
	if re := asReplyError(t, err); re.Code != reply.CodeNotMaster || re.Node != "" {
		t.Fatalf("refusal after a restart with the master down: %+v", re)
	}
}

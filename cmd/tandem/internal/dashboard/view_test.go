package dashboard

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
)

var t0 = time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)

func ev(t *testing.T, node, typ string, epoch uint64, at time.Duration, data map[string]any) event.Envelope {
	t.Helper()
	e, err := event.New("print", node, "monitor", typ, epoch, t0.Add(at), data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func i64(n int64) *int64 { return &n }

// The standby's view after the master's crash: b active, a unreachable, the
// peer's silence aged to now, and the failover laid out step by step.
func TestBuildAfterCrash(t *testing.T) {
	evs := []event.Envelope{
		ev(t, "a", event.NodeActivated, 2, 0, map[string]any{"reason": "F2: no peer heard during discovery", "outage": false}),
		ev(t, "b", event.PeerLost, 2, 10*time.Second, map[string]any{"reason": "link to the peer closed", "peer": "a"}),
		ev(t, "b", event.NodeActivated, 3, 10*time.Second+8*time.Millisecond, map[string]any{"reason": "F6: outage: link closed", "outage": true}),
		ev(t, "b", event.HookFinished, 3, 10*time.Second+30*time.Millisecond, map[string]any{"hook": "on_active", "exit_code": 0, "duration_ms": 22}),
		ev(t, "b", event.FailoverNotified, 3, 10*time.Second+200*time.Millisecond, map[string]any{"epoch": 3, "known": 4, "acknowledged": 4, "notified_ms": 12, "all_acked_ms": 95}),
	}
	in := Input{
		Pair: "print", Self: "b", Now: t0.Add(20 * time.Second),
		Status: []api.StatusReply{{
			Pair: "print", Time: t0.Add(19 * time.Second),
			Self: api.NodeStatus{Node: "b", Role: "standby", State: "active", Epoch: 3},
			Peer: &api.NodeStatus{Node: "a", Role: "master", Epoch: 2, HeartbeatAgeMS: i64(9000)},
		}},
		Repl:   []api.ReplStatus{{Node: "b", State: "running", In: api.ReplDirection{From: "a", To: "b", LagMS: 3, Pending: 1}, Conflicts: 2}},
		Events: evs,
	}
	v := Build(in)
	if v.Active != "b" || v.Epoch != 3 || v.Master != "a" || v.SelfRole != "standby" {
		t.Errorf("active %q epoch %d master %q self role %q", v.Active, v.Epoch, v.Master, v.SelfRole)
	}
	if len(v.Nodes) != 2 || v.Nodes[0].Node != "a" || v.Nodes[0].Reachable || v.Nodes[0].State != "unknown" || v.Nodes[1].State != "active" {
		t.Fatalf("nodes %+v", v.Nodes)
	}
	if v.Nodes[0].HeartbeatAge != "10.00 s" {
		t.Errorf("a's heartbeat age %q, want the reply's 9 s aged by the 1 s since it", v.Nodes[0].HeartbeatAge)
	}
	if !strings.Contains(v.PeerLost, "lost its peer a") {
		t.Errorf("peer lost: %q", v.PeerLost)
	}
	if len(v.Repl) != 2 || v.Repl[0].To != "a" || v.Repl[0].State != "no answer" || v.Repl[1].From != "a" || v.Repl[1].Lag != "3 ms" {
		t.Errorf("replication %+v", v.Repl)
	}
	if len(v.Events) != 5 || v.Events[0].Type != event.FailoverNotified || v.Events[4].Type != event.NodeActivated {
		t.Errorf("events not newest first: %+v", v.Events)
	}
	tl := v.Timeline
	if tl == nil || tl.Node != "b" || tl.Epoch != 3 || tl.Kind != "failover" {
		t.Fatalf("timeline %+v", tl)
	}
	var got []string
	for _, s := range tl.Steps {
		got = append(got, s.Name+" "+s.After)
	}
	want := []string{"detection ", "activation 8 ms", "notification 12 ms", "hook on_active 10 ms", "acknowledgements 73 ms"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("timeline steps %q, want %q", got, want)
	}
	if !strings.Contains(tl.Steps[4].Detail, "4 of 4") {
		t.Errorf("acknowledgements: %q", tl.Steps[4].Detail)
	}
}

// Before any failover there is no timeline (a first start is not one);
// while the notifier still counts, its live status fills the steps in.
func TestTimelineProgress(t *testing.T) {
	first := []event.Envelope{ev(t, "a", event.NodeActivated, 2, 0, map[string]any{"reason": "F2: no peer heard", "outage": false})}
	if v := Build(Input{Pair: "print", Self: "a", Now: t0, Events: first}); v.Timeline != nil {
		t.Errorf("a first start makes a timeline: %+v", v.Timeline)
	}
	sw := append(first,
		ev(t, "a", event.SwitchoverRequested, 2, time.Second, map[string]any{"reason": "F8: operator"}),
		ev(t, "b", event.NodeActivated, 3, time.Second+40*time.Millisecond, map[string]any{"reason": "F8: switchover from a", "outage": false}))
	v := Build(Input{Pair: "print", Self: "a", Now: t0.Add(2 * time.Second), Events: sw,
		Sessions: []api.SessionStatus{{Node: "b", Epoch: 3, Known: 10, Acknowledged: 7, NotifiedMS: i64(5)}}})
	tl := v.Timeline
	if tl == nil || tl.Kind != "switchover" || len(tl.Steps) != 4 {
		t.Fatalf("timeline %+v", tl)
	}
	if tl.Steps[1].After != "40 ms" || tl.Steps[3].Name != "acknowledgements" || !strings.Contains(tl.Steps[3].Detail, "7 of 10 sessions acknowledged, waiting") {
		t.Errorf("steps %+v", tl.Steps)
	}
}

// At most MaxEvents events are listed, each once, and the conflicts are
// picked out of them.
func TestEventsBounded(t *testing.T) {
	var evs []event.Envelope
	for i := range 150 {
		evs = append(evs, ev(t, "a", event.ReplConflict, 2, time.Duration(i)*time.Millisecond,
			map[string]any{"table": "jobs", "pk": fmt.Sprint(i), "kind": "update", "winner": "a"}))
	}
	evs = append(evs, evs[149]) // the same event from the mirror
	v := Build(Input{Pair: "print", Self: "a", Now: t0, Events: evs})
	if len(v.Events) != MaxEvents || len(v.Conflicts) != maxConflicts || v.Conflicts[0].PK != "149" {
		t.Errorf("%d events, %d conflicts, newest %+v", len(v.Events), len(v.Conflicts), v.Conflicts[0])
	}
	if v.Events[0].Summary != "jobs 149: a wins" || v.Events[1].Summary != "jobs 148: a wins" {
		t.Errorf("summaries %q, %q", v.Events[0].Summary, v.Events[1].Summary)
	}
	b, err := json.Marshal(v)
	if err != nil || !strings.Contains(string(b), `"event_types":["tandem.repl.conflict"]`) {
		t.Errorf("json %v %.200s", err, b)
	}
}

// A node whose audit streams were changed is a critical alert on the page
// (and in the state JSON), naming the node and the change; an ok one is not.
func TestAuditAlert(t *testing.T) {
	in := Input{Pair: "print", Self: "a", Now: t0, Audit: []api.AuditState{
		{Node: "b", Status: api.AuditCritical, Changes: []string{"tandem_events_print_b: deleted"}, RestoreError: "timeout"},
		{Node: "a", Status: api.AuditOK},
	}}
	v := Build(in)
	if len(v.AuditAlerts) != 1 || v.AuditAlerts[0].Node != "b" || v.AuditAlerts[0].Restored {
		t.Fatalf("alerts %+v", v.AuditAlerts)
	}
	var b strings.Builder
	if err := tmpl.ExecuteTemplate(&b, "live", (&Dashboard{}).data(v, "")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `data-audit="b">CRITICAL: the audit streams of b were changed behind its back: tandem_events_print_b: deleted (not restored)`) ||
		strings.Contains(b.String(), `data-audit="a"`) {
		t.Fatalf("page:\n%s", b.String())
	}
}

package check

import (
	"errors"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/api"
)

// node is a node as it answers with every part running (replicator and
// notifier answered, nothing to report).
func node(name, state string, epoch uint64, reachable bool) api.NodeStatus {
	n := api.NodeStatus{Node: name, State: state, Epoch: epoch, Reachable: reachable}
	if reachable {
		n.Replication = &api.ReplStatus{Node: name, State: "running"}
		n.Sessions = &api.SessionStatus{Node: name}
	}
	return n
}

func pair(active string, nodes ...api.NodeStatus) api.PairStatus {
	ps := api.PairStatus{Pair: "p", Nodes: nodes}
	for _, n := range nodes {
		ps.Epoch = max(ps.Epoch, n.Epoch)
	}
	if active != "" {
		ps.Active = &active
	}
	return ps
}

func TestEvaluate(t *testing.T) {
	lagged := node("b", "passive", 3, true)
	lagged.Replication = &api.ReplStatus{Node: "b", State: "running", In: api.ReplDirection{LagMS: 12}}
	acked := node("a", "active", 3, true)
	acked.Sessions = &api.SessionStatus{Node: "a", Epoch: 3, Acknowledged: 20}
	paused := node("b", "passive", 3, true)
	paused.Replication = &api.ReplStatus{Node: "b", State: "paused", Paused: true}
	maint := node("a", "active", 3, true)
	maint.Maintenance = true
	invalid := node("b", "passive", 3, true)
	invalid.License = &api.LicenseState{Node: "b", Status: api.LicenseInvalid, Reason: "no contact for 29 days"}
	nowit := node("b", "passive", 3, true)
	nowit.Witness = &api.WitnessStatus{Reachable: false}
	withWit := node("a", "active", 3, true)
	withWit.Witness = &api.WitnessStatus{Reachable: true, Lease: true}
	warn := node("b", "passive", 3, true)
	warn.License = &api.LicenseState{Node: "b", Status: api.LicenseWarning, Reason: "3 days left"}
	drifted := node("b", "passive", 3, true)
	drifted.Audit = &api.AuditState{Node: "b", Status: api.AuditCritical, Restored: true,
		Changes: []string{"tandem_events_p_b: max_age is 1s, want 2160h0m0s"}}
	lost := node("a", "active", 3, true)
	lost.Audit = &api.AuditState{Node: "a", Status: api.AuditCritical, Changes: []string{"tandem_events_p_b: deleted"},
		RestoreError: "peer unreachable"}
	auditOK := node("b", "passive", 3, true)
	auditOK.Audit = &api.AuditState{Node: "b", Status: api.AuditOK}
	sick := func(n api.NodeStatus) api.NodeStatus {
		f := false
		n.Healthy = &f
		n.Checks = []api.CheckStatus{{Name: "spooler", Output: "HTTP 503"}, {Name: "port", Healthy: true}}
		return n
	}
	for _, c := range []struct {
		name string
		ps   api.PairStatus
		code int
		want string // in the line
	}{
		{"healthy", pair("a", acked, lagged), OK, "TANDEM OK - pair p: a active in epoch 3, b passive | epoch=3 lag=0.012s sessions_acked=20"},
		{"peer dead", pair("b", node("a", "active", 2, false), node("b", "active", 3, true)), Warning, "a unreachable"},
		{"paused", pair("a", node("a", "active", 3, true), paused), Warning, "replication paused on b"},
		{"maintenance", pair("a", maint, node("b", "passive", 3, true)), Warning, "maintenance on (a)"},
		{"license warning", pair("a", node("a", "active", 3, true), warn), Warning, "license warning on b"},
		{"witness unreachable", pair("a", withWit, nowit), Warning, "witness unreachable from b (seed behaviour"},
		{"witness fine", pair("a", withWit, node("b", "passive", 3, true)), OK, "TANDEM OK - pair p: a active in epoch 3"},
		{"no active", pair("", node("a", "passive", 3, true), node("b", "passive", 3, true)), Critical, "no active node"},
		{"two active", pair("a", node("a", "active", 4, true), node("b", "active", 3, true)), Critical, "2 active nodes (a, b)"},
		{"license invalid", pair("a", node("a", "active", 3, true), invalid), Critical, "licenses invalid on b"},
		{"audit ok", pair("a", acked, auditOK), OK, "TANDEM OK - pair p: a active in epoch 3, b passive"},
		{"audit drift restored", pair("a", acked, drifted), Critical, "audit streams changed on b (tandem_events_p_b: max_age is 1s, want 2160h0m0s; restored)"},
		{"audit mirror lost", pair("a", lost, auditOK), Critical, "audit streams changed on a (tandem_events_p_b: deleted; not restored: peer unreachable)"},
		{"passive unhealthy", pair("a", acked, sick(lagged)), Warning, "b unhealthy (check spooler)"},
		{"both unhealthy", pair("a", sick(acked), sick(lagged)), Critical, "no healthy node: a unhealthy (check spooler), b unhealthy (check spooler)"},
		{"alone and unhealthy", pair("b", node("a", "active", 2, false), sick(node("b", "active", 3, true))), Critical, "no healthy node: b unhealthy"},
		{"peer never heard", pair("b", node("b", "active", 13, true), api.NodeStatus{Role: "master"}), Warning,
			"pair p: b active in epoch 13, master never heard: the master (not heard since its peer started; hosts does not name it) unreachable | epoch=13"},
		{"a split replicator stopped", pair("a", acked, func() api.NodeStatus { n := lagged; n.Replication = nil; return n }()), Warning,
			"the replicator of b does not answer"},
		{"a split notifier stopped", pair("a", func() api.NodeStatus { n := acked; n.Sessions = nil; return n }(), lagged), Warning,
			"the notifier of a does not answer"},
		{"dead active, no takeover", pair("", node("a", "active", 3, false), node("b", "passive", 3, true)), Critical, "no active node; a unreachable"},
	} {
		r := Evaluate(c.ps)
		if r.Code != c.code || !strings.Contains(r.Line(), c.want) || !strings.HasPrefix(r.Line(), "TANDEM "+names[c.code]+" - ") {
			t.Errorf("%s: code %d, line %q; want %d with %q", c.name, r.Code, r.Line(), c.code, c.want)
		}
		if strings.Count(r.Line(), "\n") != 0 || strings.Count(r.Line(), "|") != 1 {
			t.Errorf("%s: not one line with one perfdata separator: %q", c.name, r.Line())
		}
	}
	u := UnknownResult("p", errors.New("connect to nats://x:\n refused"))
	if u.Code != Unknown || u.Line() != "TANDEM UNKNOWN - pair p: cannot ask: connect to nats://x: refused" {
		t.Errorf("unknown: %d %q", u.Code, u.Line())
	}
}

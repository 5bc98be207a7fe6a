// Package check decides what `tandem check` reports about a pair, following
// the monitoring-plugins convention (Nagios, Icinga, Sensu, Zabbix agents):
// one line "TANDEM <STATUS> - <summary> | <perfdata>" and an exit status
// 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
//
// Evaluate is a pure function of the pair's status as `tandem status`
// assembles it (api.Combine plus the services' parts): no I/O, no clock.
//
//   - CRITICAL: no active node; two active nodes; licenses invalid on a node;
//     a node's audit streams changed behind its back (until restored and
//     unchanged for the guard's hold time); no reachable node healthy (F15:
//     both unhealthy, or the only one).
//   - WARNING: a node unreachable, or its replicator or notifier silent; replication paused or blocked; a license
//     warning (the standby's grace running out); maintenance on; a node
//     unhealthy while another is healthy; the witness unreachable from a
//     node (F14).
//   - UNKNOWN: the pair could not be asked (the caller's Unknown).
package check

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tandem-ha/tandem/pkg/api"
)

// Exit statuses of the monitoring-plugins convention.
const (
	OK       = 0
	Warning  = 1
	Critical = 2
	Unknown  = 3
)

var names = [...]string{"OK", "WARNING", "CRITICAL", "UNKNOWN"}

// Result is what the check prints and exits with.
type Result struct {
	Code     int      `json:"code"`
	Status   string   `json:"status"` // OK, WARNING, CRITICAL, UNKNOWN
	Summary  string   `json:"summary"`
	Problems []string `json:"problems,omitempty"`
	// Perf is the performance data, label → value ("U" when unknown).
	Perf map[string]string `json:"perf"`
}

// Line is the plugin output: "TANDEM OK - … | epoch=4 lag=0.012s sessions_acked=20".
func (r Result) Line() string {
	s := "TANDEM " + r.Status + " - " + r.Summary
	if len(r.Problems) > 0 {
		s += ": " + strings.Join(r.Problems, "; ")
	}
	if len(r.Perf) == 0 {
		return s
	}
	keys := make([]string, 0, len(r.Perf))
	for k := range r.Perf {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	perf := make([]string, len(keys))
	for i, k := range keys {
		perf[i] = k + "=" + r.Perf[k]
	}
	return s + " | " + strings.Join(perf, " ")
}

// UnknownResult is the result when the pair cannot be asked.
func UnknownResult(pair string, err error) Result {
	what := "cannot ask"
	if pair != "" {
		what = "pair " + pair + ": cannot ask"
	}
	return Result{Code: Unknown, Status: names[Unknown], Summary: what + ": " + oneLine(err.Error())}
}

// Evaluate decides the check's result from the pair's status.
func Evaluate(ps api.PairStatus) Result {
	r := Result{Code: OK, Perf: perf(ps)}
	raise := func(code int, format string, args ...any) {
		r.Code = max(r.Code, code)
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
	var actives []string
	for _, n := range ps.Nodes {
		if n.State == "active" && (n.Reachable || (ps.Active != nil && *ps.Active == n.Node)) {
			actives = append(actives, n.Node)
		}
	}
	switch len(actives) {
	case 0:
		raise(Critical, "no active node")
	case 1:
	default:
		raise(Critical, "%d active nodes (%s)", len(actives), strings.Join(actives, ", "))
	}
	for _, n := range ps.Nodes {
		nodeProblems(n, raise)
	}
	silentParts(ps, raise)
	healthProblems(ps.Nodes, raise)
	r.Status = names[r.Code]
	r.Summary = summary(ps)
	return r
}

// silentParts warns about a reachable node whose replicator or notifier
// did not answer while the other node's did (one part of a split node
// stopped): status says "no answer", and check must not say OK. A part no
// node answers for is taken as not run at all.
func silentParts(ps api.PairStatus, raise func(int, string, ...any)) {
	parts := []struct {
		name string
		has  func(api.NodeStatus) bool
	}{
		{"replicator", func(n api.NodeStatus) bool { return n.Replication != nil }},
		{"notifier", func(n api.NodeStatus) bool { return n.Sessions != nil }},
	}
	for _, p := range parts {
		if !slices.ContainsFunc(ps.Nodes, p.has) {
			continue
		}
		for _, n := range ps.Nodes {
			if n.Reachable && !p.has(n) {
				raise(Warning, "the %s of %s does not answer", p.name, n.Node)
			}
		}
	}
}

func nodeProblems(n api.NodeStatus, raise func(int, string, ...any)) {
	if !n.Reachable {
		age := ""
		if n.HeartbeatAgeMS != nil {
			age = fmt.Sprintf(", last heard %.1fs ago", float64(*n.HeartbeatAgeMS)/1000)
		}
		name := n.Node
		if name == "" {
			name = "the " + n.Role + " (not heard since its peer started; hosts does not name it)"
		}
		raise(Warning, "%s unreachable%s", name, age)
	}
	if n.Maintenance {
		raise(Warning, "maintenance on (%s)", n.Node)
	}
	if w := n.Witness; w != nil && !w.Reachable {
		if w.Required {
			raise(Warning, "witness unreachable from %s (witness.required: no activation without it)", n.Node)
		} else {
			raise(Warning, "witness unreachable from %s (seed behaviour: both nodes may be active during a cut)", n.Node)
		}
	}
	if st := n.Replication; st != nil && (st.State == "paused" || st.State == "blocked" || st.Paused) {
		msg := fmt.Sprintf("replication %s on %s", st.State, n.Node)
		if st.Reason != "" {
			msg += " (" + st.Reason + ")"
		}
		raise(Warning, "%s", msg)
	}
	if a := n.Audit; a != nil && a.Status == api.AuditCritical {
		restored := "restored"
		if a.RestoreError != "" {
			restored = "not restored: " + a.RestoreError
		}
		raise(Critical, "audit streams changed on %s (%s; %s)", n.Node, strings.Join(a.Changes, "; "), restored)
	}
	if l := n.License; l != nil {
		switch l.Status {
		case api.LicenseInvalid:
			raise(Critical, "licenses invalid on %s (%s)", n.Node, l.Reason)
		case api.LicenseWarning:
			raise(Warning, "license warning on %s (%s)", n.Node, l.Reason)
		}
	}
}

// healthProblems reports the reachable nodes whose health checks fail
// (F15): critical when none is healthy, a warning otherwise.
func healthProblems(nodes []api.NodeStatus, raise func(int, string, ...any)) {
	var sick []string
	healthy := 0
	for _, n := range nodes {
		switch {
		case !n.Reachable:
		case n.IsHealthy():
			healthy++
		default:
			sick = append(sick, fmt.Sprintf("%s unhealthy (check %s)", n.Node, strings.Join(failingChecks(n), ", ")))
		}
	}
	if len(sick) == 0 {
		return
	}
	if healthy == 0 {
		raise(Critical, "no healthy node: %s", strings.Join(sick, ", "))
		return
	}
	raise(Warning, "%s", strings.Join(sick, ", "))
}

func failingChecks(n api.NodeStatus) []string {
	var out []string
	for _, c := range n.Checks {
		if !c.Healthy {
			out = append(out, c.Name)
		}
	}
	if len(out) == 0 {
		out = []string{"(not named)"}
	}
	return out
}

// summary is the pair in a few words: "pair p: a active in epoch 4, b passive".
func summary(ps api.PairStatus) string {
	parts := make([]string, 0, len(ps.Nodes))
	for _, n := range ps.Nodes {
		state := n.State
		if state == "" {
			state = "unknown"
		}
		if !n.Reachable {
			state = "unreachable (last " + state + ")"
		}
		if ps.Active != nil && *ps.Active == n.Node {
			state += " in epoch " + strconv.FormatUint(n.Epoch, 10)
		}
		name := n.Node
		if name == "" {
			name, state = n.Role, "never heard"
		}
		parts = append(parts, name+" "+state)
	}
	return fmt.Sprintf("pair %s: %s", ps.Pair, strings.Join(parts, ", "))
}

// perf is the performance data: the pair's epoch, the largest replication
// lag of either direction, and the sessions acknowledged at the newest
// epoch (U when no service said).
func perf(ps api.PairStatus) map[string]string {
	p := map[string]string{"epoch": strconv.FormatUint(ps.Epoch, 10), "lag": "U", "sessions_acked": "U"}
	lag, acked := int64(-1), -1
	var ackEpoch uint64
	for _, n := range ps.Nodes {
		if st := n.Replication; st != nil {
			lag = max(lag, st.In.LagMS)
		}
		switch s := n.Sessions; {
		case s == nil:
		case s.Epoch > ackEpoch || acked < 0:
			acked, ackEpoch = s.Acknowledged, s.Epoch
		case s.Epoch == ackEpoch:
			acked = max(acked, s.Acknowledged)
		}
	}
	if lag >= 0 {
		p["lag"] = strconv.FormatFloat(float64(lag)/1000, 'f', 3, 64) + "s"
	}
	if acked >= 0 {
		p["sessions_acked"] = strconv.Itoa(acked)
	}
	return p
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

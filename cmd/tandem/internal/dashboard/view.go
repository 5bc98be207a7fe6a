package dashboard

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
)

// MaxEvents is how many of the newest events the page lists.
const MaxEvents = 100

// maxConflicts is how many of the latest conflicts the page lists.
const maxConflicts = 10

// Check is one health check of a node (F15), as the status carries it.
type Check struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Output  string `json:"output,omitempty"`
	Since   string `json:"since,omitempty"`
}

// Health is what a node's status says of its health checks, when it has any.
type Health struct {
	Healthy *bool   `json:"healthy,omitempty"`
	Checks  []Check `json:"checks,omitempty"`
}

// Input is everything one gathering brought: the answers of the admin verbs
// of both nodes (those that answered) and the newest events of the node's
// streams. Build turns it into a View; it does no I/O.
type Input struct {
	Pair string
	Self string // the node serving the dashboard
	Now  time.Time

	Status   []api.StatusReply
	Health   map[string]Health // node → its checks, when its status carried them
	Repl     []api.ReplStatus
	License  []api.LicenseState
	Audit    []api.AuditState
	Sessions []api.SessionStatus
	Events   []event.Envelope // any order
	Problems []string         // what could not be gathered, said on the page
}

// View is the page's content: what the HTML template renders, and what the
// JSON export of the state carries.
type View struct {
	Pair     string    `json:"pair"`
	Self     string    `json:"self"`
	Time     time.Time `json:"time"`
	Epoch    uint64    `json:"epoch"`
	Active   string    `json:"active,omitempty"`
	SelfRole string    `json:"self_role,omitempty"`
	Master   string    `json:"master,omitempty"`
	// PeerLost says, in words, that the serving node has lost its peer.
	PeerLost string `json:"peer_lost,omitempty"`

	Nodes     []NodeView     `json:"nodes"`
	Repl      []ReplView     `json:"replication"`
	Conflicts []ConflictView `json:"conflicts"`
	Sessions  []SessionView  `json:"sessions"`
	Licenses  []LicenseView  `json:"licenses"`
	// AuditAlerts say which node's audit streams were changed behind its
	// back (SPEC §7 A3), while its guard reports them critical.
	AuditAlerts []AuditAlert `json:"audit_alerts,omitempty"`
	Events      []EventView  `json:"events"`
	Types       []string     `json:"event_types"`
	Timeline    *Timeline    `json:"timeline,omitempty"`
	Problems    []string     `json:"problems,omitempty"`
}

// NodeView is one node's row.
type NodeView struct {
	Node         string  `json:"node"`
	Role         string  `json:"role"`
	State        string  `json:"state"`
	Epoch        uint64  `json:"epoch"`
	Reachable    bool    `json:"reachable"`
	Self         bool    `json:"self"`
	HeartbeatAge string  `json:"heartbeat_age,omitempty"`
	Maintenance  string  `json:"maintenance"`
	Switchover   string  `json:"switchover,omitempty"`
	Healthy      *bool   `json:"healthy,omitempty"`
	Checks       []Check `json:"checks,omitempty"`
}

// ReplView is one direction of replication, as its receiving node sees it.
type ReplView struct {
	From      string `json:"from"`
	To        string `json:"to"`
	State     string `json:"state"`
	Reason    string `json:"reason,omitempty"`
	Lag       string `json:"lag"`
	Pending   uint64 `json:"pending"`
	Conflicts int64  `json:"conflicts"`
}

// ConflictView is one of the latest conflicts (R3).
type ConflictView struct {
	Time   string `json:"time"`
	Node   string `json:"node"`
	Table  string `json:"table"`
	PK     string `json:"pk"`
	Kind   string `json:"kind"`
	Winner string `json:"winner"`
}

// SessionView is one notifier's view of the sessions.
type SessionView struct {
	Node         string `json:"node"`
	Epoch        uint64 `json:"epoch"`
	Active       string `json:"active,omitempty"`
	Known        int    `json:"known"`
	Acknowledged int    `json:"acknowledged"`
	AllAcked     string `json:"all_acked,omitempty"`
	PushClients  int    `json:"push_clients"`
}

// LicenseView is one node's license state.
type LicenseView struct {
	Node      string `json:"node"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	GraceLeft string `json:"grace_left,omitempty"`
	Licenses  int    `json:"licenses"`
}

// EventView is one event of the list.
type EventView struct {
	Time    string `json:"time"`
	Type    string `json:"type"`
	Node    string `json:"node"`
	Epoch   uint64 `json:"epoch"`
	Summary string `json:"summary"`
}

// Timeline is the last failover (or switchover), step by step.
type Timeline struct {
	Kind   string `json:"kind"` // failover or switchover
	Node   string `json:"node"` // the node that took over
	Epoch  uint64 `json:"epoch"`
	Reason string `json:"reason"`
	Steps  []Step `json:"steps"`
}

// Step is one step of a Timeline, in the order they happened. At is its
// wall-clock time; After is how long after the previous step it came (""
// for the first, and for a step that has not happened yet).
type Step struct {
	Name   string `json:"name"`
	At     string `json:"at,omitempty"`
	After  string `json:"after,omitempty"`
	Detail string `json:"detail,omitempty"`
}

// Build assembles the view of in. It is a pure function of its input.
func Build(in Input) View {
	v := View{Pair: in.Pair, Self: in.Self, Time: in.Now.UTC(), Problems: in.Problems}
	v.Nodes = nodes(in)
	for _, n := range v.Nodes {
		if n.Epoch > v.Epoch {
			v.Epoch = n.Epoch
		}
		if n.Role == "master" {
			v.Master = n.Node
		}
		if n.Self {
			v.SelfRole = n.Role
		}
	}
	if ps := api.Combine(in.Pair, in.Status); ps.Active != nil {
		v.Active = *ps.Active
	}
	v.PeerLost = peerLost(in)
	v.Repl = repl(in.Repl, v.Nodes)
	v.Sessions = sessions(in.Sessions)
	v.Licenses = licenses(in.License)
	v.AuditAlerts = auditAlerts(in.Audit)
	evs := newestFirst(in.Events)
	v.Conflicts = conflicts(evs)
	v.Events, v.Types = eventList(evs)
	v.Timeline = timeline(evs, in.Sessions)
	return v
}

// nodes are the pair's nodes, as api.Combine merges the status replies,
// each marked with whether it serves the page and with its health checks.
func nodes(in Input) []NodeView {
	ps := api.Combine(in.Pair, aged(in.Status, in.Now))
	out := make([]NodeView, 0, len(ps.Nodes))
	for _, n := range ps.Nodes {
		nv := NodeView{Node: n.Node, Role: n.Role, State: n.State, Epoch: n.Epoch, Reachable: n.Reachable,
			Self: n.Node == in.Self, Maintenance: "off", Switchover: n.Switchover}
		if nv.State == "" {
			nv.State = "unknown"
		}
		if n.HeartbeatAgeMS != nil {
			nv.HeartbeatAge = ms(*n.HeartbeatAgeMS)
		}
		if n.Maintenance {
			nv.Maintenance = strings.TrimSpace("on " + n.MaintenanceLeft)
		}
		if h, ok := in.Health[n.Node]; ok {
			nv.Healthy, nv.Checks = h.Healthy, h.Checks
		}
		out = append(out, nv)
	}
	return out
}

// aged returns the replies with the peer's heartbeat age carried forward
// from the time of each reply to now: a monitor's status is a snapshot, and
// a dead peer's silence keeps growing after it.
func aged(rs []api.StatusReply, now time.Time) []api.StatusReply {
	out := make([]api.StatusReply, len(rs))
	for i, r := range rs {
		if r.Peer != nil && r.Peer.HeartbeatAgeMS != nil && !r.Time.IsZero() && now.After(r.Time) {
			p := *r.Peer
			age := *p.HeartbeatAgeMS + now.Sub(r.Time).Milliseconds()
			p.HeartbeatAgeMS = &age
			r.Peer = &p
		}
		out[i] = r
	}
	return out
}

// peerLost says that the serving node has lost its peer, or "" while it
// hears it.
func peerLost(in Input) string {
	for _, r := range aged(in.Status, in.Now) {
		if r.Self.Node != in.Self {
			continue
		}
		if r.Peer == nil || r.Peer.Node == "" {
			return fmt.Sprintf("Node %s has not heard its peer since it started.", in.Self)
		}
		if r.Peer.Reachable {
			return ""
		}
		msg := fmt.Sprintf("Node %s has lost its peer %s", in.Self, r.Peer.Node)
		if r.Peer.HeartbeatAgeMS != nil {
			msg += fmt.Sprintf(": its last heartbeat came %s ago", ms(*r.Peer.HeartbeatAgeMS))
		}
		return msg + "."
	}
	if len(in.Status) == 0 {
		return ""
	}
	return fmt.Sprintf("Node %s's monitor does not answer.", in.Self)
}

// repl is one row per direction, as its receiving node reports it; a node
// of the pair whose replicator does not answer gets a row saying so.
func repl(rs []api.ReplStatus, nodes []NodeView) []ReplView {
	out := make([]ReplView, 0, len(nodes))
	for _, n := range nodes {
		if !slices.ContainsFunc(rs, func(r api.ReplStatus) bool { return r.Node == n.Node }) {
			from := "peer"
			for _, o := range nodes {
				if o.Node != n.Node {
					from = o.Node
				}
			}
			out = append(out, ReplView{From: from, To: n.Node, State: "no answer", Lag: "–"})
		}
	}
	for _, r := range rs {
		from := r.In.From
		if from == "" {
			from = "peer"
		}
		state := r.State
		if r.Snapshot != nil {
			state = fmt.Sprintf("%s %.0f%%", state, *r.Snapshot*100)
		}
		out = append(out, ReplView{From: from, To: r.Node, State: state, Reason: r.Reason, Lag: ms(r.In.LagMS),
			Pending: r.In.Pending, Conflicts: r.Conflicts})
	}
	slices.SortFunc(out, func(a, b ReplView) int { return strings.Compare(a.To, b.To) })
	return out
}

func sessions(ss []api.SessionStatus) []SessionView {
	out := make([]SessionView, 0, len(ss))
	for _, s := range ss {
		sv := SessionView{Node: s.Node, Epoch: s.Epoch, Active: s.Active, Known: s.Known, Acknowledged: s.Acknowledged,
			PushClients: s.PushClients}
		if s.AllAckedMS != nil {
			sv.AllAcked = ms(*s.AllAckedMS)
		}
		out = append(out, sv)
	}
	slices.SortFunc(out, func(a, b SessionView) int { return strings.Compare(a.Node, b.Node) })
	return out
}

func licenses(ls []api.LicenseState) []LicenseView {
	out := make([]LicenseView, 0, len(ls))
	for _, l := range ls {
		grace := l.GraceLeft
		if d, err := time.ParseDuration(grace); err == nil {
			grace = humanDuration(d)
		}
		out = append(out, LicenseView{Node: l.Node, Status: l.Status, Reason: l.Reason, GraceLeft: grace, Licenses: l.Licenses})
	}
	slices.SortFunc(out, func(a, b LicenseView) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// newestFirst sorts a copy of evs by time, newest first, without duplicates.
func newestFirst(evs []event.Envelope) []event.Envelope {
	seen := make(map[string]bool, len(evs))
	out := make([]event.Envelope, 0, len(evs))
	for _, e := range evs {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b event.Envelope) int { return b.Time.Compare(a.Time) })
	return out
}

func eventList(evs []event.Envelope) ([]EventView, []string) {
	n := min(len(evs), MaxEvents)
	out := make([]EventView, 0, n)
	types := map[string]bool{}
	for _, e := range evs[:n] {
		out = append(out, EventView{Time: clock(e.Time), Type: e.Type, Node: e.Node, Epoch: e.Epoch, Summary: summary(e)})
		types[e.Type] = true
	}
	list := make([]string, 0, len(types))
	for t := range types {
		list = append(list, t)
	}
	slices.Sort(list)
	return out, list
}

func conflicts(evs []event.Envelope) []ConflictView {
	var out []ConflictView
	for _, e := range evs {
		if e.Type != event.ReplConflict || len(out) == maxConflicts {
			continue
		}
		d := data(e)
		out = append(out, ConflictView{Time: clock(e.Time), Node: e.Node, Table: str(d, "table"), PK: str(d, "pk"),
			Kind: str(d, "kind"), Winner: str(d, "winner")})
	}
	return out
}

// summary is one line on what an event says: its reason, or its main data.
func summary(e event.Envelope) string {
	d := data(e)
	if r := str(d, "reason"); r != "" {
		return r
	}
	switch e.Type {
	case event.HookFinished:
		return fmt.Sprintf("%s exited %v after %v ms", str(d, "hook"), d["exit_code"], d["duration_ms"])
	case event.FailoverNotified:
		return fmt.Sprintf("epoch %v: %v of %v sessions acknowledged", d["epoch"], d["acknowledged"], d["known"])
	case event.ReplConflict:
		return fmt.Sprintf("%s %s: %s wins", str(d, "table"), str(d, "pk"), str(d, "winner"))
	}
	b, _ := json.Marshal(d)
	if len(b) > 160 {
		b = append(b[:157], "..."...)
	}
	return string(b)
}

// timeline finds the last failover or switchover in evs (newest first) and
// lays out its steps: detection, activation, the on_active hook,
// notification and acknowledgements. The notifier's live progress fills in
// what its tandem.failover.notified event does not say yet.
func timeline(evs []event.Envelope, ss []api.SessionStatus) *Timeline {
	i := slices.IndexFunc(evs, isTakeover)
	if i < 0 {
		return nil
	}
	act := evs[i]
	d := data(act)
	t := &Timeline{Kind: "failover", Node: act.Node, Epoch: act.Epoch, Reason: str(d, "reason")}
	if d["outage"] != true {
		t.Kind = "switchover"
	}
	type timed struct {
		at   time.Time
		step Step
	}
	var steps []timed
	var pending []Step // steps that have not happened yet
	add := func(name string, at time.Time, detail string) {
		if at.IsZero() {
			pending = append(pending, Step{Name: name, Detail: detail})
			return
		}
		steps = append(steps, timed{at, Step{Name: name, At: clock(at), Detail: detail}})
	}
	if det, ok := detection(evs[i+1:], act); ok {
		add("detection", det.Time, fmt.Sprintf("%s: %s", det.Type, str(data(det), "reason")))
	}
	add("activation", act.Time, fmt.Sprintf("%s active in epoch %d", act.Node, act.Epoch))
	for _, e := range evs[:i] {
		if e.Type == event.HookFinished && e.Node == act.Node && e.Epoch == act.Epoch && str(data(e), "hook") == "on_active" {
			add("hook on_active", e.Time, summary(e))
			break
		}
	}
	notified(act, evs[:i], ss, add)
	slices.SortStableFunc(steps, func(a, b timed) int { return a.at.Compare(b.at) })
	for j, s := range steps {
		if j > 0 {
			s.step.After = ms(s.at.Sub(steps[j-1].at).Milliseconds())
		}
		t.Steps = append(t.Steps, s.step)
	}
	t.Steps = append(t.Steps, pending...)
	return t
}

// isTakeover is an activation that is a failover (F6) or a handover
// (switchover F8, failback F9, health F15), not a node's first start.
func isTakeover(e event.Envelope) bool {
	if e.Type != event.NodeActivated {
		return false
	}
	d := data(e)
	r := str(d, "reason")
	return d["outage"] == true || strings.HasPrefix(r, "F8") || strings.HasPrefix(r, "F9") || strings.HasPrefix(r, "F15")
}

// detection is the event that started the takeover: the activating node's
// loss of its peer, or the switchover's request, shortly before it.
func detection(older []event.Envelope, act event.Envelope) (event.Envelope, bool) {
	for _, e := range older {
		if act.Time.Sub(e.Time) > time.Minute {
			break
		}
		if e.Type == event.PeerLost && e.Node == act.Node || e.Type == event.SwitchoverRequested {
			return e, true
		}
	}
	return event.Envelope{}, false
}

// notified adds the notification and acknowledgement steps: from the
// notifier's event for the epoch, else from its live status.
func notified(act event.Envelope, newer []event.Envelope, ss []api.SessionStatus, add func(string, time.Time, string)) {
	var notMS, ackMS *int64
	known, acked := -1, 0
	for j := len(newer) - 1; j >= 0; j-- { // the oldest first: the first report
		e := newer[j]
		if e.Type != event.FailoverNotified || e.Epoch != act.Epoch {
			continue
		}
		d := data(e)
		notMS, ackMS = num(d, "notified_ms"), num(d, "all_acked_ms")
		known, acked = intOf(d, "known"), intOf(d, "acknowledged")
		break
	}
	if notMS == nil {
		for _, s := range ss {
			if s.Node == act.Node && s.Epoch == act.Epoch {
				notMS, ackMS, known, acked = s.NotifiedMS, s.AllAckedMS, s.Known, s.Acknowledged
			}
		}
	}
	if notMS == nil {
		add("notification", time.Time{}, "not yet sent")
		return
	}
	add("notification", act.Time.Add(time.Duration(*notMS)*time.Millisecond), fmt.Sprintf("published %s after the activation", ms(*notMS)))
	detail := fmt.Sprintf("%d of %d sessions acknowledged", acked, max(known, 0))
	if ackMS == nil {
		add("acknowledgements", time.Time{}, detail+", waiting")
		return
	}
	add("acknowledgements", act.Time.Add(time.Duration(*ackMS)*time.Millisecond), fmt.Sprintf("%s; all %s after the activation", detail, ms(*ackMS)))
}

func data(e event.Envelope) map[string]any {
	var d map[string]any
	_ = json.Unmarshal(e.Data, &d) // a stored event's data is valid JSON; anything else shows as empty
	return d
}

func str(d map[string]any, k string) string {
	s, _ := d[k].(string)
	return s
}

func num(d map[string]any, k string) *int64 {
	f, ok := d[k].(float64)
	if !ok {
		return nil
	}
	n := int64(f)
	return &n
}

func intOf(d map[string]any, k string) int {
	if n := num(d, k); n != nil {
		return int(*n)
	}
	return 0
}

// ms writes a number of milliseconds for people: 8 ms, 1.25 s, 3m10s.
func ms(n int64) string {
	d := time.Duration(n) * time.Millisecond
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", n)
	case d < time.Minute:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return humanDuration(d)
}

// humanDuration rounds d to what matters: days and hours, or minutes and
// seconds.
func humanDuration(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%dd %dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	}
	return d.Round(time.Second).String()
}

func clock(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000") }

// AuditAlert is one node's critical audit state.
type AuditAlert struct {
	Node     string `json:"node"`
	Changes  string `json:"changes"`
	Restored bool   `json:"restored"`
}

func auditAlerts(as []api.AuditState) []AuditAlert {
	var out []AuditAlert
	for _, a := range as {
		if a.Status == api.AuditCritical {
			out = append(out, AuditAlert{Node: a.Node, Changes: strings.Join(a.Changes, "; "), Restored: a.RestoreError == ""})
		}
	}
	slices.SortFunc(out, func(a, b AuditAlert) int { return strings.Compare(a.Node, b.Node) })
	return out
}

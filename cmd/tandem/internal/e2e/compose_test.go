// Package e2e tests the Docker Compose pair of deploy/ end to end: real
// containers killed, restarted and cut off from each other with docker, the
// pair observed only through what an operator has — the tandem command in
// the containers, the sessions' output, the print queue's HTTP API, and the
// audit trail. It runs with `make e2e` (part of `make test` when a Docker
// engine answers) and is skipped otherwise.
package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
)

// Generous bounds: they make a broken stack fail instead of hang, and say
// nothing about speed (make bench measures that).
const (
	startLimit = 2 * time.Minute
	stepLimit  = time.Minute
)

var (
	nodeA    = []string{"nats-a", "monitor-a", "replicator-a", "notifier-a", "license-a", "dashboard-a", "printq-a"}
	sessions = []string{"desk-1", "desk-2", "desk-3"}
)

func TestCompose(t *testing.T) {
	s := newStack(t)
	s.up()

	// 1. Master active, standby passive, every session known to the master.
	var first api.PairStatus
	s.await("master active, standby passive", startLimit, func() (bool, string) {
		ps, err := s.status("nats-a")
		if err != nil {
			return false, err.Error()
		}
		first = ps
		a, b := node(ps, "a"), node(ps, "b")
		return a.State == "active" && b.State == "passive" && b.Reachable, describe(ps)
	})
	s.awaitSessions("nats-a", first.Epoch)
	// Each node's dashboard container serves the live page on its published
	// port, to the Compose pair's operator only.
	for _, d := range []string{"dashboard-a", "dashboard-b"} {
		s.awaitDashboard(d, `data-node="a" data-state="active"`, `data-node="b" data-state="passive"`)
		if code, err := s.dashboardCode(d); code != http.StatusUnauthorized {
			t.Errorf("%s without credentials: %d (%v), want 401", d, code, err)
		}
	}

	// 2. The application serves on the active node only; what it
	// acknowledges is replicated.
	var acked []string
	s.await("printq on b refuses, naming a", stepLimit, func() (bool, string) {
		_, code, err := s.submit("printq-b", "floor-1", "refused")
		return code == 503, fmt.Sprint(err)
	})
	acked = append(acked, s.submitN("printq-a", "before the crash", 20)...)
	s.awaitVerified("nats-a")

	// 3. Kill every container of the master: the standby takes over, every
	// session switches to it, its queue serves every acknowledged job.
	for _, c := range nodeA {
		s.must(run("docker", "kill", s.id(c)))
	}
	var crash api.PairStatus
	s.await("standby active after the master's crash", stepLimit, func() (bool, string) {
		ps, err := s.status("nats-b")
		if err != nil {
			return false, err.Error()
		}
		crash = ps
		b := node(ps, "b")
		return b.State == "active" && b.Epoch > first.Epoch, describe(ps)
	})
	for _, d := range sessions {
		s.await(d+" switched to b", stepLimit, func() (bool, string) {
			lines, err := s.switches(d)
			if err != nil {
				return false, err.Error()
			}
			return slices.ContainsFunc(lines, func(l switchLine) bool { return l.To == "b" && l.Epoch == crash.Epoch }),
				fmt.Sprintf("%+v", lines)
		})
	}
	s.awaitJobs("printq-b", acked)
	s.awaitDashboard("dashboard-b", `data-node="b" data-state="active"`)
	acked = append(acked, s.submitN("printq-b", "after the crash", 10)...)

	// 4. Restart the master's containers: with failback manual it comes
	// back passive and catches up.
	for _, c := range nodeA {
		s.must(run("docker", "start", s.id(c)))
	}
	s.await("master back, passive", startLimit, func() (bool, string) {
		ps, err := s.status("nats-a")
		if err != nil {
			return false, err.Error()
		}
		a, b := node(ps, "a"), node(ps, "b")
		return a.State == "passive" && a.Reachable && b.State == "active" && b.Epoch == crash.Epoch, describe(ps)
	})
	s.awaitVerified("nats-b")

	// 5. Cut the link between the sites: both nodes activate, each in an
	// epoch of its own parity; each queue accepts work.
	link := s.project + "_link"
	natsB := s.id("nats-b")
	s.must(run("docker", "network", "disconnect", link, natsB))
	var splitA, splitB api.NodeStatus
	s.await("both active while cut off", stepLimit, func() (bool, string) {
		pa, errA := s.status("nats-a")
		pb, errB := s.status("nats-b")
		if errA != nil || errB != nil {
			return false, fmt.Sprint(errA, errB)
		}
		splitA, splitB = node(pa, "a"), node(pb, "b")
		return splitA.State == "active" && splitB.State == "active" && !node(pa, "b").Reachable,
			describe(pa) + " | " + describe(pb)
	})
	if splitA.Epoch == splitB.Epoch {
		t.Fatalf("both nodes active in epoch %d", splitA.Epoch)
	}
	acked = append(acked, s.submitN("printq-a", "split, on a", 5)...)
	acked = append(acked, s.submitN("printq-b", "split, on b", 5)...)

	// 6. Heal: the master stays active, the standby goes passive (F7: the
	// standby yields to the master's higher epoch, or the master moves to an
	// epoch above both once the link is stable — whichever comes first), the
	// databases converge with nothing lost.
	s.must(run("docker", "network", "connect", "--alias", "nats-b", link, natsB)) // as Compose attached it
	var healed api.PairStatus
	s.await("master active, standby passive after the heal", startLimit, func() (bool, string) {
		ps, err := s.status("nats-a")
		if err != nil {
			return false, err.Error()
		}
		healed = ps
		a, b := node(ps, "a"), node(ps, "b")
		return a.State == "active" && b.State == "passive" && b.Reachable && a.Epoch >= max(splitA.Epoch, splitB.Epoch), describe(ps)
	})
	s.awaitSessions("nats-a", healed.Epoch)
	s.awaitVerified("nats-a")
	s.awaitJobs("printq-a", acked)

	// 7. The audit trail tells the whole story, on both nodes, and no epoch
	// ever had two active nodes.
	for _, via := range []string{"nats-a", "nats-b"} {
		s.checkStory(via, healed.Epoch)
	}

	// 8. Freeze the protected service on the active node, not Tandem
	// (F15): b takes over while every Tandem container of a lives, the
	// reason naming a's check of printq.
	s.freezeService(healed)
}

// freezeService pauses printq-a (docker pause: its /healthz stops
// answering) and waits for b to take over with a's check of printq named
// in the reason, while a's Tandem containers run on; then it thaws it.
func (s *stack) freezeService(before api.PairStatus) {
	s.t.Helper()
	started := func(c string) string {
		return strings.TrimSpace(s.must(run("docker", "inspect", "-f", "{{.State.Running}} {{.State.Paused}} {{.State.StartedAt}}", s.id(c))))
	}
	alive := map[string]string{}
	for _, c := range nodeA {
		if c != "printq-a" {
			alive[c] = started(c)
		}
	}
	printqA := s.id("printq-a")
	s.must(run("docker", "pause", printqA))
	defer func() { s.must(run("docker", "unpause", printqA)) }()
	s.await("b active after printq-a froze, a passive and unhealthy", stepLimit, func() (bool, string) {
		ps, err := s.status("nats-b")
		if err != nil {
			return false, err.Error()
		}
		a, b := node(ps, "a"), node(ps, "b")
		return b.State == "active" && b.Epoch > before.Epoch && a.Reachable && a.State == "passive" && !a.IsHealthy(),
			describe(ps) + fmt.Sprintf(" a's checks %+v", a.Checks)
	})
	for c, was := range alive {
		if now := started(c); now != was || !strings.HasPrefix(now, "true false ") {
			s.t.Errorf("%s did not run undisturbed (running, paused, started: %s, before %s)", c, now, was)
		}
	}
	s.await("b's activation names a's check", stepLimit, func() (bool, string) {
		evs, err := s.story("nats-b")
		if err != nil {
			return false, err.Error()
		}
		for _, e := range evs {
			if e.Type == event.NodeActivated && e.Node == "b" && e.Epoch > before.Epoch && strings.Contains(string(e.Data), "check printq failed on a") {
				return true, string(e.Data)
			}
		}
		return false, fmt.Sprintf("%d events, no activation of b naming the check", len(evs))
	})
}

// submitN submits n jobs to a queue and returns their ids; each must be
// acknowledged.
func (s *stack) submitN(service, doc string, n int) []string {
	s.t.Helper()
	var ids []string
	for i := range n {
		id, _, err := s.submit(service, fmt.Sprintf("floor-%d", i%3+1), fmt.Sprintf("%s #%d", doc, i))
		if err != nil {
			s.t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// awaitJobs waits until a queue lists every acknowledged job.
func (s *stack) awaitJobs(service string, acked []string) {
	s.t.Helper()
	s.await(fmt.Sprintf("%s lists all %d acknowledged jobs", service, len(acked)), stepLimit, func() (bool, string) {
		jobs, _, err := s.jobs(service)
		if err != nil {
			return false, err.Error()
		}
		var missing []string
		for _, id := range acked {
			if _, ok := jobs[id]; !ok {
				missing = append(missing, id)
			}
		}
		return len(missing) == 0, fmt.Sprintf("%d jobs, missing %v", len(jobs), missing)
	})
}

// awaitSessions waits until the node's notifier counts every session as
// acknowledging epoch.
func (s *stack) awaitSessions(via string, epoch uint64) {
	s.t.Helper()
	s.await(fmt.Sprintf("all %d sessions at epoch %d", len(sessions), epoch), stepLimit, func() (bool, string) {
		out, err := s.tandem(via, "status", "--pair", pair, "--json")
		if err != nil {
			return false, err.Error()
		}
		// The sessions' part of the status: each node's notifier's count.
		var ps struct {
			Nodes []struct {
				Node     string             `json:"node"`
				Sessions *api.SessionStatus `json:"sessions"`
			} `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(out), &ps); err != nil {
			return false, err.Error()
		}
		var said []string
		for _, n := range ps.Nodes {
			if n.Sessions == nil {
				continue
			}
			said = append(said, fmt.Sprintf("%s: epoch %d, %d of %d", n.Node, n.Sessions.Epoch, n.Sessions.Acknowledged, n.Sessions.Known))
			if n.Sessions.Epoch == epoch && n.Sessions.Acknowledged >= len(sessions) {
				return true, strings.Join(said, "; ")
			}
		}
		return false, strings.Join(said, "; ")
	})
}

// awaitVerified waits until `tandem repl verify` finds both databases equal.
func (s *stack) awaitVerified(via string) {
	s.t.Helper()
	s.await("tandem repl verify: databases equal", stepLimit, func() (bool, string) {
		out, err := s.tandem(via, "repl", "verify", "--pair", pair)
		if err != nil {
			return false, strings.TrimSpace(out) + " " + err.Error()
		}
		return true, strings.TrimSpace(out)
	})
}

// checkStory reads one node's audit trail and checks the invariants of the
// whole run: every activation of the scenario is there (a node takes the
// active role in a new epoch by node.activated, or, the master after a heal,
// by collision.resolved), the master's epochs are even and the standby's
// odd, no epoch has two active nodes, each node's epochs rise, the last
// activation is the master's, and the crash, the cut and the standby's
// return to passive are all told.
func (s *stack) checkStory(via string, final uint64) {
	s.t.Helper()
	var acts []event.Envelope
	var told map[string]bool
	s.await("audit trail on "+via, stepLimit, func() (bool, string) {
		evs, err := s.story(via)
		if err != nil {
			return false, err.Error()
		}
		acts = acts[:0]
		told = map[string]bool{}
		for _, e := range evs {
			if e.Type == event.NodeActivated || e.Type == event.CollisionResolved {
				acts = append(acts, e)
			}
			told[e.Node+" "+e.Type] = true
		}
		sort.SliceStable(acts, func(i, j int) bool { return acts[i].Time.Before(acts[j].Time) })
		// a at start; b after the crash; b stays active while a returns and
		// while cut off, when a activates too; after the heal a stays active
		// (in a new epoch if it resolved the collision itself).
		var seq []string
		for _, e := range acts {
			seq = append(seq, fmt.Sprintf("%s@%d", e.Node, e.Epoch))
		}
		last := len(acts) > 0 && acts[len(acts)-1].Node == "a" && acts[len(acts)-1].Epoch == final // the latest in time
		return len(acts) >= 3 && last, strings.Join(seq, " ")
	})
	byEpoch := map[uint64]string{}
	lastOf := map[string]uint64{}
	for _, e := range acts {
		if other, ok := byEpoch[e.Epoch]; ok && other != e.Node {
			s.t.Errorf("%s: epoch %d has two active nodes, %s and %s", via, e.Epoch, other, e.Node)
		}
		byEpoch[e.Epoch] = e.Node
		if want := e.Node == "a"; (e.Epoch%2 == 0) != want {
			s.t.Errorf("%s: %s activated in epoch %d, of the other node's parity", via, e.Node, e.Epoch)
		}
		if e.Epoch <= lastOf[e.Node] && lastOf[e.Node] != 0 {
			s.t.Errorf("%s: %s activated in epoch %d after epoch %d", via, e.Node, e.Epoch, lastOf[e.Node])
		}
		lastOf[e.Node] = e.Epoch
	}
	var nodes []string
	for _, e := range acts {
		nodes = append(nodes, e.Node)
	}
	for _, want := range []string{"a", "b"} {
		if !slices.Contains(nodes, want) {
			s.t.Errorf("%s: no activation of %s in the audit trail", via, want)
		}
	}
	for _, want := range []string{"b " + event.PeerLost, "a " + event.PeerLost, "b " + event.NodeDeactivated} {
		if !told[want] {
			s.t.Errorf("%s: the audit trail does not tell %q", via, want)
		}
	}
}

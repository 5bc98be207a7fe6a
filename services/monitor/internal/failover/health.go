package failover

import (
	"errors"
	"fmt"
	"strings"

	"github.com/tandem-ha/tandem/pkg/event"
)

// Health checks (F15). The driver runs each configured check on its own
// schedule and steps every outcome in as a CheckResult; the machine counts
// consecutive results against the check's fall and rise, so that one bad
// answer does not move the active role and a flapping check does not move
// it back and forth. A node is healthy while every check is; a node without
// checks is always healthy. Health travels to the peer in the heartbeat
// (Heartbeat.Unhealthy, Heartbeat.Failing).
//
// What health decides:
//
//   - the active node that is unhealthy, beside a passive peer that is
//     healthy, hands over in the F8 order (yield: on_passive first, then
//     Take) with the failing checks in the reason;
//   - when both nodes are unhealthy nothing moves and the node reports the
//     pair critical (Status.Critical, a tandem.health.critical event);
//   - an unhealthy passive node does not take over from a lost peer, nor
//     activate alone at start, unless TakeoverWhenUnhealthy;
//   - at start and on automatic failback, the master cedes the active role
//     to a healthy standby while it is itself unhealthy;
//   - maintenance (F10) stops every move that health would make.

// CheckConfig is one health check as the machine sees it.
type CheckConfig struct {
	Name string
	Fall int // consecutive failures before the check is unhealthy
	Rise int // consecutive successes before it is healthy again
}

// CheckResult is the outcome of one run of a check (F15).
type CheckResult struct {
	Name   string
	OK     bool
	Output string // the last line of the check's output, or why it failed
}

func (CheckResult) isInput() {}

// CheckStatus is one check's state.
type CheckStatus struct {
	Name    string
	Healthy bool
	Output  string
	Since   int // the tick its health last changed (0: since start)
}

type checkState struct {
	cfg       CheckConfig
	healthy   bool
	fails     int // consecutive failures
	successes int // consecutive successes
	output    string
	since     int
}

func validateChecks(cs []CheckConfig) error {
	seen := map[string]bool{}
	for _, c := range cs {
		switch {
		case c.Name == "":
			return errors.New("failover: a check without a name")
		case seen[c.Name]:
			return fmt.Errorf("failover: check %q given twice", c.Name)
		case c.Fall < 1 || c.Rise < 1:
			return fmt.Errorf("failover: check %q: fall and rise must be at least 1", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// newChecks starts every check healthy: a node is not held back by a check
// that has not run yet.
func newChecks(cs []CheckConfig) []checkState {
	out := make([]checkState, len(cs))
	for i, c := range cs {
		out[i] = checkState{cfg: c, healthy: true}
	}
	return out
}

// healthy reports whether every check is healthy.
func (m *Machine) healthy() bool {
	for _, c := range m.checks {
		if !c.healthy {
			return false
		}
	}
	return true
}

// failing names the unhealthy checks.
func (m *Machine) failing() []string {
	var out []string
	for _, c := range m.checks {
		if !c.healthy {
			out = append(out, c.cfg.Name)
		}
	}
	return out
}

func (m *Machine) stepCheck(r CheckResult) error {
	var c *checkState
	for i := range m.checks {
		if m.checks[i].cfg.Name == r.Name {
			c = &m.checks[i]
		}
	}
	if c == nil {
		return fmt.Errorf("result of an unknown check %q", r.Name)
	}
	c.output = r.Output
	if r.OK {
		c.successes, c.fails = c.successes+1, 0
		if !c.healthy && c.successes >= c.cfg.Rise {
			c.healthy, c.since = true, m.now
			m.rd.Heartbeat = true
			m.emit(event.CheckRecovered, fmt.Sprintf("F15: check %s passed %s in a row", c.cfg.Name, times(c.successes)),
				&event.CheckChange{Check: c.cfg.Name, Output: r.Output, Healthy: m.healthy()})
		}
		return nil
	}
	c.fails, c.successes = c.fails+1, 0
	if c.healthy && c.fails >= c.cfg.Fall {
		c.healthy, c.since = false, m.now
		m.rd.Heartbeat = true
		m.emit(event.CheckFailed, fmt.Sprintf("F15: check %s failed %s in a row: %s", c.cfg.Name, times(c.fails), r.Output),
			&event.CheckChange{Check: c.cfg.Name, Output: r.Output, Healthy: false})
	}
	return nil
}

// unhealthyReason says which of this node's checks fail.
func (m *Machine) unhealthyReason() string {
	return "check " + strings.Join(m.failing(), ", ") + " failed on " + m.cfg.Self
}

// peerUnhealthyReason says which of the peer's checks fail, as its
// heartbeat said.
func (m *Machine) peerUnhealthyReason() string {
	names := "(not named)"
	if len(m.peer.failing) > 0 {
		names = strings.Join(m.peer.failing, ", ")
	}
	return "check " + names + " failed on " + m.peer.name
}

// cedeToPeer reports whether this node should leave the active role to the
// peer on health alone: it is unhealthy, the peer is heard and healthy,
// and maintenance is off.
func (m *Machine) cedeToPeer() bool {
	return !m.maint.on && !m.healthy() && m.peer.heard && !m.peer.unhealthy
}

// unhealthyNoTakeover is why this node must not take the active role
// without its peer, or "" when it may.
func (m *Machine) unhealthyNoTakeover() string {
	if m.healthy() || m.cfg.TakeoverWhenUnhealthy {
		return ""
	}
	return "F15: this node is unhealthy (" + m.unhealthyReason() + "): no takeover (checks.takeover_when_unhealthy is off)"
}

// handOver gives the active role to the peer because this node is
// unhealthy (F15), in the F8 order.
func (m *Machine) handOver() {
	reason := "F15: " + m.unhealthyReason() + "; handing over to " + m.peer.name
	m.emit(event.SwitchoverRequested, reason, &event.SwitchoverRequest{To: m.peer.name, Automatic: true, Checks: m.failing()})
	m.yield(m.peer.name, reason, "F15: "+m.unhealthyReason())
}

// observeCritical reports the pair critical when both nodes are unhealthy
// (nothing moves then), and again when it no longer is.
func (m *Machine) observeCritical() {
	critical := !m.healthy() && m.peer.heard && m.peer.unhealthy
	if critical == m.critical {
		return
	}
	m.critical = critical
	if critical {
		m.emit(event.HealthCritical, fmt.Sprintf("F15: both nodes are unhealthy (%s; %s): nothing moves", m.unhealthyReason(), m.peerUnhealthyReason()),
			&event.Criticality{Critical: true, Checks: m.failing(), PeerChecks: m.peer.failing})
		return
	}
	m.emit(event.HealthCritical, "F15: no longer critical: at least one node is healthy, or the peer is not heard", &event.Criticality{Critical: false})
}

// checkStatuses is the state of every check.
func (m *Machine) checkStatuses() []CheckStatus {
	out := make([]CheckStatus, len(m.checks))
	for i, c := range m.checks {
		out[i] = CheckStatus{Name: c.cfg.Name, Healthy: c.healthy, Output: c.output, Since: c.since}
	}
	return out
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

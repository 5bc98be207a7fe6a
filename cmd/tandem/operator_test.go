package main

// An outage as an operator meets it, with real `tandem node` processes and
// the real binary: tandem check's three verdicts, and tandem status with a
// node killed (answering without waiting out its deadline, the dead node
// shown from its peer's view).

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/api"
)

func TestOperatorOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	p, _ := startPair(t, "manual")
	check := func(want int, contains, server string) {
		t.Helper()
		r := p.CLI("check", "--pair", p.Name, "--server", server, "--timeout", "10s")
		line := strings.TrimSuffix(r.Stdout, "\n")
		if r.Code != want || !strings.Contains(line, contains) || strings.Contains(line, "\n") ||
			!strings.Contains(line, " | epoch=") || !strings.Contains(line, "sessions_acked=") {
			t.Fatalf("tandem check: exit %d, stdout %q, stderr %q; want %d and one line with %q", r.Code, r.Stdout, r.Stderr, want, contains)
		}
	}
	// A standby's license state is invalid until its first proof of
	// contact with the master, which may follow the link by a retry: until
	// then the check says CRITICAL, rightly.
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(100 * time.Millisecond) {
		var st api.PairStatus
		r := p.CLI("status", "--json", "--pair", p.Name, "--server", p.Servers())
		if json.Unmarshal([]byte(r.Stdout), &st) == nil && st.Nodes != nil {
			if n := nodeOf(st, standby); n.License != nil && n.License.Status != api.LicenseInvalid {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the standby's license state still invalid after %v: %s%s", waitLimit, r.Stdout, r.Stderr)
		}
	}
	check(0, "TANDEM OK - pair p1: alpha active in epoch", p.Servers())

	// The build, as --version prints it, is also a metric.
	metrics, err := p.Metrics(master)
	if err != nil {
		t.Fatal(err)
	}
	version := p.CLI("--version").Stdout
	found := false
	for series, v := range metrics {
		if strings.HasPrefix(series, "tandem_build_info{") && v == 1 && strings.Contains(series, `goversion="`) &&
			strings.Contains(version, between(series, `commit="`, `"`)) {
			found = true
		}
	}
	if !found {
		t.Errorf("no tandem_build_info matching %q in the master's metrics", version)
	}

	// Maintenance on (through the master): WARNING, and no failover.
	if r := p.CLI("maintenance", "on", "--pair", p.Name, "--server", p.Servers(master), "--for", "10m"); r.Code != 0 {
		t.Fatalf("maintenance on: exit %d: %s", r.Code, r.Stderr)
	}
	p.WaitStatus("the standby knows of the maintenance", waitLimit, func(s proctest.Status) bool {
		n, ok := s.Get(standby)
		return ok && n.Maintenance
	})
	check(1, "TANDEM WARNING - ", p.Servers())

	// The active master dies during maintenance: nobody takes over.
	p.Kill9(master)
	p.WaitStatus("master unreachable", waitLimit, func(s proctest.Status) bool {
		m, ok := s.Get(master)
		return ok && !m.Reachable
	})
	check(2, "no active node", p.Servers())

	// tandem status with the master dead answers without waiting out its
	// deadline (a generous bound, not a speed assertion: make bench
	// measures that) and shows the master from the standby's view.
	start := time.Now()
	r := p.CLI("status", "--pair", p.Name, "--server", p.Servers(), "--timeout", "30s")
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("tandem status with a node dead took %v: it waited for the dead node", took)
	}
	if r.Code != 0 || !strings.Contains(r.Stdout, "last active") {
		t.Fatalf("status: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
	var alpha string
	for _, l := range strings.Split(r.Stdout, "\n") {
		if strings.HasPrefix(l, master+" ") {
			alpha = l
			break
		}
	}
	if f := strings.Fields(alpha); len(f) < 6 || f[2] != "last" || f[3] != "active" || f[5] != "no" {
		t.Errorf("the dead master's row: %q in\n%s", alpha, r.Stdout)
	}
	r = p.CLI("status", "--pair", p.Name, "--server", p.Servers(), "--json")
	var ps api.PairStatus
	if err := json.Unmarshal([]byte(r.Stdout), &ps); err != nil || len(ps.Nodes) != 2 {
		t.Fatalf("status --json: %v: %s", err, r.Stdout)
	}
	if n := ps.Nodes[0]; n.Node != master || n.Reachable || n.State != "active" || n.HeartbeatAgeMS == nil {
		t.Errorf("the dead master in JSON: %+v", n)
	}

	// verify and resync need both nodes: refused at once, naming the
	// node that answered (verify waited 11 s; resync said "started").
	for _, c := range []struct{ verb, need string }{{"verify", "verify compares both nodes"}, {"resync", "a resync needs both nodes"}} {
		r := p.CLI("repl", c.verb, "--pair", p.Name, "--server", p.Servers(standby), "--timeout", "2s")
		if r.Code == 0 || !strings.Contains(r.Stderr, "only "+standby+" answered within 2s") || !strings.Contains(r.Stderr, c.need) {
			t.Errorf("repl %s with the master dead: exit %d, %q", c.verb, r.Code, r.Stderr)
		}
	}

	// Maintenance off (through the standby, the only node left): the
	// standby takes over; the master is still unreachable: WARNING.
	if r := p.CLI("maintenance", "off", "--pair", p.Name, "--server", p.Servers(standby)); r.Code != 0 {
		t.Fatalf("maintenance off: exit %d: %s", r.Code, r.Stderr)
	}
	p.WaitStatus("the standby active", waitLimit, func(s proctest.Status) bool {
		return s.Active != nil && *s.Active == standby
	})
	check(1, "alpha unreachable", p.Servers())
	p.Term(standby)
}

// between is the part of s after start, up to end.
func between(s, start, end string) string {
	_, after, ok := strings.Cut(s, start)
	if !ok {
		return "\x00"
	}
	v, _, _ := strings.Cut(after, end)
	return v
}

// nodeOf is node's entry in st (zero when there is none).
func nodeOf(st api.PairStatus, node string) api.NodeStatus {
	for _, n := range st.Nodes {
		if n.Node == node {
			return n
		}
	}
	return api.NodeStatus{}
}

//go:build linux

package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// TestProcessHealthCheck (F15): a pair of real `tandem node` processes, each
// with an http check of its own tiny web server (the protected service).
// Stopping the master's server while every tandem process lives hands the
// active role to the standby, whose reason names the check; the status
// shows the master unhealthy with the check's output; the invariants hold.
func TestProcessHealthCheck(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	servers := map[string]*httptest.Server{}
	for _, n := range []string{master, standby} {
		servers[n] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
		t.Cleanup(servers[n].Close)
	}
	p, st := proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit,
		Extra: func(node string) map[string]any {
			return map[string]any{"checks": []any{map[string]any{"name": "web", "http": servers[node].URL + "/healthz", "interval": "100ms", "fall": 3}}}
		},
	})
	if m, _ := st.Get(master); !m.IsHealthy() || len(m.Checks) != 1 || m.Checks[0].Name != "web" || m.Checks[0].Output != "HTTP 200 OK" {
		t.Fatalf("the master's health before: %+v %+v", m.Healthy, m.Checks)
	}
	mark := p.Watch().Mark()
	servers[master].Close() // the protected service stops; tandem lives on
	p.AwaitBeat(mark, waitLimit, proctest.Match{Node: standby, State: "active", MinEpoch: st.Epoch + 1})
	after := p.WaitStatus("the standby active, the master passive and unhealthy", waitLimit, func(s proctest.Status) bool {
		m, ok := s.Get(master)
		return s.Active != nil && *s.Active == standby && ok && m.Reachable && m.State == "passive" && !m.IsHealthy()
	})
	m, _ := after.Get(master)
	if len(m.Checks) != 1 || m.Checks[0].Healthy || !strings.Contains(m.Checks[0].Output, "refused") {
		t.Errorf("the master's check in status: %+v", m.Checks)
	}
	log, err := os.ReadFile(p.Node(standby).LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "F15: check web failed on "+master) {
		t.Errorf("the standby's log does not name the check in its activation reason")
	}
	p.CheckInvariants()
}

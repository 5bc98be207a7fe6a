//go:build linux

package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// The health-check row of SPEC §10 (F15): each node's http check asks a
// small web server in this process, the stand-in for its protected service.
func init() {
	benchmarks = append(benchmarks,
		benchmark{"check-failover", "a health check failing on the active node → the peer's first active heartbeat (checks: interval 1s, fall 3)", checkFailover})
}

const (
	checkInterval = time.Second
	checkFall     = 3
)

// service is a protected service whose /healthz answers 200, or 503 while
// it is sick.
type service struct {
	srv  *httptest.Server
	sick atomic.Bool
}

func newService() *service {
	s := &service{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if s.sick.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	return s
}

// checkFailover: the active node's service turns sick (its /healthz
// answers 503) at a random phase of the check cycle, timed from that
// instant to the arrival of the peer's first heartbeat saying active. The
// service is then made healthy again, and the next run starts once both
// nodes are healthy, with the other node active (failback manual).
func checkFailover(t proctest.T, e env) []row {
	svc := map[string]*service{}
	p, st := proctest.StartActive(t, proctest.Options{Binary: e.bin, Pair: "bench", Wait: waitLimit,
		Extra: func(node string) map[string]any {
			if svc[node] == nil {
				svc[node] = newService()
			}
			return map[string]any{"checks": []any{map[string]any{"name": "svc", "http": svc[node].srv.URL + "/healthz",
				"interval": checkInterval.String(), "fall": checkFall}}}
		}})
	defer func() {
		for _, s := range svc {
			s.srv.Close()
		}
	}()
	active := p.Master
	var total []float64
	for i := range e.runs {
		survivor := p.Peer(active)
		randomPhase()
		mark := p.Watch().Mark()
		sick := time.Now()
		svc[active].sick.Store(true)
		b, _ := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: survivor, State: "active", Via: survivor, MinEpoch: st.Epoch + 1})
		took := b.Recv.Sub(sick)
		total = append(total, took.Seconds())
		fmt.Fprintf(e.log, "  run %2d: %s's service sick → %s active in epoch %d after %v\n", i+1, active, survivor, b.Epoch, took.Round(time.Millisecond))
		svc[active].sick.Store(false)
		active = survivor
		st = p.WaitStatus("both healthy, "+active+" active", waitLimit, func(s proctest.Status) bool {
			for _, n := range s.Nodes {
				if !n.Reachable || !n.IsHealthy() {
					return false
				}
			}
			return s.Stable(active)
		})
	}
	return []row{{what: "check failover: service sick → peer's heartbeat says active", unit: seconds, samples: total,
		target: &target{"p95", (checkFall*checkInterval + 100*time.Millisecond).Seconds()}}}
}

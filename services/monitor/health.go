package monitor

import (
	"context"
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
	"github.com/tandem-ha/tandem/services/monitor/internal/probe"
	"github.com/tandem-ha/tandem/services/monitor/internal/wire"
)

// Health checks (F15) and sync state (F9): the I/O around the machine's
// rules. Each check runs on a goroutine of its own, every interval from
// start to start, in every state, and steps its results into the loop;
// the loop's machine counts them against fall and rise. The node's health
// goes out with each heartbeat in the wire.HealthHeader header.

func (s *Service) checkConfigs() []failover.CheckConfig {
	out := make([]failover.CheckConfig, len(s.cfg.Checks.List))
	for i, c := range s.cfg.Checks.List {
		out[i] = failover.CheckConfig{Name: c.Name, Fall: c.Fall, Rise: c.Rise}
	}
	return out
}

// startChecks starts one goroutine per check; they end with ctx.
func (s *Service) startChecks(ctx context.Context) {
	for _, c := range s.cfg.Checks.List {
		s.wg.Add(1)
		go s.runCheck(ctx, c)
	}
}

func (s *Service) runCheck(ctx context.Context, c config.Check) {
	defer s.wg.Done()
	for {
		start := s.clk.Now()
		st := s.snap.Load().status
		r := probe.Run(ctx, c, probe.Env{Pair: s.cfg.Pair, Node: s.cfg.Node, Role: string(s.cfg.Role),
			State: string(st.State), Epoch: st.Epoch})
		if ctx.Err() != nil {
			return
		}
		result := "ok"
		if !r.OK {
			result = "fail"
		}
		s.met.checkRuns.WithLabelValues(c.Name, result).Inc()
		s.met.checkSeconds.WithLabelValues(c.Name).Observe(r.Took.Seconds())
		s.log.Debug().Str("check", c.Name).Bool("ok", r.OK).Str("output", r.Output).Dur("took", r.Took).Msg("check ran")
		select {
		case s.inputs <- input{in: failover.CheckResult{Name: c.Name, OK: r.OK, Output: r.Output}, at: s.clk.Now()}:
		case <-ctx.Done():
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-s.clk.After(c.Interval - s.clk.Now().Sub(start)):
		}
	}
}

// noteCheckEvent records when a check changed (for status: since).
func (s *Service) noteCheckEvent(e failover.Event, now time.Time) {
	if c, ok := e.Data.(*event.CheckChange); ok {
		s.checkSince[c.Check] = now
	}
}

// health is this node's health as the heartbeat header and status say it.
func (s *Service) health(st failover.Status) wire.Health {
	h := wire.Health{V: wire.Version, Healthy: st.Healthy, Checks: make([]wire.CheckHealth, len(st.Checks))}
	for i, c := range st.Checks {
		since, ok := s.checkSince[c.Name]
		if !ok {
			since = s.started
		}
		h.Checks[i] = wire.CheckHealth{Name: c.Name, Healthy: c.Healthy, Output: c.Output, Since: since.UTC()}
	}
	return h
}

// heartbeatMsg is a heartbeat with the health header.
func (s *Service) heartbeatMsg(body []byte, st failover.Status) *nats.Msg {
	m := nats.NewMsg(subject.Heartbeat(s.cfg.Pair, s.cfg.Node))
	m.Data = body
	if len(st.Checks) > 0 {
		b, _ := json.Marshal(s.health(st))
		m.Header.Set(wire.HealthHeader, string(b))
	}
	return m
}

// peerHealth decodes the health header of a peer's heartbeat; a heartbeat
// without one is from a node without checks: healthy.
func peerHealth(m *nats.Msg) (wire.Health, error) {
	v := m.Header.Get(wire.HealthHeader)
	if v == "" {
		return wire.Health{V: wire.Version, Healthy: true}, nil
	}
	return wire.DecodeHealth(v)
}

func apiChecks(h wire.Health) []api.CheckStatus {
	out := make([]api.CheckStatus, len(h.Checks))
	for i, c := range h.Checks {
		out[i] = api.CheckStatus{Name: c.Name, Healthy: c.Healthy, Output: c.Output, Since: c.Since}
	}
	return out
}

// observeHealth sets the health metrics.
func (m *metrics) observeHealth(st failover.Status) {
	m.healthy.Set(b2f(st.Healthy))
	m.critical.Set(b2f(st.Critical))
	for _, c := range st.Checks {
		m.checkHealthy.WithLabelValues(c.Name).Set(b2f(c.Healthy))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// waitsForSync says whether the machine must hear that this node is in sync
// before an automatic failback (F9): the master with failback automatic.
// Every node runs a replicator (database.path, or tandem.db in data_dir).
func (s *Service) waitsForSync() bool {
	c := s.cfg
	return c.Failback == config.FailbackAutomatic && c.Role == config.Master
}

// watchSync asks the node's replicator, every heartbeat interval while this
// node is passive beside an active peer, whether it is in sync, and tells
// the machine (F9). In sync: replication running with nothing of the
// peer's left to apply, or disabled (nothing to replicate). No answer is
// not in sync: the master waits, and says so in its log.
func (s *Service) watchSync(ctx context.Context) {
	defer s.wg.Done()
	last := -1
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.clk.After(s.cfg.Heart.Interval):
		}
		st := s.snap.Load().status
		if st.State != failover.Passive || !st.PeerHeard || st.PeerState != failover.Active {
			continue
		}
		in, why := s.askInSync(ctx)
		if b := map[bool]int{false: 0, true: 1}[in]; b != last {
			last = b
			s.log.Info().Bool("in_sync", in).Str("why", why).Msg("replication sync state")
		}
		select {
		case s.inputs <- input{in: failover.SyncState{InSync: in}, at: s.clk.Now()}:
		case <-ctx.Done():
			return
		}
	}
}

// askInSync asks the pair's replicators for this node's status: the
// subject is the pair's, so the peer's replicator answers too (skipped).
func (s *Service) askInSync(ctx context.Context) (bool, string) {
	req := api.ReplRequest{Request: api.Request{V: api.Version, Pair: s.cfg.Pair}, Node: s.cfg.Node}
	replies, err := reply.Gather(ctx, s.nc, subject.ReplAdmin(s.cfg.Pair, api.VerbReplStatus), req, 2, s.cfg.Heart.Interval)
	if err != nil {
		return false, err.Error()
	}
	for _, b := range replies {
		var r api.ReplReply
		if err := reply.Decode(b, &r); err != nil || r.Skipped || r.Status.Node != s.cfg.Node {
			continue
		}
		st := r.Status
		if st.State == "disabled" {
			return true, "replication disabled: nothing to wait for (" + st.Reason + ")"
		}
		if st.State != "running" || st.Paused || st.In.Pending > 0 {
			return false, "replication " + st.State + ", " + st.Reason
		}
		return true, "replication running, nothing pending"
	}
	return false, "no answer from this node's replicator"
}

package monitor

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/heartbeat"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
	"github.com/tandem-ha/tandem/services/monitor/internal/wire"
)

// subscribe listens for the peer's heartbeats, control messages to this node
// and admin requests.
func (s *Service) subscribe() error {
	p, n := s.cfg.Pair, s.cfg.Node
	// Only the monitor's own admin verbs: the other services answer theirs
	// on the same node's admin subjects.
	handlers := map[string]nats.MsgHandler{
		subject.Heartbeats(p):                               s.onHeartbeatMsg,
		subject.Control(p, n):                               s.onControlMsg,
		subject.Admin(p, n, api.VerbStatus):                 s.onAdmin,
		subject.Admin(p, n, api.VerbSwitchover):             s.onAdmin,
		subject.Admin(p, n, api.VerbMaintenance):            s.onAdmin,
		subject.Admin(p, subject.PairScope, api.VerbStatus): s.onAdmin,
	}
	// A flood must not grow memory without bound; heartbeats are periodic.
	subs, err := bus.SubscribeAll(s.nc, handlers, bus.Limits{Msgs: 4096, Bytes: 16 << 20})
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	s.subs = subs
	return nil
}

func (s *Service) onHeartbeatMsg(m *nats.Msg) {
	if m.Subject == subject.Heartbeat(s.cfg.Pair, s.cfg.Node) {
		s.onOwnSubject(m)
		return
	}
	hb, err := heartbeat.Decode(m.Data, s.cfg.Pair)
	if err == nil && m.Subject != subject.Heartbeat(s.cfg.Pair, hb.Node) {
		err = fmt.Errorf("heartbeat from node %q on subject %s", hb.Node, m.Subject)
	}
	s.onPeerHeartbeat(m, hb, hb.Node, err)
}

// onOwnSubject hears a heartbeat on this node's own subject: its own,
// echoed by its server — unless another role sends it. Then two nodes
// share this node's name, and each would take the other's heartbeats for
// its own echo and activate (both active, silently). It is reported, and
// taken for the peer's heartbeat when the configuration names the peer
// (hosts:), so that the pair still has one active node.
func (s *Service) onOwnSubject(m *nats.Msg) {
	hb, err := heartbeat.Decode(m.Data, s.cfg.Pair)
	if err != nil || hb.Role == string(s.cfg.Role) {
		return
	}
	s.reject("heartbeat", m.Subject, fmt.Errorf("a %s named %q sends heartbeats on this pair's link, and this node is the %s %q: "+
		"two nodes share one name; give each node its own name (node:) in its configuration", hb.Role, hb.Node, s.cfg.Role, s.cfg.Node))
	if peer := s.cfg.Peer(); peer != "" {
		s.onPeerHeartbeat(m, hb, peer, nil)
	}
}

// onPeerHeartbeat steps the peer's heartbeat hb, sent as from, into the
// machine, or reports err or what else is wrong with it.
func (s *Service) onPeerHeartbeat(m *nats.Msg, hb heartbeat.Heartbeat, from string, err error) {
	if err == nil {
		err = event.CheckEpoch(hb.Epoch, s.newestEpoch())
	}
	var health wire.Health
	if err == nil {
		health, err = peerHealth(m)
	}
	if err != nil {
		s.reject("heartbeat", m.Subject, err)
		return
	}
	s.enqueueWith(failover.Heartbeat{
		From: from, Role: config.Role(hb.Role), State: failover.State(hb.State), Epoch: hb.Epoch,
		Maint: hb.Maintenance, MaintLeft: s.ticks(time.Duration(hb.MaintenanceLeftMS) * time.Millisecond),
		MaintVersion: hb.MaintenanceVersion, Unhealthy: !health.Healthy, Failing: health.Failing(),
		WitnessDown: hb.WitnessDown,
	}, &health)
}

func (s *Service) onControlMsg(m *nats.Msg) {
	c, err := wire.DecodeControl(m.Data, s.cfg.Pair)
	if err == nil {
		err = event.CheckEpoch(c.Epoch, s.newestEpoch())
	}
	if err != nil {
		s.reject("control", m.Subject, err)
		return
	}
	switch c.Kind {
	case "yield":
		s.enqueue(failover.Yield{From: c.From, Epoch: c.Epoch})
	case "take":
		s.enqueue(failover.Take{From: c.From, Epoch: c.Epoch, Reason: wire.TakeReason(m.Header.Get(wire.ReasonHeader))})
	}
}

func (s *Service) enqueue(in failover.Input) { s.enqueueWith(in, nil) }

func (s *Service) enqueueWith(in failover.Input, h *wire.Health) {
	select {
	case s.inputs <- input{in: in, at: s.clk.Now(), health: h}:
	default:
		s.met.inputsDropped.Inc()
	}
}

func (s *Service) sendHeartbeat() {
	st := s.m.Status()
	s.seq++
	hb := heartbeat.Heartbeat{
		V: heartbeat.Version, Pair: s.cfg.Pair, Node: s.cfg.Node, Role: string(s.cfg.Role),
		State: string(st.State), Epoch: st.Epoch, Maintenance: st.Maintenance,
		MaintenanceVersion: st.MaintVersion, Seq: s.seq, Sent: s.clk.Now().UTC(),
		WitnessDown: st.Witness.Configured && !st.Witness.Reachable,
	}
	if st.Maintenance {
		hb.MaintenanceLeftMS = (time.Duration(st.MaintLeft) * s.tick).Milliseconds()
	}
	b, _ := json.Marshal(hb)
	if err := s.nc.PublishMsg(s.heartbeatMsg(b, st)); err != nil {
		s.log.Warn().Err(err).Msg("send heartbeat")
		return
	}
	s.met.heartbeatsOut.Inc()
}

func (s *Service) sendControl(msg failover.Message) {
	m := nats.NewMsg(subject.Control(s.cfg.Pair, msg.To))
	m.Data, _ = json.Marshal(wire.Control{V: wire.Version, Pair: s.cfg.Pair, From: s.cfg.Node, Kind: string(msg.Kind), Epoch: msg.Epoch})
	if msg.Reason != "" {
		m.Header.Set(wire.ReasonHeader, msg.Reason)
	}
	if err := s.nc.PublishMsg(m); err != nil {
		s.log.Warn().Err(err).Str("to", msg.To).Msg("send control message")
	}
}

// publishEvent turns a machine event into an envelope, logs it and hands it
// to the sink. Transitions log at info with their reason.
func (s *Service) publishEvent(e failover.Event) {
	env, err := event.New(s.cfg.Pair, s.cfg.Node, "monitor", e.Type, e.Epoch, s.clk.Now(), e.Data)
	if err != nil {
		s.log.Error().Err(err).Str("type", e.Type).Msg("cannot build event")
		return
	}
	lvl := s.log.Info()
	if e.Type == event.SwitchoverRefused || e.Type == event.NodeStalled {
		lvl = s.log.Warn()
	}
	lvl.Str("event", e.Type).Uint64("epoch", e.Epoch).Str("reason", e.Reason).Msg(strings.TrimPrefix(e.Type, "tandem."))
	s.events.Emit(env)
}

// reject counts, logs and reports bad input (SPEC §9). Reports are limited
// to reject.PerSecond events a second; the rest are counted and logged at debug.
func (s *Service) reject(kind, subj string, err error) {
	s.met.rejected.WithLabelValues(kind).Inc()
	now := s.clk.Now()
	if !s.rejects.Log(s.log, now, kind, subj, err) {
		return
	}
	env, eerr := event.New(s.cfg.Pair, s.cfg.Node, "monitor", event.InputRejected, s.snap.Load().status.Epoch, now,
		event.Rejected{Why: event.Why{Reason: err.Error()}, Kind: kind, Subject: subj})
	if eerr == nil {
		s.events.Emit(env)
	}
}

// respond sends a reply to an admin request.
func respond(m *nats.Msg, b []byte) {
	if m.Reply != "" {
		_ = m.Respond(b)
	}
}

// ask hands a command to the loop and waits for its verdict.
func (s *Service) ask(in failover.Input) error {
	done := make(chan error, 1)
	select {
	case s.inputs <- input{in: in, at: s.clk.Now(), done: done}:
	case <-time.After(5 * time.Second):
		return reply.Errorf(reply.CodeBusy, "the monitor is not taking commands")
	}
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		return reply.Errorf(reply.CodeTimeout, "the monitor did not answer")
	}
}

// newestEpoch is the newest epoch this monitor knows: its own, its peer's,
// or the highest it has seen (persisted across restarts), as of the last
// snapshot (0 before the first).
func (s *Service) newestEpoch() uint64 {
	sn := s.snap.Load()
	if sn == nil {
		return 0
	}
	return max(sn.status.Epoch, sn.status.PeerEpoch, sn.status.Seen)
}

package monitor

import (
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/services/monitor/internal/failover"
)

// onAdmin answers admin requests (SPEC §8 reply shape).
func (s *Service) onAdmin(m *nats.Msg) {
	verb := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	var out []byte
	switch verb {
	case api.VerbStatus:
		out = s.adminStatus(m.Data)
	case api.VerbSwitchover:
		out = s.adminSwitchover(m.Data)
	case api.VerbMaintenance:
		out = s.adminMaintenance(m.Data)
	default:
		return // not subscribed; the subscriptions name each verb
	}
	respond(m, out)
}

func (s *Service) adminStatus(data []byte) []byte {
	var req api.StatusRequest
	if err := api.Decode(data, s.cfg.Pair, &req); err != nil {
		s.reject("admin.status", "", err)
		return reply.Fail(err)
	}
	return reply.OK(s.StatusReply())
}

// StatusReply is this node's answer to a status request.
func (s *Service) StatusReply() api.StatusReply {
	sn := s.snap.Load()
	st := sn.status
	self := api.NodeStatus{
		Node: st.Self, Role: string(st.Role), State: string(st.State), Epoch: st.Epoch,
		Reachable: true, Maintenance: st.Maintenance, Switchover: st.Switchover,
		Server: s.nc.ConnectedServerName(), Insecure: s.cfg.Insecure && !s.cfg.Secured(),
		Healthy: &st.Healthy, Checks: apiChecks(sn.health),
	}
	if w := st.Witness; w.Configured {
		self.Witness = &api.WitnessStatus{Reachable: w.Reachable, Lease: w.Holds, Required: w.Required}
	}
	if st.Maintenance {
		self.MaintenanceLeft = (time.Duration(st.MaintLeft) * s.tick).Round(time.Second).String()
	}
	r := api.StatusReply{Pair: s.cfg.Pair, Self: self, Time: sn.at.UTC()}
	if st.Peer != "" {
		// The peer is reachable while it is heard and the link is up: with
		// the link closed, nothing reaches it through this node's server,
		// although the machine gives it a moment before it calls it lost
		// (a master with no nats.peer cannot probe it). tandem status then
		// waits for this node's answer alone.
		peer := api.NodeStatus{Node: st.Peer, Role: string(st.PeerRole), State: string(st.PeerState),
			Epoch: st.PeerEpoch, Reachable: st.PeerHeard && !sn.linkDown, Maintenance: st.Maintenance,
			Healthy: &sn.peerHealth.Healthy, Checks: apiChecks(sn.peerHealth)}
		if !sn.lastHeard.IsZero() {
			age := sn.at.Sub(sn.lastHeard).Milliseconds()
			peer.HeartbeatAgeMS = &age
		}
		if !st.PeerHeard {
			// The state it was last heard in (Reachable false says it
			// is old): tandem status shows an unreachable node so.
			peer.State = string(sn.lastPeer)
		}
		r.Peer = &peer
	}
	return r
}

func (s *Service) adminSwitchover(data []byte) []byte {
	var req api.SwitchoverRequest
	if err := api.Decode(data, s.cfg.Pair, &req); err != nil {
		s.reject("admin.switchover", "", err)
		return reply.Fail(err)
	}
	if err := s.ask(failover.Switchover{To: req.To}); err != nil {
		return reply.Fail(err)
	}
	return reply.OK(api.SwitchoverReply{Pair: s.cfg.Pair, Node: s.cfg.Node, Accepted: true})
}

func (s *Service) adminMaintenance(data []byte) []byte {
	var req api.MaintenanceRequest
	if err := api.Decode(data, s.cfg.Pair, &req); err != nil {
		s.reject("admin.maintenance", "", err)
		return reply.Fail(err)
	}
	d := s.cfg.Maintenance.Default
	if req.For != "" {
		var err error
		if d, err = time.ParseDuration(req.For); err != nil || d <= 0 {
			e := reply.Errorf(reply.CodeBadRequest, "maintenance duration %q: want a positive Go duration such as 30m", req.For)
			s.reject("admin.maintenance", "", e)
			return reply.Fail(e)
		}
	}
	if d > s.cfg.Maintenance.Max {
		return reply.Fail(reply.Errorf(reply.CodeBadRequest, "maintenance of %v is longer than maintenance.max (%v)", d, s.cfg.Maintenance.Max))
	}
	in := failover.SetMaintenance{On: req.On}
	if req.On {
		in.For = s.ticks(d)
	}
	if err := s.ask(in); err != nil {
		return reply.Fail(err)
	}
	out := api.MaintenanceReply{Pair: s.cfg.Pair, Node: s.cfg.Node, Maintenance: req.On}
	if req.On {
		out.For = d.String()
	}
	return reply.OK(out)
}

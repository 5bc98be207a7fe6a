package replicator

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
)

// configReadTimeout bounds one read of the pair configuration.
const configReadTimeout = 5 * time.Second

// onConfig answers repl.config: the pair configuration the notifier reads
// from this node's database (pkg/api/notifier.go has the contract). Bad
// requests are refused and counted; a database that cannot be read is
// CodeUnavailable (the notifier then serves from its cache).
func (s *Service) onConfig(m *nats.Msg) {
	var req api.ConfigRequest
	err := api.Decode(m.Data, s.cfg.Pair, &req)
	if err == nil {
		req.HostsTable = orDefault(req.HostsTable, api.DefaultHostsTable)
		req.ResourcesTable = orDefault(req.ResourcesTable, api.DefaultResourcesTable)
		err = req.Validate()
		if err == nil && req.Node != s.cfg.Node {
			err = errors.New("config request names another node than its subject")
		}
		if err != nil {
			err = reply.Errorf(reply.CodeBadRequest, "%v", err)
		}
	}
	if err != nil {
		s.rep.reject("admin."+api.VerbReplConfig, m.Subject, err)
		respondTo(m, reply.Fail(err))
		return
	}
	ctx, cancel := context.WithTimeout(s.base, configReadTimeout)
	defer cancel()
	out, err := s.ReadConfig(ctx, req.HostsTable, req.ResourcesTable)
	if err != nil {
		respondTo(m, reply.Fail(err))
		return
	}
	respondTo(m, reply.OK(out))
}

func respondTo(m *nats.Msg, b []byte) {
	if m.Reply != "" {
		_ = m.Respond(b)
	}
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// ReadConfig reads the pair configuration from the tables hosts and
// resources of this node's database. A missing table is an empty part;
// rows that are invalid, name a node other than the pair's two, repeat a
// resource, or go past api.MaxResources or the reply's size are left out
// and counted in Skipped.
func (s *Service) ReadConfig(ctx context.Context, hosts, resources string) (api.ConfigReply, error) {
	s.sess.RLock()
	defer s.sess.RUnlock()
	st := s.opened()
	if st == nil {
		return api.ConfigReply{}, &reply.Error{Code: reply.CodeUnavailable, Message: "replication is starting"}
	}
	pair := map[string]bool{s.cfg.Node: true, s.peer: true}
	out := api.ConfigReply{Config: api.PairConfig{Hosts: map[string]string{}, Resources: []api.Resource{}}}
	_, err := st.ReadTable(ctx, hosts, []string{"node", "host"}, func(v []*string) error {
		h := api.PairConfig{Hosts: map[string]string{deref(v[0]): deref(v[1])}}
		if v[0] == nil || v[1] == nil || !pair[*v[0]] || h.Validate() != nil {
			out.Skipped++
			return nil
		}
		out.Config.Hosts[*v[0]] = *v[1]
		return nil
	})
	if err != nil {
		return api.ConfigReply{}, reply.Errorf(reply.CodeUnavailable, "read %s of %s: %v", hosts, s.cfg.Node, err)
	}
	budget := api.MaxConfigReply - 1024 - encodedLen(out.Config.Hosts)
	seen := map[[2]string]bool{}
	_, err = st.ReadTable(ctx, resources, []string{"node", "name", "address"}, func(v []*string) error {
		r := api.Resource{Node: deref(v[0]), Name: deref(v[1]), Address: deref(v[2])}
		key := [2]string{r.Node, r.Name}
		size := encodedLen(r) + 1
		if v[0] == nil || v[1] == nil || v[2] == nil || !pair[r.Node] || seen[key] ||
			(api.PairConfig{Resources: []api.Resource{r}}).Validate() != nil ||
			len(out.Config.Resources) >= api.MaxResources || size > budget {
			out.Skipped++
			return nil
		}
		seen[key] = true
		budget -= size
		out.Config.Resources = append(out.Config.Resources, r)
		return nil
	})
	if err != nil {
		return api.ConfigReply{}, reply.Errorf(reply.CodeUnavailable, "read %s of %s: %v", resources, s.cfg.Node, err)
	}
	out.ReadAt = time.Now().UTC()
	return out, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func encodedLen(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

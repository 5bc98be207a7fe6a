//go:build linux

package proctest

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Status is the pair as its nodes describe it: what `tandem status --json`
// prints, and each answering node's own reply.
type Status struct {
	api.PairStatus
	Replies map[string]api.StatusReply // by answering node
	names   [2]string                  // master, standby
}

// Get returns a node's entry (and whether there is one).
func (s Status) Get(node string) (api.NodeStatus, bool) {
	for _, n := range s.Nodes {
		if n.Node == node {
			return n, true
		}
	}
	return api.NodeStatus{}, false
}

// Linked reports whether both nodes answered and each hears the other's
// heartbeats (which cross only the leafnode link).
func (s Status) Linked() bool {
	for _, n := range s.names {
		r, ok := s.Replies[n]
		if !ok || r.Peer == nil || !r.Peer.Reachable {
			return false
		}
	}
	return true
}

// Stable reports whether the pair is linked, active is active, the other
// node passive, and both agree on it.
func (s Status) Stable(active string) bool {
	if !s.Linked() || s.Active == nil || *s.Active != active {
		return false
	}
	peer := s.names[0]
	if active == peer {
		peer = s.names[1]
	}
	a, pa := s.Replies[active], s.Replies[peer]
	return a.Self.State == "active" && pa.Self.State == "passive" &&
		pa.Peer.State == "active" && pa.Peer.Epoch == a.Self.Epoch && a.Peer.State == "passive"
}

func (s Status) String() string {
	active := "none"
	if s.Active != nil {
		active = *s.Active
	}
	parts := []string{fmt.Sprintf("epoch %d active %s", s.Epoch, active)}
	for _, n := range s.Nodes {
		parts = append(parts, fmt.Sprintf("%s=%s/%d reachable=%v", n.Node, orDash(n.State), n.Epoch, n.Reachable))
	}
	return strings.Join(parts, "; ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Status asks each node for its status over the harness's connection to
// that node's own server, at most timeout each (concurrently), and combines
// the answers as `tandem status` does. A node that does not answer (dead,
// stopped) is described by its peer, as unreachable.
func (p *Pair) Status(timeout time.Duration) Status {
	var mu sync.Mutex
	var wg sync.WaitGroup
	replies := map[string]api.StatusReply{}
	for _, node := range p.names() {
		nc := p.conns[node]
		if !nc.IsConnected() {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var r api.StatusReply
			req := api.StatusRequest{Request: api.Request{V: api.Version, Pair: p.Name}}
			if err := reply.Request(ctx, nc, subject.Admin(p.Name, node, api.VerbStatus), req, &r); err != nil || r.Self.Node != node {
				return
			}
			mu.Lock()
			replies[node] = r
			mu.Unlock()
		})
	}
	wg.Wait()
	list := make([]api.StatusReply, 0, len(replies))
	for _, r := range replies {
		list = append(list, r)
	}
	return Status{PairStatus: api.Combine(p.Name, list), Replies: replies, names: [2]string{p.Master, p.Standby}}
}

// WaitStatus polls Status until cond holds, at most timeout, and fails the
// test with what, and the last status, if it does not.
func (p *Pair) WaitStatus(what string, timeout time.Duration, cond func(Status) bool) Status {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := p.Status(time.Second)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("proctest: %s: not within %v; last status: %v", what, timeout, s)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// WaitStable waits until the pair is Stable with active as the active node.
func (p *Pair) WaitStable(active string, timeout time.Duration) Status {
	p.t.Helper()
	return p.WaitStatus(fmt.Sprintf("%s active, %s passive, linked", active, p.Peer(active)), timeout,
		func(s Status) bool { return s.Stable(active) })
}

// Metrics scrapes node's /metrics and returns every sample, keyed by the
// series as written (`name{label="v"}`).
func (p *Pair) Metrics(node string) (map[string]float64, error) {
	client := p.httpClient(node, 5*time.Second)
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + p.Node(node).AdminAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics of %s: %s", node, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out, sc.Err()
}

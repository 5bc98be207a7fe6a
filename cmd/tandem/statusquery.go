package main

// How `tandem status` and `tandem check` ask the pair (SPEC §10: ≤ 300 ms
// with a node dead). Every request goes out at once — the monitors' status
// and each service's part — on one inbox subscription, and the answers are
// read until everything expected has come or one deadline passes. What is
// expected follows from the monitors' answers: both nodes, unless the node
// that answered has lost its peer (its heartbeats stopped or its link closed;
// then only the answering node, since the other is gone or cut off). So a
// dead node costs no waiting, and an unexpected silence (a hung service)
// costs at most the one deadline.

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// statusPart is one service's part of the pair's status (replication,
// license, sessions, audit); statusParts lists them.
type statusPart struct {
	name    string // its key in the node's JSON
	subject func(pair string) string
	request func(pair string) any
	// decode reads one reply: the node it is about and how to add it to
	// that node's status.
	decode func(data []byte) (node string, add func(*api.NodeStatus), err error)
}

// newStatusPart makes a statusPart of a reply type T.
func newStatusPart[T any](name string, subj func(pair string) string, req func(pair string) any, node func(T) string, add func(*api.NodeStatus, T)) statusPart {
	return statusPart{name: name, subject: subj, request: req, decode: func(data []byte) (string, func(*api.NodeStatus), error) {
		var r T
		if err := reply.Decode(data, &r); err != nil {
			return "", nil, err
		}
		return node(r), func(n *api.NodeStatus) { add(n, r) }, nil
	}}
}

// statusAnswers is what came back.
type statusAnswers struct {
	replies []api.StatusReply // the monitors'
	parts   []map[string]func(*api.NodeStatus)
	noResp  []bool // per part (index len(parts): the monitors): nobody listens
}

// askPair asks every node of pair for its status and every service for its
// part, all at once, waiting at most wait. It fails only when no monitor
// answered.
func askPair(ctx context.Context, nc *nats.Conn, pair string, wait time.Duration) (api.PairStatus, []api.StatusReply, error) {
	a, err := ask(ctx, nc, pair, wait)
	if err != nil {
		return api.PairStatus{}, nil, err
	}
	if len(a.replies) == 0 {
		return api.PairStatus{}, nil, unanswered(nc, "node of pair "+strconv.Quote(pair))
	}
	return combine(pair, a.replies, a.parts), a.replies, nil
}

// combine is the pair's status from the monitors' replies and the parts
// (per statusParts index, by node, how to add the part): each node carries
// the parts that answered for it and names the others (Unanswered).
func combine(pair string, replies []api.StatusReply, parts []map[string]func(*api.NodeStatus)) api.PairStatus {
	ps := api.Combine(pair, replies)
	for i := range ps.Nodes {
		n := &ps.Nodes[i]
		for j, adds := range parts {
			if add := adds[n.Node]; add != nil {
				add(n)
			} else {
				n.Unanswered = append(n.Unanswered, statusParts[j].name)
			}
		}
	}
	return ps
}

func ask(ctx context.Context, nc *nats.Conn, pair string, wait time.Duration) (*statusAnswers, error) {
	inbox := nc.NewRespInbox()
	// A channel subscription hands over no-responders statuses as messages
	// (a synchronous one turns them into an error that does not say which
	// request had no responders). At most two answers per request come.
	msgs := make(chan *nats.Msg, 2*(len(statusParts)+1)+8)
	sub, err := nc.ChanSubscribe(inbox+".*", msgs)
	if err != nil {
		return nil, err
	}
	defer sub.Unsubscribe() //nolint:errcheck
	monitors := len(statusParts)
	a := &statusAnswers{parts: make([]map[string]func(*api.NodeStatus), len(statusParts)), noResp: make([]bool, monitors+1)}
	for i := range a.parts {
		a.parts[i] = map[string]func(*api.NodeStatus){}
	}
	send := func(subj string, req any, token int) error {
		data, err := json.Marshal(req)
		if err != nil {
			return err
		}
		return nc.PublishRequest(subj, inbox+"."+strconv.Itoa(token), data)
	}
	if err := send(subject.Admin(pair, subject.PairScope, api.VerbStatus), api.StatusRequest{Request: api.Request{V: api.Version, Pair: pair}}, monitors); err != nil {
		return nil, err
	}
	for i, p := range statusParts {
		if err := send(p.subject(pair), p.request(pair), i); err != nil {
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for !a.complete() {
		var m *nats.Msg
		select {
		case m = <-msgs:
		case <-ctx.Done():
		}
		if m == nil {
			break // the deadline: show what came
		}
		token, err := strconv.Atoi(strings.TrimPrefix(m.Subject, inbox+"."))
		if err != nil || token < 0 || token > monitors {
			continue
		}
		if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
			a.noResp[token] = true
			continue
		}
		if token == monitors {
			var r api.StatusReply
			if reply.Decode(m.Data, &r) == nil && r.Self.Node != "" && !a.answered(r.Self.Node) {
				a.replies = append(a.replies, r)
			}
			continue
		}
		if node, add, err := statusParts[token].decode(m.Data); err == nil && node != "" {
			a.parts[token][node] = add
		}
	}
	return a, nil
}

func (a *statusAnswers) answered(node string) bool {
	for _, r := range a.replies {
		if r.Self.Node == node {
			return true
		}
	}
	return false
}

// expected lists the nodes whose answers are still worth waiting for, and
// whether the monitors' answers are all in.
func (a *statusAnswers) expected() (nodes []string, done bool) {
	if a.noResp[len(a.parts)] {
		return nil, true
	}
	switch len(a.replies) {
	case 0:
		return nil, false
	case 1:
		r := a.replies[0]
		if r.Peer != nil && r.Peer.Node != "" && r.Peer.Reachable {
			return nil, false // the peer is alive: its answer is on the way
		}
		return []string{r.Self.Node}, true
	}
	for _, r := range a.replies {
		nodes = append(nodes, r.Self.Node)
	}
	return nodes, true
}

func (a *statusAnswers) complete() bool {
	nodes, done := a.expected()
	if !done {
		return false
	}
	for i, got := range a.parts {
		if a.noResp[i] {
			continue
		}
		for _, n := range nodes {
			if got[n] == nil {
				return false
			}
		}
	}
	return true
}

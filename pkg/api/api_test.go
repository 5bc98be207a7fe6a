package api

import (
	"errors"
	"testing"

	"github.com/tandem-ha/tandem/pkg/reply"
)

func TestDecodeChecksHead(t *testing.T) {
	var r SwitchoverRequest
	if err := Decode([]byte(`{"v":1,"pair":"p","to":"b"}`), "p", &r); err != nil || r.To != "b" {
		t.Fatalf("good request: %v %+v", err, r)
	}
	cases := map[string]string{
		`{"v":2,"pair":"p"}`:       reply.CodeBadRequest,
		`{"v":1,"pair":"q"}`:       reply.CodeWrongPair,
		`{"v":1,"pair":"p","x":1}`: reply.CodeBadRequest,
		`not json`:                 reply.CodeBadRequest,
		`{"v":1,"pair":"p"} {}`:    reply.CodeBadRequest,
	}
	for in, code := range cases {
		var re *reply.Error
		if err := Decode([]byte(in), "p", &SwitchoverRequest{}); !errors.As(err, &re) || re.Code != code {
			t.Errorf("%s: %v, want %s", in, err, code)
		}
	}
}

func TestCombine(t *testing.T) {
	age := int64(20)
	// a answered and sees b; b did not answer (cut off or dead).
	ps := Combine("p", []StatusReply{{Pair: "p",
		Self: NodeStatus{Node: "a", Role: "master", State: "active", Epoch: 4},
		Peer: &NodeStatus{Node: "b", Role: "standby", State: "active", Epoch: 3, HeartbeatAgeMS: &age}}})
	if ps.Active == nil || *ps.Active != "a" || ps.Epoch != 4 || len(ps.Nodes) != 2 {
		t.Fatalf("combine: %+v", ps)
	}
	if !ps.Nodes[0].Reachable || ps.Nodes[1].Reachable {
		t.Fatalf("reachability: %+v", ps.Nodes)
	}
	if ps := Combine("p", nil); ps.Active != nil || ps.Nodes == nil {
		t.Fatalf("no replies: %+v", ps)
	}
	// b answered, passive (maintenance: no takeover); a is dead, its
	// peer no longer hears it: a is shown in its last state, unreachable,
	// and is not the active node.
	age = 5000
	ps = Combine("p", []StatusReply{{Pair: "p",
		Self: NodeStatus{Node: "b", Role: "standby", State: "passive", Epoch: 4},
		Peer: &NodeStatus{Node: "a", Role: "master", State: "active", Epoch: 4, Reachable: false, HeartbeatAgeMS: &age}}})
	if ps.Active != nil || len(ps.Nodes) != 2 || ps.Nodes[0].Node != "a" || ps.Nodes[0].State != "active" ||
		ps.Nodes[0].Reachable || *ps.Nodes[0].HeartbeatAgeMS != 5000 {
		t.Fatalf("dead node: %+v", ps)
	}
	// b answered alone and has not heard its peer since it started (no
	// hosts to name it): the peer is still listed, unnamed, unreachable.
	ps = Combine("p", []StatusReply{{Pair: "p", Self: NodeStatus{Node: "b", Role: "standby", State: "active", Epoch: 13}}})
	if len(ps.Nodes) != 2 || ps.Nodes[0].Node != "b" || ps.Nodes[1].Node != "" || ps.Nodes[1].Role != "master" || ps.Nodes[1].Reachable ||
		ps.Active == nil || *ps.Active != "b" {
		t.Fatalf("peer never heard: %+v", ps)
	}
}

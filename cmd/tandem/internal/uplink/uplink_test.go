package uplink

import (
	"testing"

	"github.com/tandem-ha/tandem/pkg/api"
)

func TestActivated(t *testing.T) {
	a := "a"
	before := api.PairStatus{Pair: "p", Epoch: 4, Active: &a, Nodes: []api.NodeStatus{
		{Node: "a", Role: "master", State: "active", Epoch: 4, Reachable: true},
		{Node: "b", Role: "standby", State: "passive", Epoch: 4, Reachable: true},
	}}
	got := Activated(before, "b", 5)
	if got.Active == nil || *got.Active != "b" || got.Epoch != 5 {
		t.Fatalf("active %v in epoch %d, want b in 5", got.Active, got.Epoch)
	}
	if n := got.Nodes[1]; n.State != "active" || n.Epoch != 5 || !n.Reachable {
		t.Errorf("b: %+v", n)
	}
	if n := got.Nodes[0]; n.State != "passive" || n.Epoch != 4 {
		t.Errorf("a: %+v", n)
	}
	if *before.Active != "a" || before.Nodes[1].State != "passive" || before.Epoch != 4 {
		t.Errorf("the status read was changed: %+v", before)
	}
	if !Writes(got, "b") || Writes(got, "a") {
		t.Error("the node made active must be the one that writes")
	}
}

package fleet

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func TestRowSummaries(t *testing.T) {
	a := "a"
	ps := api.PairStatus{Pair: "p", Epoch: 4, Active: &a, Nodes: []api.NodeStatus{
		{Node: "a", State: "active", Reachable: true, Replication: &api.ReplStatus{State: "running"},
			Sessions: &api.SessionStatus{Known: 10, Acknowledged: 9}, License: &api.LicenseState{Status: "valid"}},
		{Node: "b", State: "passive", Reachable: true, Replication: &api.ReplStatus{State: "paused"},
			License: &api.LicenseState{Status: "warning", GraceLeft: "72h0m0s"}},
	}}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	r := Row(ps, now.Add(-31*time.Second), now, DefaultStale)
	if !r.Stale || r.AgeMS != 31000 || r.Replication != "a:running b:paused" || r.Acked != "a:9/10" ||
		len(r.Warnings) != 1 || r.Warnings[0] != "b: warning (grace left 72h0m0s)" {
		t.Fatalf("row: %+v", r)
	}
	if fresh := Row(ps, now.Add(-29*time.Second), now, DefaultStale); fresh.Stale {
		t.Fatal("a 29 s old status marked stale")
	}
}

// TestReadThousandPairs reads 1,000 pairs' status from a real hub server,
// and skips what is not a pair's status.
func TestReadThousandPairs(t *testing.T) {
	hubs, err := natsnode.StartHubCluster(1, t.TempDir(), zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer hubs[0].Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := hubs[0].EnsureFleet(ctx); err != nil {
		t.Fatal(err)
	}
	nc, err := hubs[0].Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, subject.FleetBucket)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	for i := range n {
		a := "b"
		b, _ := json.Marshal(api.PairStatus{Pair: fmt.Sprintf("p%04d", i), Epoch: uint64(i), Active: &a,
			Nodes: []api.NodeStatus{{Node: "a", State: "passive"}, {Node: "b", State: "active", Reachable: true}}})
		if _, err := kv.Put(ctx, fmt.Sprintf("p%04d", i), b); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, "bad", []byte(`{"pair":"other"}`)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	v, err := Read(ctx, nc, js, time.Now, DefaultStale)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Pairs) != n || v.Pairs[0].PairStatus.Pair != "p0000" || v.Pairs[n-1].Epoch != n-1 || v.Pairs[5].Stale {
		t.Fatalf("read %d pairs, first %+v", len(v.Pairs), v.Pairs[0])
	}
	t.Logf("read %d pairs in %v", n, took)
	start = time.Now()
	w, err := readWatch(ctx, js, time.Now, DefaultStale)
	t.Logf("with a watch: %v", time.Since(start))
	if err != nil || len(w.Pairs) != n || w.Pairs[n-1].Epoch != n-1 {
		t.Fatalf("watch read %d pairs, %v", len(w.Pairs), err)
	}
}

// TestPrintUnreachableNode: a node that did not answer is not shown in its
// last state as if it still held it ("b:active(unreachable)"): the row says
// it is unreachable and what was last heard of it, as tandem status does.
func TestPrintUnreachableNode(t *testing.T) {
	a := "a"
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	v := View{Pairs: []Pair{
		Row(api.PairStatus{Pair: "p", Epoch: 5, Active: &a, Nodes: []api.NodeStatus{
			{Node: "a", State: "active", Epoch: 5, Reachable: true},
			{Node: "b", State: "active", Epoch: 4},
		}}, now, now, DefaultStale),
		Row(api.PairStatus{Pair: "q", Nodes: []api.NodeStatus{
			{Node: "c", State: "passive", Reachable: true},
			{Role: "standby"},
		}}, now, now, DefaultStale),
	}}
	var out bytes.Buffer
	Print(&out, v)
	for _, want := range []string{"a:active b:unreachable(last active)", "c:passive ?:never-heard"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "b:active") {
		t.Errorf("the unreachable node shown active:\n%s", out.String())
	}
}

package pairtest

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func TestActivesFindsTwoActivesInOneEpoch(t *testing.T) {
	var a Actives
	for _, s := range []struct {
		node  string
		epoch uint64
	}{{"a", 1}, {"a", 1}, {"b", 2}, {"a", 3}, {"b", 2}} {
		if err := a.Active(s.node, s.epoch); err != nil {
			t.Fatalf("%s in %d: %v", s.node, s.epoch, err)
		}
	}
	if a.Err() != nil || a.Epochs() != 3 {
		t.Fatalf("clean record: err %v, epochs %d", a.Err(), a.Epochs())
	}
	if err := a.Active("b", 3); err == nil || !strings.Contains(err.Error(), "a and b both active in epoch 3") {
		t.Fatalf("b in a's epoch 3: %v", err)
	}
	if err := a.Err(); err == nil || !strings.Contains(err.Error(), "epoch 3") {
		t.Fatalf("Err after a violation: %v", err)
	}
}

func TestActivesNamesWhenEachWasSeen(t *testing.T) {
	var a Actives
	t0 := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	if err := a.ActiveAt("a", 4, t0); err != nil {
		t.Fatal(err)
	}
	err := a.ActiveAt("b", 4, t0.Add(time.Second))
	var two *TwoActives
	if !errors.As(err, &two) || two.Epoch != 4 || two.First.Node != "a" || !two.Then.At.Equal(t0.Add(time.Second)) ||
		!strings.Contains(err.Error(), "a (sent 01:02:03.000000) and b (sent 01:02:04.000000) both active in epoch 4") {
		t.Fatalf("b in a's epoch 4: %v (%+v)", err, two)
	}
}

func TestRecorderKeepsEmittedAndPublishedEvents(t *testing.T) {
	var r Recorder
	e1, err := event.New("p", "a", "monitor", event.NodeActivated, 2, time.Now(), map[string]any{"reason": "F4: x"})
	if err != nil {
		t.Fatal(err)
	}
	r.Emit(e1)
	e2, _ := event.New("p", "b", "monitor", event.PeerLost, 2, time.Now(), map[string]any{"reason": "gone"})
	b, _ := e2.Encode()
	r.Record(&nats.Msg{Data: b})
	r.Record(&nats.Msg{Data: []byte("not an event")})
	if got := len(r.Events()); got != 2 {
		t.Fatalf("%d events recorded, want 2", got)
	}
	if r.Count(event.NodeActivated) != 1 || r.Count(event.PeerLost) != 1 {
		t.Fatalf("counts: %d activated, %d lost", r.Count(event.NodeActivated), r.Count(event.PeerLost))
	}
	if e, ok := r.Find(event.PeerLost, "gone"); !ok || e.ID != e2.ID {
		t.Fatalf("Find: %v %v", e, ok)
	}
	if _, ok := r.Find(event.PeerLost, "F4"); ok {
		t.Fatal("Find matched another event's text")
	}
	r.Reset()
	if len(r.Events()) != 0 {
		t.Fatal("events after Reset")
	}
}

func TestNodeConfigRoles(t *testing.T) {
	a, b := NodeConfig("p", Master, "/a"), NodeConfig("p", Standby, "/b")
	if a.Role != config.Master || b.Role != config.Standby || a.Pair != "p" || b.Node != Standby || b.DataDir != "/b" {
		t.Fatalf("a %+v, b %+v", a, b)
	}
}

func TestServeReplConfigAnswersLikeTheReplicator(t *testing.T) {
	p := Start(t, "p")
	nc, err := p.Master.Connect("replconfig-test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	pc := api.PairConfig{Hosts: map[string]string{"a": "host-a", "b": "host-b"}}
	stop := ServeReplConfig(t, nc, "p", Master, pc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out api.ConfigReply
	req := api.ConfigRequest{Request: api.Request{V: api.Version, Pair: "p"}, Node: Master}
	if err := reply.Request(ctx, nc, subject.ReplConfig("p", Master), req, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(out.Config, pc) {
		t.Fatalf("config %+v, want %+v", out.Config, pc)
	}
	req.Node = Standby
	if err := reply.Request(ctx, nc, subject.ReplConfig("p", Master), req, &out); err == nil {
		t.Fatal("a request naming the other node was answered")
	}
	stop()
	if err := reply.Request(ctx, nc, subject.ReplConfig("p", Master), req, &out); err == nil {
		t.Fatal("answered after stop")
	}
}

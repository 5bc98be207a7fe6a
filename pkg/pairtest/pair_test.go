package pairtest

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/natsnode"
)

// eventTimeout bounds a wait for a link event: generous, to fail instead of
// hang; the ping timeout is about 3–4 s.
const eventTimeout = 15 * time.Second

func TestPairCrossLink(t *testing.T) {
	p := Start(t, "x")
	t.Run("a to b", func(t *testing.T) { pubSub(t, p.Master, p.Standby) })
	t.Run("b to a", func(t *testing.T) { pubSub(t, p.Standby, p.Master) })
}

// pubSub publishes on from until a subscriber on to receives a message.
func pubSub(t *testing.T, from, to *natsnode.Server) {
	sc, err := to.Connect("sub")
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	sub, err := sc.SubscribeSync("x.data")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.Flush(); err != nil {
		t.Fatal(err)
	}
	pc, err := from.Connect("pub")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := pc.Publish("x.data", []byte(from.Domain())); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(50 * time.Millisecond)
		if err == nil {
			if string(m.Data) != from.Domain() {
				t.Errorf("got %q, want %q", m.Data, from.Domain())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing from %s reached %s: %v", from.Domain(), to.Domain(), err)
		}
	}
}

func TestPairJetStreamAfterKill(t *testing.T) {
	p := Start(t, "x")
	p.Kill(Master)
	waitFor(t, 5*time.Second, "standby sees the link down", func() bool { return !p.Standby.Linked() })
	nc, err := p.Standby.Connect("js")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "SURVIVOR", Subjects: []string{"x.js"}})
	if err != nil {
		t.Fatalf("create stream on the survivor: %v", err)
	}
	ack, err := js.Publish(ctx, "x.js", []byte("kept"))
	if err != nil {
		t.Fatalf("publish on the survivor: %v", err)
	}
	if ack.Domain != p.Standby.Domain() {
		t.Errorf("ack from domain %q, want %q", ack.Domain, p.Standby.Domain())
	}
	m, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil || string(m.Data) != "kept" {
		t.Fatalf("read back: %v, %v", m, err)
	}
}

func TestPairCutHeal(t *testing.T) {
	p := Start(t, "x")
	waitEvent(t, p.Master, true, 5*time.Second)
	waitEvent(t, p.Standby, true, 5*time.Second)

	t0 := time.Now()
	p.Cut()
	for _, s := range []*natsnode.Server{p.Master, p.Standby} {
		ev := waitEvent(t, s, false, eventTimeout)
		t.Logf("%s saw the link down %v after the cut", s.Domain(), ev.At.Sub(t0))
	}
	probe(t, p, Master, natsnode.Unknown)
	probe(t, p, Standby, natsnode.Unknown)

	t1 := time.Now()
	p.Heal()
	p.WaitLinked(t, 10*time.Second)
	for _, s := range []*natsnode.Server{p.Master, p.Standby} {
		ev := waitEvent(t, s, true, eventTimeout)
		t.Logf("%s saw the link up %v after the heal", s.Domain(), ev.At.Sub(t1))
	}
	probe(t, p, Master, natsnode.Alive)
	probe(t, p, Standby, natsnode.Alive)
}

func TestPairKillRestart(t *testing.T) {
	p := Start(t, "x")
	for _, dead := range []string{Master, Standby} {
		live := Standby
		if dead == Standby {
			live = Master
		}
		waitEvent(t, p.Server(live), true, 5*time.Second)
		probe(t, p, live, natsnode.Alive)

		t0 := time.Now()
		p.Kill(dead)
		ev := waitEvent(t, p.Server(live), false, eventTimeout)
		t.Logf("kill %s: %s saw the link down %v after Shutdown() was called",
			dead, live, ev.At.Sub(t0))
		probe(t, p, live, natsnode.Gone)

		p.Restart(t, dead)
		p.WaitLinked(t, 10*time.Second)
		waitEvent(t, p.Server(live), true, eventTimeout)
		probe(t, p, live, natsnode.Alive)
	}
}

func TestPairBadNode(t *testing.T) {
	p := Start(t, "x")
	defer func() {
		if recover() == nil {
			t.Error("Server of an unknown node did not panic")
		}
	}()
	p.Server("c")
}

func TestPairTCPClients(t *testing.T) {
	p := Start(t, "x")
	for _, node := range []string{Master, Standby} {
		nc, err := nats.Connect(p.Server(node).ClientURL())
		if err != nil {
			t.Fatalf("tcp client of %s: %v", node, err)
		}
		nc.Close()
	}
}

// probe checks what node's probe of its peer says.
func probe(t *testing.T, p *Pair, node string, want natsnode.ProbeResult) {
	t.Helper()
	url := p.PeerLeafURL(node)
	if got := natsnode.ProbePeer(context.Background(), url, 500*time.Millisecond); got != want {
		t.Errorf("%s probing its peer at %s: %v, want %v", node, url, got, want)
	}
}

// waitEvent consumes link events of s until one has the wanted state.
func waitEvent(t *testing.T, s *natsnode.Server, up bool, timeout time.Duration) natsnode.LinkEvent {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case ev, ok := <-s.LinkEvents():
			if !ok {
				t.Fatalf("%s: link events closed", s.Domain())
			}
			if ev.Up == up {
				return ev
			}
		case <-timer.C:
			t.Fatalf("%s: no link event up=%v within %v", s.Domain(), up, timeout)
		}
	}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

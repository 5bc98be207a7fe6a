package audit_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/pairtest"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// TestMain checks for leaked goroutines. nats-server leaves one behind after
// a shutdown: the set-up of a mirror consumer waits out its own retry timer.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/nats-io/nats-server/v2/server.(*stream).setupMirrorConsumer.func3"))
}

const (
	pairName  = "p"
	waitLimit = 30 * time.Second
)

// node is one node's JetStream and event emitter.
type node struct {
	name    string
	nc      *nats.Conn
	js      jetstream.JetStream
	emitter *bus.Emitter
}

// setup starts a real pair and, on each node, its event stream, the
// consumer for the peer's mirror, and its mirror of the peer's stream.
func setup(t *testing.T) (*pairtest.Pair, map[string]*node) {
	p := pairtest.Start(t, pairName)
	nodes := map[string]*node{}
	for _, name := range []string{"a", "b"} {
		nodes[name] = connect(t, p, name)
	}
	for name, n := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		if err := audit.EnsureOrigin(ctx, n.js, pairName, name, audit.Retention{}); err != nil {
			t.Fatal(err)
		}
		if err := audit.EnsureMirror(ctx, n.js, pairName, name, peerOf(name), audit.Retention{}); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
	return p, nodes
}

func connect(t *testing.T, p *pairtest.Pair, name string) *node {
	t.Helper()
	srv := p.Server(name)
	nc, err := srv.Connect("audit-test-" + name)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.NewWithDomain(nc, srv.Domain())
	if err != nil {
		t.Fatal(err)
	}
	pub, err := bus.NewPublisher(js, bus.DefaultPublisherConfig(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	n := &node{name: name, nc: nc, js: js, emitter: bus.NewEmitter(pub, zerolog.Nop(), 4096)}
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) close() {
	if n.nc == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = n.emitter.Close(ctx)
	n.nc.Close()
	n.nc = nil
}

func peerOf(name string) string {
	if name == "a" {
		return "b"
	}
	return "a"
}

// emit makes count events of typ on n, at times from start a second apart,
// and waits until its own stream has them.
func (n *node) emit(t *testing.T, typ string, count int, start time.Time) []event.Envelope {
	t.Helper()
	var out []event.Envelope
	for i := 0; i < count; i++ {
		e, err := event.New(pairName, n.name, "test", typ, uint64(i), start.Add(time.Duration(i)*time.Second), map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		n.emitter.Emit(e)
		out = append(out, e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := n.emitter.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

// replay runs a replay on n and returns the events.
func replay(t *testing.T, n *node, q audit.Query) []event.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	var got []event.Envelope
	if _, err := audit.Replay(ctx, n.js, q, func(r audit.Record) error { got = append(got, r.Envelope); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

// waitCount waits until a replay of everything on n returns want events.
func waitCount(t *testing.T, n *node, want int) []event.Envelope {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := replay(t, n, audit.Query{Pair: pairName})
		if len(got) == want {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s has %d events, want %d", n.name, len(got), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func ids(es []event.Envelope) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	sort.Strings(out)
	return out
}

func checkSameSet(t *testing.T, what string, got, want []event.Envelope) {
	t.Helper()
	g, w := ids(got), ids(want)
	if fmt.Sprint(g) != fmt.Sprint(w) {
		t.Fatalf("%s: got %d events, want %d (or other ids)", what, len(g), len(w))
	}
	for i := 1; i < len(g); i++ {
		if g[i] == g[i-1] {
			t.Fatalf("%s: event %s twice", what, g[i])
		}
	}
}

func checkTimeOrder(t *testing.T, es []event.Envelope) {
	t.Helper()
	for i := 1; i < len(es); i++ {
		if es[i].Time.Before(es[i-1].Time) {
			t.Fatalf("replay out of time order at %d: %v after %v", i, es[i].Time, es[i-1].Time)
		}
	}
}

// Events made on both sides during a cut link are on both nodes after the
// heal, each once, and a replay on either node merges them by time (A2).
func TestPartitionEventsReachBothNodes(t *testing.T) {
	p, nodes := setup(t)
	t0 := time.Now().Add(-time.Hour)
	all := append(nodes["a"].emit(t, event.NodeStarted, 10, t0), nodes["b"].emit(t, event.NodeStarted, 10, t0.Add(500*time.Millisecond))...)
	waitCount(t, nodes["a"], 20)
	waitCount(t, nodes["b"], 20)

	p.Cut()
	all = append(all, nodes["a"].emit(t, event.NodeActivated, 5, t0.Add(time.Minute))...)
	all = append(all, nodes["b"].emit(t, event.NodeActivated, 5, t0.Add(time.Minute+300*time.Millisecond))...)
	if got := replay(t, nodes["a"], audit.Query{Pair: pairName}); len(got) != 25 {
		t.Fatalf("during the cut a has %d events, want its own 15 and b's first 10", len(got))
	}
	p.Heal()
	p.WaitLinked(t, waitLimit)
	for _, name := range []string{"a", "b"} {
		got := waitCount(t, nodes[name], 30)
		checkSameSet(t, "after the heal on "+name, got, all)
		checkTimeOrder(t, got)
	}
}

// A node whose data directory was lost makes its mirror of the peer's
// events anew: the mirror copies the peer's whole stream, not only what
// comes after (the peer's consumer remembered the former mirror's place).
func TestWipedNodeMirrorCopiesThePeersHistory(t *testing.T) {
	p, nodes := setup(t)
	start := time.Now().Add(-time.Hour)
	// Enough events that the mirror acknowledges some to a's consumer (it
	// does by flow control, when half its window of bytes is pending).
	const n = 3000
	before := nodes["a"].emit(t, event.NodeStarted, n, start)
	waitCount(t, nodes["b"], n)
	// The precondition: a's consumer knows that b's mirror has some.
	st, err := nodes["a"].js.Stream(context.Background(), subject.EventStream(pairName, "a"))
	if err != nil {
		t.Fatal(err)
	}
	feed, err := st.PushConsumer(context.Background(), subject.MirrorConsumer)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(waitLimit); ; {
		info, err := feed.Info(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if info.AckFloor.Stream > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a's consumer has no acknowledgement of the mirror's")
		}
		time.Sleep(100 * time.Millisecond)
	}
	b := loseData(t, p, nodes["b"])
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := audit.MakeMirror(ctx, b.js, b.nc, pairName, "b", "a", audit.Retention{}); err != nil {
		t.Fatal(err)
	}
	after := nodes["a"].emit(t, event.NodeActivated, 2, start.Add(time.Minute))
	checkSameSet(t, "b's replay after its data were lost", waitCount(t, b, n+2), append(before, after...))
}

// loseData restarts n's server on an empty store, as when its data
// directory is lost, and returns n connected again with its event stream
// made anew (its mirror is the caller's).
func loseData(t *testing.T, p *pairtest.Pair, n *node) *node {
	t.Helper()
	n.close()
	p.RestartEmpty(t, n.name)
	p.WaitLinked(t, waitLimit)
	again := connect(t, p, n.name)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := audit.EnsureOrigin(ctx, again.js, pairName, n.name, audit.Retention{}); err != nil {
		t.Fatal(err)
	}
	return again
}

// A node whose data directory was lost makes its event stream anew: the
// peer's mirror of it goes on with the new stream's events (they start past
// the old stream's sequences, audit.FirstSeq), and keeps the old ones.
func TestWipedNodeEventsReachThePeersMirror(t *testing.T) {
	p, nodes := setup(t)
	start := time.Now().Add(-time.Hour)
	before := nodes["a"].emit(t, event.NodeStarted, 5, start)
	waitCount(t, nodes["b"], 5)
	a := loseData(t, p, nodes["a"])
	after := a.emit(t, event.NodeActivated, 2, start.Add(time.Minute))
	checkSameSet(t, "b's replay after a's data were lost", waitCount(t, nodes["b"], 7), append(before, after...))
}

// A node makes no mirror of a peer that does not answer: made then, it
// would start where the peer's consumer stood.
func TestNoNewMirrorWithoutThePeer(t *testing.T) {
	p, nodes := setup(t)
	p.Kill("a")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	b := nodes["b"]
	if err := b.js.DeleteStream(ctx, subject.EventStream(pairName, "a")); err != nil {
		t.Fatal(err)
	}
	if err := audit.MakeMirror(ctx, b.js, b.nc, pairName, "b", "a", audit.Retention{}); err == nil {
		t.Fatal("a mirror made while its origin is down")
	}
	if _, err := b.js.Stream(ctx, subject.EventStream(pairName, "a")); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("the mirror: %v, want none", err)
	}
}

// A dead node's events are still replayed on the survivor, up to its death.
func TestReplayOnSurvivor(t *testing.T) {
	p, nodes := setup(t)
	made := nodes["a"].emit(t, event.NodeActivated, 7, time.Now().Add(-time.Minute))
	waitCount(t, nodes["b"], 7)
	nodes["a"].close()
	p.Kill("a")
	got := replay(t, nodes["b"], audit.Query{Pair: pairName, Nodes: []string{"a"}})
	checkSameSet(t, "a's events replayed on b after a died", got, made)
}

// Delete and purge are refused on every copy: both own streams and both
// mirrors (A3). Lifting the protection is refused too.
func TestDeleteAndPurgeRefused(t *testing.T) {
	_, nodes := setup(t)
	nodes["a"].emit(t, event.NodeStarted, 2, time.Now())
	nodes["b"].emit(t, event.NodeStarted, 2, time.Now())
	waitCount(t, nodes["a"], 4)
	waitCount(t, nodes["b"], 4)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	for _, on := range []string{"a", "b"} {
		for _, of := range []string{"a", "b"} {
			name := subject.EventStream(pairName, of)
			st, err := nodes[on].js.Stream(ctx, name)
			if err != nil {
				t.Fatalf("%s on %s: %v", name, on, err)
			}
			if err := st.DeleteMsg(ctx, 1); err == nil {
				t.Errorf("delete of a message of %s on %s was accepted", name, on)
			}
			if err := st.SecureDeleteMsg(ctx, 1); err == nil {
				t.Errorf("secure delete on %s of %s was accepted", on, name)
			}
			if err := st.Purge(ctx); err == nil {
				t.Errorf("purge of %s on %s was accepted", name, on)
			}
			cfg := st.CachedInfo().Config
			cfg.DenyDelete, cfg.DenyPurge = false, false
			if _, err := nodes[on].js.UpdateStream(ctx, cfg); err == nil {
				t.Errorf("lifting delete/purge protection of %s on %s was accepted", name, on)
			}
			info, err := st.Info(ctx)
			if err != nil || info.State.Msgs != 2 {
				t.Errorf("%s on %s: %v, %d messages after the attempts, want 2", name, on, err, info.State.Msgs)
			}
		}
	}
}

// A time-range replay returns exactly the events in the range, in time
// order, also filtered by node and type (A4).
func TestTimeRangeReplay(t *testing.T) {
	_, nodes := setup(t)
	t0 := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	a := nodes["a"].emit(t, event.NodeStarted, 20, t0)
	b := nodes["b"].emit(t, event.PeerLost, 20, t0.Add(500*time.Millisecond))
	waitCount(t, nodes["a"], 40)
	since, until := t0.Add(5*time.Second), t0.Add(14*time.Second+500*time.Millisecond)
	var want []event.Envelope
	for _, e := range append(append([]event.Envelope{}, a...), b...) {
		if !e.Time.Before(since) && !e.Time.After(until) {
			want = append(want, e)
		}
	}
	got := replay(t, nodes["a"], audit.Query{Pair: pairName, Since: since, Until: until})
	checkSameSet(t, "time range", got, want)
	checkTimeOrder(t, got)
	if len(got) != 20 {
		t.Fatalf("range has %d events, want 10 of each node", len(got))
	}
	onlyB := replay(t, nodes["a"], audit.Query{Pair: pairName, Nodes: []string{"b"}, Type: "tandem.peer.*", Since: since, Until: until})
	if len(onlyB) != 10 {
		t.Fatalf("node and type filter: %d events, want 10", len(onlyB))
	}
	for _, e := range onlyB {
		if e.Node != "b" || e.Type != event.PeerLost {
			t.Fatalf("filter let through %s from %s", e.Type, e.Node)
		}
	}
	if none := replay(t, nodes["a"], audit.Query{Pair: pairName, Type: "tandem.license.*"}); len(none) != 0 {
		t.Fatalf("type filter let through %d events", len(none))
	}
}

// Follow shows new events as they are made.
func TestFollow(t *testing.T) {
	_, nodes := setup(t)
	nodes["b"].emit(t, event.NodeStarted, 3, time.Now())
	waitCount(t, nodes["a"], 3)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	got := make(chan event.Envelope, 100)
	done := make(chan error, 1)
	go func() {
		_, err := audit.Replay(ctx, nodes["a"].js, audit.Query{Pair: pairName, Follow: true}, func(r audit.Record) error {
			got <- r.Envelope
			return nil
		})
		done <- err
	}()
	for i := 0; i < 3; i++ {
		<-got // the history
	}
	start := time.Now()
	made := nodes["b"].emit(t, event.NodeActivated, 1, time.Now())[0]
	select {
	case e := <-got:
		if e.ID != made.ID {
			t.Fatalf("followed %s, want %s", e.ID, made.ID)
		}
		t.Logf("a new event on b reached a follower on a after %v", time.Since(start))
	case <-ctx.Done():
		t.Fatal("follow did not show the new event")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

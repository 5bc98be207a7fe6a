package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// The pause between rounds over the servers starts at 50 ms and doubles up
// to 2 s, with up to half of it added at random; a round number below 1 is
// the first.
func TestReconnectDelay(t *testing.T) {
	for _, c := range []struct {
		round int
		base  time.Duration
	}{{-1, 50 * time.Millisecond}, {0, 50 * time.Millisecond}, {1, 50 * time.Millisecond}, {2, 100 * time.Millisecond},
		{3, 200 * time.Millisecond}, {6, 1600 * time.Millisecond}, {7, 2 * time.Second}, {1000, 2 * time.Second}} {
		for range 50 {
			if d := ReconnectDelay(c.round); d < c.base || d > c.base+c.base/2 {
				t.Fatalf("round %d: delay %v, want %v to %v", c.round, d, c.base, c.base+c.base/2)
			}
		}
	}
}

// A session whose one connection's node dies moves to the other node with the first
// attempt (no failed connection before it, so no pause between rounds),
// reads the state there without acknowledging again the epoch it already
// acknowledged, and acknowledges the survivor's next notification.
func TestReconnectToSurvivor(t *testing.T) {
	const pair = "p"
	w := newTwoNodes(t, pair)
	// One connection that moves among the servers (a caller's own, or
	// Dial's for a hub): Dial gives a Client of both nodes' URLs a
	// connection to each (TestConnectionToEachNode).
	var failed atomic.Int64
	nc, err := nats.Connect(w.urls[0]+","+w.urls[1], nats.DontRandomize(), nats.MaxReconnects(-1), nats.CustomReconnectDelay(ReconnectDelay),
		nats.ReconnectErrHandler(func(*nats.Conn, error) { failed.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := New(nc, pair)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	sessions := w.addSessions(t, c)
	waitFor(t, "the sessions at epoch 3 on node a", func() bool {
		return c.Conn().ConnectedUrl() == w.urls[0] && allAt(sessions, 3)
	})
	w.await(t, 3, 3)
	w.settle(t, c)
	w.reset()

	w.servers[0].Shutdown()
	waitFor(t, "the state read on node b", func() bool {
		return c.Conn().ConnectedUrl() == w.urls[1] && c.Stats().StateReads >= 2
	})
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d failed reconnect attempts before the survivor", n)
	}
	if r := c.Conn().Stats().Reconnects; r != 1 {
		t.Fatalf("%d reconnects, want 1", r)
	}
	w.notifyOn(t, 1, 4)
	w.awaitOnly(t, 4, 3, "the state read after the reconnect acknowledged an epoch the sessions had acknowledged")
}

// A Client dialed with both nodes' URLs holds a connection to each: when
// node a dies nothing reconnects, and the sessions switch on node b's
// notification at once, acknowledging there. A notification that reaches
// it on both connections (the leaf link carries each to both servers) is
// answered once.
func TestConnectionToEachNode(t *testing.T) {
	const pair = "p"
	w := newTwoNodes(t, pair)
	c := w.dialBoth(t)
	if len(c.links) != 2 {
		t.Fatalf("%d connections, want one to each node", len(c.links))
	}
	raw := w.state(4)
	for _, nc := range w.conns {
		if err := nc.Publish(subject.Notify(pair), raw); err != nil {
			t.Fatal(err)
		}
	}
	w.awaitOnly(t, 4, 3, "a notification received on both connections was answered twice")
	waitFor(t, "the second copy taken for an echo", func() bool { return c.Stats().Echoes == 1 })

	w.reset()
	w.servers[0].Shutdown()
	w.notifyOn(t, 1, 5)
	w.awaitOnly(t, 5, 3, "an acknowledgement of an older epoch")
	if r := c.links[1].nc.Stats().Reconnects; r != 0 {
		t.Fatalf("the connection to the survivor reconnected %d times", r)
	}
	if c.Conn() != c.links[1].nc {
		t.Fatal("the client's current connection is not the survivor's")
	}
}

// A connection to each node that comes back (its node restarted, or the
// link to it cut) reads the state there and its sessions say hello on it,
// so that the node's notifier knows them before it might activate; the
// connection to the other node saw nothing of it.
func TestHelloOnAConnectionBack(t *testing.T) {
	const pair = "p"
	w := newTwoNodes(t, pair)
	c := w.dialBoth(t)
	if err := c.links[0].nc.ForceReconnect(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the state read again on node a", func() bool { return c.Stats().StateReads == 3 })
	waitFor(t, "three hellos of epoch 3", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		k := 0
		for _, a := range w.lines {
			if a.Epoch == 3 && a.Kind == api.AckHello {
				k++
			}
		}
		return k == 3
	})
}

// dialBoth dials both nodes, adds three sessions and waits until they are
// at epoch 3, the state was read on both nodes and their acknowledgements
// arrived; then it forgets those.
func (w *twoNodes) dialBoth(t *testing.T) *Client {
	t.Helper()
	c, err := Dial(w.urls[:], w.pair)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	sessions := w.addSessions(t, c)
	waitFor(t, "the sessions at epoch 3 and the state read on both nodes", func() bool {
		return allAt(sessions, 3) && c.Stats().StateReads == 2
	})
	w.await(t, 3, 3)
	w.settle(t, c)
	w.reset()
	return c
}

// settle waits until what c sent so far has reached the recorders: a
// round trip on each of c's connections and the recorders', then a moment
// for the recorders' callbacks.
func (w *twoNodes) settle(t *testing.T, c *Client) {
	t.Helper()
	for _, nc := range append(c.Conns(), w.conns[:]...) {
		if nc.IsConnected() {
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	time.Sleep(100 * time.Millisecond)
}

// twoNodes are two unlinked node servers of a pair, each with the pair's
// state at epoch 3, and the acknowledgements they receive.
type twoNodes struct {
	pair    string
	conns   [2]*nats.Conn
	urls    [2]string
	servers [2]*natsnode.Server

	mu    sync.Mutex
	lines []api.SessionAck
}

func newTwoNodes(t *testing.T, pair string) *twoNodes {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w := &twoNodes{pair: pair}
	for i, node := range []string{"a", "b"} {
		srv, err := natsnode.Start(natsnode.Options{Pair: pair, Node: node, Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Shutdown)
		nc, err := srv.Connect("test " + node)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: subject.StateBucket, History: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := kv.Put(ctx, pair, w.state(3)); err != nil {
			t.Fatal(err)
		}
		w.servers[i], w.conns[i], w.urls[i] = srv, nc, srv.ClientURL()
	}
	record := func(m *nats.Msg) {
		for l := range bytes.Lines(m.Data) {
			a, err := api.DecodeAck(bytes.TrimSuffix(l, []byte("\n")))
			if err != nil {
				t.Errorf("ack %q: %v", l, err)
				continue
			}
			w.mu.Lock()
			w.lines = append(w.lines, a)
			w.mu.Unlock()
		}
	}
	for _, nc := range w.conns {
		for _, subj := range []string{subject.Acks(pair), subject.AckBatches(pair)} {
			if _, err := nc.Subscribe(subj, record); err != nil {
				t.Fatal(err)
			}
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *twoNodes) state(epoch uint64) []byte {
	b, _ := json.Marshal(api.Notification{V: api.NotificationVersion, Pair: w.pair, Epoch: epoch, Active: "b", Failed: "a",
		Hosts: map[string]string{"a.test": "b.test"}, Time: time.Now(), Source: api.SourceLocal})
	return b
}

// addSessions adds three sessions on a.test to c.
func (w *twoNodes) addSessions(t *testing.T, c *Client) []*Session {
	t.Helper()
	var sessions []*Session
	for i := range 3 {
		s, err := c.Add(fmt.Sprintf("s%d", i), []Connection{{Address: `\\a.test\Floor3`}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	return sessions
}

// notifyOn publishes the notification of epoch on node i's server.
func (w *twoNodes) notifyOn(t *testing.T, i int, epoch uint64) {
	t.Helper()
	if err := w.conns[i].Publish(subject.Notify(w.pair), w.state(epoch)); err != nil {
		t.Fatal(err)
	}
}

// reset forgets the acknowledgements received so far.
func (w *twoNodes) reset() {
	w.mu.Lock()
	w.lines = nil
	w.mu.Unlock()
}

// awaitOnly waits until the nodes received n acknowledgements of epoch and
// fails with why on any other one since the last reset.
func (w *twoNodes) awaitOnly(t *testing.T, epoch uint64, n int, why string) {
	t.Helper()
	w.await(t, epoch, n)
	time.Sleep(100 * time.Millisecond) // a second copy would come within this
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, a := range w.lines {
		if a.Epoch != epoch || a.Kind != api.AckSwitched {
			t.Fatalf("received %s of epoch %d from %s: %s", a.Kind, a.Epoch, a.Session, why)
		}
	}
	if len(w.lines) != n {
		t.Fatalf("received %d acknowledgements, want %d: %s", len(w.lines), n, why)
	}
}

// await waits until the nodes received n acknowledgements of epoch.
func (w *twoNodes) await(t *testing.T, epoch uint64, n int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d acknowledgements of epoch %d", n, epoch), func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		k := 0
		for _, a := range w.lines {
			if a.Epoch == epoch {
				k++
			}
		}
		return k >= n
	})
}

func allAt(sessions []*Session, epoch uint64) bool {
	for _, s := range sessions {
		if s.Epoch() != epoch {
			return false
		}
	}
	return true
}

// waitFor polls cond every 5 ms for at most 60 s (a loaded machine, -race).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after 60 s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Dial succeeds while one node is down and follows that node once it
// accepts (its state read there); it fails only when neither accepts.
func TestDialWithOneNodeDown(t *testing.T) {
	const pair = "p"
	w := newTwoNodes(t, pair)
	addr := strings.TrimPrefix(w.urls[0], "nats://")
	w.servers[0].Shutdown()
	c, err := Dial(w.urls[:], pair, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatalf("dial with node b up: %v", err)
	}
	t.Cleanup(c.Close)
	sessions := w.addSessions(t, c)
	waitFor(t, "the sessions at epoch 3 from node b", func() bool { return allAt(sessions, 3) && c.Stats().StateReads == 1 })
	srv, err := natsnode.Start(natsnode.Options{Pair: pair, Node: "a", Listen: addr, StoreDir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	waitFor(t, "the connection to node a once it accepts", func() bool { return c.links[0].nc.IsConnected() })
	if err := c.links[0].nc.Flush(); err != nil { // its subscription is on the server
		t.Fatal(err)
	}
	// Node a's new server has no state yet: its read finds none; a
	// notification published there reaches the sessions.
	if err := w.conns[1].Publish(subject.Notify(pair), w.state(4)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sessions at epoch 4", func() bool { return allAt(sessions, 4) })
	nc, err := srv.Connect("test a")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	if err := nc.Publish(subject.Notify(pair), w.state(5)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the sessions at epoch 5 through node a", func() bool { return allAt(sessions, 5) })

	srv.Shutdown()
	w.servers[1].Shutdown()
	if c2, err := Dial(w.urls[:], pair, nats.Timeout(time.Second)); err == nil {
		c2.Close()
		t.Fatal("dial with both nodes down succeeded")
	}
}

// Dial takes the URLs as an operator writes them: blanks, an empty entry
// ("a,b,") and a repeated one are no servers of their own; none at all is
// an error, not the default URL, and so is one node spelled two ways.
func TestDialURLList(t *testing.T) {
	const pair = "p"
	w := newTwoNodes(t, pair)
	for _, urls := range [][]string{
		{w.urls[0], w.urls[1], ""},
		{" " + w.urls[0], w.urls[1] + " ", w.urls[0]},
	} {
		c, err := Dial(urls, pair)
		if err != nil {
			t.Fatalf("%q: %v", urls, err)
		}
		if n := len(c.Conns()); n != 2 {
			t.Fatalf("%q: %d connections, want one to each node", urls, n)
		}
		c.Close()
	}
	c, err := Dial([]string{w.urls[1], w.urls[1]}, pair)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(c.Conns()); n != 1 {
		t.Fatalf("one URL twice: %d connections, want 1", n)
	}
	c.Close()
	host := strings.TrimPrefix(w.urls[1], "nats://")
	if c, err := Dial([]string{w.urls[1], host}, pair); err == nil || !strings.Contains(err.Error(), "same server") {
		if err == nil {
			c.Close()
		}
		t.Fatalf("one node spelled two ways: %v", err)
	}
	for _, urls := range [][]string{nil, {""}, {" ", ""}} {
		if c, err := Dial(urls, pair); err == nil {
			c.Close()
			t.Fatalf("%q: dialed", urls)
		}
	}
}

// A node that accepts the TCP connection and never says hello (frozen, or
// a port that is not NATS) neither holds Dial up for its connect timeout
// nor collects sockets while its connection is retried: each failed
// attempt's socket is closed before the next.
func TestFrozenNodeLeaksNoSockets(t *testing.T) {
	const pair = "p"
	w := newTwoNodes(t, pair)
	slow, _, _ := frozenNode(t)
	start := time.Now()
	c, err := Dial([]string{slow, w.urls[1]}, pair, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if took := time.Since(start); took >= 5*time.Second {
		t.Fatalf("dial took %v: it waited for the frozen node's connect timeout", took)
	}

	frozen, accepted, most := frozenNode(t)
	c2, err := Dial([]string{frozen, w.urls[1]}, pair, nats.Timeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c2.Close)
	waitFor(t, "five attempts on the frozen node", func() bool { return accepted.Load() >= 6 })
	if m := most.Load(); m > 2 {
		t.Fatalf("%d sockets to the frozen node open at once, of %d attempts", m, accepted.Load())
	}
}

// frozenNode listens on a port that accepts connections and never says
// anything; it counts the connections and the most open at once.
func frozenNode(t *testing.T) (url string, accepted, most *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted, most = new(atomic.Int64), new(atomic.Int64)
	var open atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			n := open.Add(1)
			for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
			}
			go func() { // says nothing; sees the client close
				_, _ = io.Copy(io.Discard, conn)
				conn.Close()
				open.Add(-1)
			}()
		}
	}()
	return "nats://" + ln.Addr().String(), accepted, most
}

// When the connection to one node is lost, the connection to the other
// node, if it is waiting to reconnect (that node was down and may be back),
// tries at once instead of finishing its pause: here a pause of an hour.
func TestConnectionBackWhenTheOtherIsLost(t *testing.T) {
	const pair = "p"
	w := newTwoNodes(t, pair)
	c, err := Dial(w.urls[:], pair, nats.CustomReconnectDelay(func(int) time.Duration { return time.Hour }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	waitFor(t, "a connection to each node", func() bool { return len(c.links) == 2 && c.links[0].nc.IsConnected() && c.links[1].nc.IsConnected() })

	addr := strings.TrimPrefix(w.urls[0], "nats://")
	w.servers[0].Shutdown()
	waitFor(t, "the connection to a waiting to reconnect", func() bool { return c.links[0].nc.IsReconnecting() })
	back, err := natsnode.Start(natsnode.Options{Pair: pair, Node: "a", Listen: addr, StoreDir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(back.Shutdown)
	time.Sleep(200 * time.Millisecond) // the premise: a is back, its connection still pauses
	if c.links[0].nc.IsConnected() {
		t.Fatal("the connection to a reconnected within its pause of an hour")
	}
	w.servers[1].Shutdown()
	waitFor(t, "the connection to a back once b's was lost", func() bool { return c.links[0].nc.IsConnected() })
}

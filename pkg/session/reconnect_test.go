package session

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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

// A session of a node that dies moves to the other node with the first
// attempt (no failed connection before it, so no pause between rounds),
// reads the state there without acknowledging again the epoch it already
// acknowledged, and acknowledges the survivor's next notification.
func TestReconnectToSurvivor(t *testing.T) {
	const pair = "p"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	state := func(epoch uint64) []byte {
		b, _ := json.Marshal(api.Notification{V: api.NotificationVersion, Pair: pair, Epoch: epoch, Active: "b", Failed: "a",
			Hosts: map[string]string{"a.test": "b.test"}, Time: time.Now(), Source: api.SourceLocal})
		return b
	}
	var conns [2]*nats.Conn
	var urls [2]string
	var servers [2]*natsnode.Server
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
		if _, err := kv.Put(ctx, pair, state(3)); err != nil {
			t.Fatal(err)
		}
		servers[i], conns[i], urls[i] = srv, nc, srv.ClientURL()
	}

	// What reaches the survivor: every acknowledgement line.
	var mu sync.Mutex
	var lines []api.SessionAck
	record := func(m *nats.Msg) {
		for l := range bytes.Lines(m.Data) {
			a, err := api.DecodeAck(bytes.TrimSuffix(l, []byte("\n")))
			if err != nil {
				t.Errorf("ack %q: %v", l, err)
				continue
			}
			mu.Lock()
			lines = append(lines, a)
			mu.Unlock()
		}
	}
	for _, subj := range []string{subject.Acks(pair), subject.AckBatches(pair)} {
		if _, err := conns[1].Subscribe(subj, record); err != nil {
			t.Fatal(err)
		}
	}
	if err := conns[1].Flush(); err != nil {
		t.Fatal(err)
	}

	var failed atomic.Int64
	c, err := Dial(urls[:], pair, nats.DontRandomize(), nats.ReconnectErrHandler(func(*nats.Conn, error) { failed.Add(1) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	var sessions []*Session
	for i := range 3 {
		s, err := c.Add(fmt.Sprintf("s%d", i), []Connection{{Address: `\\a.test\Floor3`}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	waitFor(t, "the sessions at epoch 3 on node a", func() bool {
		return c.Conn().ConnectedUrl() == urls[0] && allAt(sessions, 3)
	})

	servers[0].Shutdown()
	waitFor(t, "the state read on node b", func() bool {
		return c.Conn().ConnectedUrl() == urls[1] && c.Stats().StateReads >= 2
	})
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d failed reconnect attempts before the survivor", n)
	}
	if r := c.Conn().Stats().Reconnects; r != 1 {
		t.Fatalf("%d reconnects, want 1", r)
	}

	if err := conns[1].Publish(subject.Notify(pair), state(4)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "three acknowledgements of epoch 4 on node b", func() bool {
		mu.Lock()
		defer mu.Unlock()
		k := 0
		for _, a := range lines {
			if a.Epoch == 4 {
				k++
			}
		}
		return k == 3
	})
	mu.Lock()
	defer mu.Unlock()
	for _, a := range lines {
		if a.Epoch != 4 || a.Kind != api.AckSwitched {
			t.Fatalf("node b received %s of epoch %d from %s: the state read after the reconnect acknowledged an epoch the sessions had acknowledged",
				a.Kind, a.Epoch, a.Session)
		}
	}
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

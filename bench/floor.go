//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/api"
)

// natsFloor is what NATS alone needs for one round of a notification on
// the sessions' topology (issue 19: Tandem within 2× of it, measured in the
// same run): a publish on a node's server reaches subscribers on conns
// connections of this process, they acknowledge, and one more connection
// counts the acknowledgements; the figure is the publish → the last one
// counted, on this process's clock. The messages are as large as Tandem's:
// a notification of the benchmark's pair, and a session's acknowledgement
// of it per session.
//
// Two patterns: per session (subs subscribers spread over the connections,
// each publishing its own acknowledgement: subs messages back), and batched,
// the pattern of pkg/session (one subscription per connection, which
// publishes one message of its subs/conns sessions' acknowledgements, a
// line each: conns messages back). With one session per connection the two
// are the same.
type natsFloor struct {
	want   int // acknowledgement messages per round
	conns  []*nats.Conn
	ackSub *nats.Subscription

	acked atomic.Int64
	mu    sync.Mutex    // guards done
	done  chan struct{} // closed when the round's last acknowledgement is counted
}

const (
	floorNotify = "benchfloor.notify"
	floorAck    = "benchfloor.ack"
)

// The floor's messages: what the benchmark's notifier and sessions send.
var (
	floorNotification, _ = json.Marshal(api.Notification{V: api.NotificationVersion, Pair: "bench", Epoch: 12, Active: "b",
		Failed: "a", Hosts: map[string]string{"a.test": "b.test"}, Reason: "F6: outage: link to the peer closed and its process refused the connection",
		Outage: true, Time: time.Now(), Source: api.SourceDatabase, Event: "Kq3ZbSPa0Xx2c9m4NvWlTe"})
	floorAckBody = api.AppendAck(nil, api.SessionAck{V: api.NotificationVersion, Pair: "bench", Session: "ts00042", Kind: api.AckSwitched,
		Epoch: 12, Switched: []api.Switch{{From: `\\a.test\Floor3`, To: `\\b.test\Floor3`}, {From: "ipp://a.test:631/printers/Label", To: "ipp://b.test:631/printers/Label"}}, MS: 40})
)

// startFloor connects conns connections to url (connectAll, as startFleet
// does) and subscribes for subs sessions over them: a subscriber each, or,
// batched, one per connection acknowledging for all of its sessions.
func startFloor(t proctest.T, url string, subs, conns int, batched bool) *natsFloor {
	f := &natsFloor{want: subs, conns: make([]*nats.Conn, conns)}
	t.Cleanup(f.close)
	errs := connectAll(conns, func(i int) (err error) {
		f.conns[i], err = nats.Connect(url, nats.Name("bench floor"), nats.Timeout(15*time.Second))
		return err
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("floor connection %d: %v", i, err)
		}
	}
	if batched {
		f.want = conns
		for i, nc := range f.conns {
			var batch []byte
			for range subs/conns + btoi(i < subs%conns) {
				batch = append(append(batch, floorAckBody...), '\n')
			}
			if _, err := nc.Subscribe(floorNotify, func(*nats.Msg) { _ = nc.Publish(floorAck, batch) }); err != nil {
				t.Fatalf("floor subscriber %d: %v", i, err)
			}
		}
	} else {
		for i := range subs {
			nc := f.conns[i%conns]
			if _, err := nc.Subscribe(floorNotify, func(*nats.Msg) { _ = nc.Publish(floorAck, floorAckBody) }); err != nil {
				t.Fatalf("floor subscriber %d: %v", i, err)
			}
		}
	}
	counter := f.conns[0]
	sub, err := counter.Subscribe(floorAck, f.onAck)
	if err != nil {
		t.Fatalf("floor counter: %v", err)
	}
	_ = sub.SetPendingLimits(-1, -1)
	f.ackSub = sub
	for _, nc := range f.conns {
		if err := nc.Flush(); err != nil {
			t.Fatalf("floor flush: %v", err)
		}
	}
	return f
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// connectAll runs dial(i) for i in [0, n), 8 at a time, and returns each
// one's error. A loaded machine takes longer than nats.go's 2 s to answer
// the 10,000th connect (measured at load 30), hence the callers' 15 s
// timeouts; and when a server takes over 2 s to handle a CONNECT, its first
// PING of the connection can come before the PONG nats.go waits for
// ("expected 'PONG', got 'PING'", nats-server issue 1174: the handshake
// fails): such a dial is tried again, up to dialAttempts times in all.
func connectAll(n int, dial func(i int) error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				for range dialAttempts {
					if errs[i] = dial(i); errs[i] == nil || !strings.Contains(errs[i].Error(), "expected 'PONG'") {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	return errs
}

// dialAttempts bounds connectAll's attempts per connection.
const dialAttempts = 5

func (f *natsFloor) onAck(*nats.Msg) {
	if f.acked.Add(1) == int64(f.want) {
		f.mu.Lock()
		close(f.done)
		f.mu.Unlock()
	}
}

// round publishes one notification and returns the time until every
// subscriber's acknowledgement was counted.
func (f *natsFloor) round(t proctest.T) time.Duration {
	t.Helper()
	done := make(chan struct{})
	f.mu.Lock()
	f.done = done
	f.mu.Unlock()
	f.acked.Store(0)
	start := time.Now()
	if err := f.conns[len(f.conns)-1].Publish(floorNotify, floorNotification); err != nil {
		t.Fatalf("floor publish: %v", err)
	}
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(waitLimit):
		t.Fatalf("floor: %d of %d acknowledgements after %v", f.acked.Load(), f.want, waitLimit)
		return 0
	}
}

func (f *natsFloor) close() {
	for _, nc := range f.conns {
		if nc != nil {
			nc.Close()
		}
	}
	f.conns = nil
}

// floorRows are the rows of the floor beside a Tandem row: the floor's
// samples, and Tandem's sample ÷ the floor's of the same run.
func floorRows(what string, tandem, floor []float64) []row {
	ratio := make([]float64, 0, len(tandem))
	for i := range min(len(tandem), len(floor)) {
		ratio = append(ratio, tandem[i]/floor[i])
	}
	return []row{
		{what: "  the floor: NATS alone, " + what, unit: seconds, samples: floor},
		{what: "  Tandem ÷ floor, per run", unit: ratioUnit, samples: ratio, target: &target{"p95", floorRatio}},
	}
}

func floorLine(batched, perSession time.Duration) string {
	return fmt.Sprintf("NATS floor %v, per session %v", batched.Round(100*time.Microsecond), perSession.Round(100*time.Microsecond))
}

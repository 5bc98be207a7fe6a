//go:build linux

package proctest

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Beat is one heartbeat as the harness received it.
type Beat struct {
	Node  string
	Role  string
	State string
	Epoch uint64
	Seq   uint64
	Sent  time.Time // the sender's clock (the same machine's)
	Recv  time.Time // when the harness's connection delivered it
	// Via is the node whose server the harness received it from: the
	// sender's own server, or its peer's through the leafnode link.
	Via string
}

func (b Beat) String() string {
	return fmt.Sprintf("%s %s epoch %d (seq %d, via %s)", b.Node, b.State, b.Epoch, b.Seq, b.Via)
}

// Watch records the pair's heartbeats in the order they arrive. It is safe
// for concurrent use.
type Watch struct {
	mu      sync.Mutex // guards the fields below
	beats   []Beat
	changed chan struct{} // closed and replaced at every new beat
	bad     []string      // messages that did not decode
}

func newWatch() *Watch { return &Watch{changed: make(chan struct{})} }

// heartbeat is the part of the monitor's heartbeat the harness reads
// (services/monitor/internal/wire), decoded leniently.
type heartbeat struct {
	Node  string    `json:"node"`
	Role  string    `json:"role"`
	State string    `json:"state"`
	Epoch uint64    `json:"epoch"`
	Seq   uint64    `json:"seq"`
	Sent  time.Time `json:"sent"`
}

func (w *Watch) handler(via string) nats.MsgHandler {
	return func(m *nats.Msg) {
		recv := time.Now()
		var hb heartbeat
		if err := json.Unmarshal(m.Data, &hb); err != nil || hb.Node == "" {
			w.mu.Lock()
			w.bad = append(w.bad, fmt.Sprintf("%s: %q (%v)", m.Subject, m.Data, err))
			w.mu.Unlock()
			return
		}
		w.add(Beat{Node: hb.Node, Role: hb.Role, State: hb.State, Epoch: hb.Epoch, Seq: hb.Seq,
			Sent: hb.Sent, Recv: recv, Via: via})
	}
}

func (w *Watch) add(b Beat) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.beats = append(w.beats, b)
	close(w.changed)
	w.changed = make(chan struct{})
}

// Mark is the number of beats recorded so far: pass it to Await or Since to
// look only at what comes after.
func (w *Watch) Mark() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.beats)
}

// Since returns a copy of the beats recorded from mark on.
func (w *Watch) Since(mark int) []Beat {
	w.mu.Lock()
	defer w.mu.Unlock()
	if mark > len(w.beats) {
		mark = len(w.beats)
	}
	return append([]Beat(nil), w.beats[mark:]...)
}

// All returns a copy of every beat recorded.
func (w *Watch) All() []Beat { return w.Since(0) }

// Undecodable returns the messages on the heartbeat subjects that did not
// decode.
func (w *Watch) Undecodable() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.bad...)
}

// Await waits up to timeout for the first beat from mark on that satisfies
// match, and returns it with the mark just after it.
func (w *Watch) Await(mark int, timeout time.Duration, match func(Beat) bool) (Beat, int, bool) {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	for {
		w.mu.Lock()
		for ; mark < len(w.beats); mark++ {
			if b := w.beats[mark]; match(b) {
				w.mu.Unlock()
				return b, mark + 1, true
			}
		}
		changed := w.changed
		w.mu.Unlock()
		select {
		case <-changed:
		case <-tm.C:
			return Beat{}, mark, false
		}
	}
}

// Match is a condition on a beat for Await; zero fields match anything.
type Match struct {
	Node     string
	State    string
	Via      string
	MinEpoch uint64 // the beat's epoch is at least this
}

// Func is the condition as a function.
func (m Match) Func() func(Beat) bool {
	return func(b Beat) bool {
		return (m.Node == "" || b.Node == m.Node) && (m.State == "" || b.State == m.State) &&
			(m.Via == "" || b.Via == m.Via) && b.Epoch >= m.MinEpoch
	}
}

func (m Match) String() string {
	var parts []string
	for _, kv := range [][2]string{{"node", m.Node}, {"state", m.State}, {"via", m.Via}} {
		if kv[1] != "" {
			parts = append(parts, kv[0]+"="+kv[1])
		}
	}
	if m.MinEpoch > 0 {
		parts = append(parts, fmt.Sprintf("epoch>=%d", m.MinEpoch))
	}
	return "heartbeat " + strings.Join(parts, " ")
}

// AwaitBeat waits up to timeout for a beat from mark on that matches m and
// fails the test if none comes. It returns the beat and the mark after it.
func (p *Pair) AwaitBeat(mark int, timeout time.Duration, m Match) (Beat, int) {
	p.t.Helper()
	b, next, ok := p.watch.Await(mark, timeout, m.Func())
	if !ok {
		p.t.Fatalf("proctest: no %v within %v; last beats:\n%s", m, timeout, lastBeats(p.watch.Since(mark), 12))
	}
	return b, next
}

// AwaitBeats waits up to timeout for count beats from mark on that match m
// (e.g. count heartbeats of a node, whatever they say) and returns them.
func (p *Pair) AwaitBeats(mark int, count int, timeout time.Duration, m Match) []Beat {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	var got []Beat
	for len(got) < count {
		b, next, ok := p.watch.Await(mark, time.Until(deadline), m.Func())
		if !ok {
			p.t.Fatalf("proctest: %d of %d × %v within %v; last beats:\n%s", len(got), count, m, timeout, lastBeats(p.watch.Since(mark), 12))
		}
		got, mark = append(got, b), next
	}
	return got
}

func lastBeats(beats []Beat, n int) string {
	if len(beats) > n {
		beats = beats[len(beats)-n:]
	}
	if len(beats) == 0 {
		return "  (none)"
	}
	lines := make([]string, len(beats))
	for i, b := range beats {
		lines[i] = fmt.Sprintf("  %s  %v", b.Recv.Format("15:04:05.000"), b)
	}
	return strings.Join(lines, "\n")
}

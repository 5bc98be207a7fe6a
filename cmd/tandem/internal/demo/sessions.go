package demo

import (
	"fmt"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/pkg/session"
)

// fleet is the demo's client sessions: Options.Sessions real sessions on
// one pkg/session client connected to both nodes' URLs, as a terminal
// server holds them. Each has connections on the host of the node active
// when it started (two with settings) and one elsewhere.
//
// The sessions' callbacks run on the client's goroutines; mu guards the
// counts. The loop goroutine reads them.
type fleet struct {
	client   *session.Client
	sessions []*session.Session

	mu       sync.Mutex // guards the fields below
	killedAt time.Time  // zero until the kill
	after    map[string]int
	lastTook time.Duration
}

// startFleet connects n sessions to the pair at urls; their connections
// point at host.
func startFleet(urls []string, pair, host string, n int) (*fleet, error) {
	c, err := session.Dial(urls, pair)
	if err != nil {
		return nil, err
	}
	f := &fleet{client: c, after: map[string]int{}}
	for i := range n {
		s, err := c.Add(fmt.Sprintf("demo-%04d", i+1), demoConnections(host), f.onChange)
		if err != nil {
			c.Close()
			return nil, err
		}
		f.sessions = append(f.sessions, s)
	}
	return f, nil
}

// demoConnections are a session's connections: a default printer and a
// label printer on host, with settings, and a scanner on another server.
func demoConnections(host string) []session.Connection {
	return []session.Connection{
		{Address: `\\` + host + `\Floor3`, Default: true, Options: map[string]string{"duplex": "long-edge"}},
		{Address: "ipp://" + host + ":631/printers/Label", Options: map[string]string{"tray": "2"}},
		{Address: `\\files.demo.invalid\Scan`},
	}
}

func (f *fleet) onChange(c session.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.killedAt.IsZero() || len(c.Switched) == 0 {
		return
	}
	f.after[c.Session]++
	f.lastTook = max(f.lastTook, c.Took)
}

// killed marks the kill: switches from now on are counted.
func (f *fleet) killed(at time.Time) {
	f.mu.Lock()
	f.killedAt = at
	f.mu.Unlock()
}

// progress is what the sessions did since the kill: how many switched
// once, how many more than once, and the longest time from the activation
// to a switch.
func (f *fleet) progress() (once, more int, took time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range f.after {
		if k == 1 {
			once++
		} else {
			more++
		}
	}
	return once, more, f.lastTook
}

// line is the sessions' state in one line:
//
//	sessions  20 on 1 connection  |  at epoch 3: 20/20  |  switched after the kill: 20/20 once, 0 more than once, the last 14ms after the activation
func (f *fleet) line() string {
	epochs := map[uint64]int{}
	var newest uint64
	for _, s := range f.sessions {
		e := s.Epoch()
		epochs[e]++
		newest = max(newest, e)
	}
	l := fmt.Sprintf("sessions  %d on 1 connection  |  at epoch %d: %d/%d", len(f.sessions), newest, epochs[newest], len(f.sessions))
	f.mu.Lock()
	kill := !f.killedAt.IsZero()
	f.mu.Unlock()
	if !kill {
		return l
	}
	once, more, took := f.progress()
	l += fmt.Sprintf("  |  switched after the kill: %d/%d once, %d more than once", once, len(f.sessions), more)
	if once+more > 0 {
		l += fmt.Sprintf(", the last %v after the activation", took.Round(time.Millisecond))
	}
	return l
}

func (f *fleet) close() { f.client.Close() }

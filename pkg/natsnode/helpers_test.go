package natsnode

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger writes warnings and errors to the test log until the test's
// cleanups have run; lines from goroutines that outlive it are dropped.
func testLogger(t testing.TB) zerolog.Logger {
	w := &tbWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs last
	return zerolog.New(zerolog.ConsoleWriter{Out: w, NoColor: true, PartsExclude: []string{zerolog.TimestampFieldName}}).Level(zerolog.WarnLevel)
}

type tbWriter struct {
	mu   sync.Mutex // guards the fields below
	t    testing.TB
	done bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *tbWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// startNode starts node of pair "t" on random loopback ports, applying edit
// to the options, and shuts it down at cleanup.
func startNode(t testing.TB, node string, edit func(*Options)) *Server {
	t.Helper()
	o := Options{
		Pair:       "t",
		Node:       node,
		Listen:     "127.0.0.1:-1",
		LeafListen: "127.0.0.1:-1",
		StoreDir:   t.TempDir(),
		Logger:     testLogger(t),
	}
	if edit != nil {
		edit(&o)
	}
	s, err := Start(o)
	if err != nil {
		t.Fatalf("start %s: %v", node, err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// startPair starts master "a" and standby "b" soliciting it directly, and
// waits until both see the link.
func startPair(t testing.TB) (a, b *Server) {
	t.Helper()
	a = startNode(t, "a", nil)
	b = startNode(t, "b", func(o *Options) { o.Peer, o.Solicit = a.LeafURL(), true })
	waitFor(t, 10*time.Second, "link up", func() bool { return a.Linked() && b.Linked() })
	return a, b
}

// waitFor polls cond every 5 ms until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextEvent returns the next link event of s, failing after timeout.
func nextEvent(t testing.TB, s *Server, timeout time.Duration) LinkEvent {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-s.LinkEvents():
		if !ok {
			t.Fatal("link events closed")
		}
		return ev
	case <-timer.C:
		t.Fatalf("no link event within %v", timeout)
		return LinkEvent{}
	}
}

// waitEvent consumes link events of s until one has the wanted state.
func waitEvent(t testing.TB, s *Server, up bool, timeout time.Duration) LinkEvent {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := nextEvent(t, s, time.Until(deadline))
		if ev.Up == up {
			return ev
		}
	}
}

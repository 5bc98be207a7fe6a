package natsnode

import (
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/config"
)

// downTimeout bounds a wait for a link event: generous, to fail instead of
// hang, never a latency assertion.
const downTimeout = 15 * time.Second

func TestLinkEventsOnPeerShutdown(t *testing.T) {
	for _, dead := range []string{"a", "b"} {
		t.Run("shut down "+dead, func(t *testing.T) {
			a, b := startPair(t)
			gone, live := a, b
			if dead == "b" {
				gone, live = b, a
			}
			waitEvent(t, live, true, 5*time.Second)
			t0 := time.Now()
			gone.Shutdown()
			took := time.Since(t0)
			ev := waitEvent(t, live, false, downTimeout)
			t.Logf("%s saw the link down %v after %s's Shutdown() was called (Shutdown took %v)",
				live.Domain(), ev.At.Sub(t0), gone.Domain(), took)
			if live.Linked() {
				t.Error("Linked() after the down event")
			}
			for range gone.LinkEvents() { // ends: Shutdown closed it
			}
		})
	}
}

// TestLinkEventLatency closes the leaf socket on one side and measures how
// long the other side takes to report the link down, then lets it reconnect.
func TestLinkEventLatency(t *testing.T) {
	a, b := startPair(t)
	waitEvent(t, a, true, 5*time.Second)
	waitEvent(t, b, true, 5*time.Second)
	var lat []time.Duration
	for range 10 {
		t0 := kickLeaf(t, b)
		ev := waitEvent(t, a, false, downTimeout)
		lat = append(lat, ev.At.Sub(t0))
		waitEvent(t, a, true, 5*time.Second)
		waitEvent(t, b, false, 5*time.Second)
		waitEvent(t, b, true, 5*time.Second)
	}
	slices.Sort(lat)
	t.Logf("socket closed on b -> LinkEvent down on a, %d runs: min %v, median %v, max %v",
		len(lat), lat[0], lat[len(lat)/2], lat[len(lat)-1])
}

// kickLeaf closes s's leaf connection and returns when it did so.
func kickLeaf(t *testing.T, s *Server) time.Time {
	t.Helper()
	lz, err := s.NATS().Leafz(nil)
	if err != nil || len(lz.Leafs) != 1 {
		t.Fatalf("leafz: %d leafs, %v", len(lz.Leafs), err)
	}
	t0 := time.Now()
	if err := s.NATS().DisconnectClientByID(lz.Leafs[0].ID); err != nil {
		t.Fatalf("close leaf: %v", err)
	}
	return t0
}

func TestLinkEventsAfterRestart(t *testing.T) {
	a, b := startPair(t)
	waitEvent(t, b, true, 5*time.Second)
	o := a.opts
	o.Listen, o.LeafListen = hostPort(a.ClientURL()), hostPort(a.LeafURL())
	a.Shutdown()
	waitEvent(t, b, false, downTimeout)
	a2, err := Start(o)
	if err != nil {
		t.Fatalf("restart a: %v", err)
	}
	t.Cleanup(a2.Shutdown)
	waitEvent(t, b, true, 10*time.Second)
	waitEvent(t, a2, true, 5*time.Second)
}

// TestIdleCost logs the CPU an idle linked pair uses (both servers, in
// this process).
func TestIdleCost(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 2 s")
	}
	startPair(t)
	time.Sleep(200 * time.Millisecond) // let start-up work finish before measuring
	const span = 2 * time.Second
	c0, t0 := cpuTime(t), time.Now()
	time.Sleep(span)
	used, wall := cpuTime(t)-c0, time.Since(t0)
	t.Logf("idle linked pair: %v CPU in %v = %.2f%% of a core (race detector on: %v)",
		used, wall.Round(time.Millisecond), 100*used.Seconds()/wall.Seconds(), raceEnabled)
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLinkNamesItsRemote: a link event names the server at the other end;
// a standby whose nats.peer points at another pair's node gets a link up
// to a foreign server, which ForeignPeer tells apart.
func TestLinkNamesItsRemote(t *testing.T) {
	a, b := startPair(t)
	if ev := waitEvent(t, b, true, 5*time.Second); ev.Remote != a.Domain() || ForeignPeer("t", ev.Remote) {
		t.Fatalf("b's link up names %q (foreign %v), want a's server %q", ev.Remote, ForeignPeer("t", ev.Remote), a.Domain())
	}
	q := startNode(t, "a", func(o *Options) { o.Pair = "q" })
	wrong := startNode(t, "b", func(o *Options) { o.Peer, o.Solicit = q.LeafURL(), true })
	ev := waitEvent(t, wrong, true, 10*time.Second)
	if ev.Remote != "q-a" || !ForeignPeer("t", ev.Remote) {
		t.Fatalf("a link to pair q's node: remote %q, foreign %v; want q-a, true", ev.Remote, ForeignPeer("t", ev.Remote))
	}
	if ForeignPeer("t", "") || ForeignPeer("t", "t-b") || !ForeignPeer("t", "tx-b") {
		t.Fatal("ForeignPeer: wrong for an empty name, t-b or tx-b")
	}
}

// The link coming up is seen at once on both ends through the servers'
// advisories, also on the end that accepts a leaf connection signed in with
// the leaf key (a secured pair): there the advisory names another account
// than the link's, and the master saw its link only at the next safety
// tick, up to a second later — a peer killed meanwhile was waited out as
// silent instead of refusing (F6). So is the link going down. The safety
// tick is out of the way here.
func TestLinkUpSeenWithoutSafetyTick(t *testing.T) {
	defer func(d time.Duration) { safetyTick = d }(safetyTick)
	safetyTick = time.Hour
	t.Run("open", func(t *testing.T) {
		a := startNode(t, "a", nil)
		b := startNode(t, "b", func(o *Options) { o.Peer, o.Solicit = a.LeafURL(), true })
		waitEvent(t, a, true, downTimeout)
		waitEvent(t, b, true, downTimeout)
		b.Shutdown()
		waitEvent(t, a, false, downTimeout)
	})
	t.Run("secured", func(t *testing.T) {
		p := startSecurePair(t, SeedFileName(config.RoleLeaf))
		waitEvent(t, p.a, true, downTimeout)
		waitEvent(t, p.b, true, downTimeout)
		p.b.Shutdown()
		waitEvent(t, p.a, false, downTimeout)
	})
}

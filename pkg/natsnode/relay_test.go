package natsnode

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRelayedLink follows a node's link as another process would: a client
// of the standby's server sees the relayed states through FollowLink — up,
// then, when the master's server shuts down, down with the peer's process
// proven gone.
func TestRelayedLink(t *testing.T) {
	a, b := startPair(t)
	nc, err := b.Connect("relay")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	watcher, err := b.Connect("monitor")
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	var mu sync.Mutex
	var bad []error
	f, err := FollowLink(watcher, "t", "b", func(err error) { mu.Lock(); bad = append(bad, err); mu.Unlock() })
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := watcher.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { b.Relay(ctx, nc, a.LeafURL()) })
	defer wg.Wait()
	defer cancel()

	next := func(want bool) {
		t.Helper()
		select {
		case ev := <-f.Events():
			if ev.Up != want {
				t.Fatalf("relayed link up=%v, want %v", ev.Up, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no relayed link event (want up=%v) within 10s", want)
		}
	}
	// The link came up before the relay started: the periodic relay tells
	// the follower anyway.
	next(true)
	if f.Gone() {
		t.Fatal("Gone() while the link is up")
	}
	a.Shutdown()
	next(false)
	if !f.Gone() {
		t.Fatal("the master's server shut down, but the relayed state does not say its process is gone")
	}

	// A malformed state is reported and changes nothing.
	if err := nc.Publish("tandem.t.link.b", []byte(`{"v":1,"up":true}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "bad state reported", func() bool { mu.Lock(); defer mu.Unlock(); return len(bad) > 0 })
	if !f.Gone() {
		t.Fatal("a malformed state changed the followed link")
	}
}

func TestDecodeLinkState(t *testing.T) {
	ok := `{"v":1,"up":false,"gone":true,"at":"2026-11-22T05:00:00Z"}`
	ls, err := DecodeLinkState([]byte(ok))
	if err != nil || ls.Up || !ls.Gone {
		t.Fatalf("DecodeLinkState(%s) = %+v, %v", ok, ls, err)
	}
	for _, bad := range []string{
		``, `null`, `[]`, `{}`,
		`{"v":2,"up":true,"at":"2026-11-22T05:00:00Z"}`,
		`{"v":1,"up":true}`,
		`{"v":1,"up":true,"gone":true,"at":"2026-11-22T05:00:00Z"}`,
		`{"v":1,"up":true,"at":"2026-11-22T05:00:00Z","x":1}`,
		`{"v":1,"up":true,"at":"2026-11-22T05:00:00Z"} {}`,
		`{"v":1,"up":"yes","at":"2026-11-22T05:00:00Z"}`,
		`{"v":1,"up":true,"at":"2026-11-22T05:00:00Z","pad":"` + strings.Repeat("x", 300) + `"}`,
	} {
		if _, err := DecodeLinkState([]byte(bad)); err == nil {
			t.Errorf("DecodeLinkState(%.60q) accepted", bad)
		}
	}
}

func FuzzDecodeLinkState(f *testing.F) {
	f.Add([]byte(`{"v":1,"up":true,"at":"2026-11-22T05:00:00Z"}`))
	f.Add([]byte(`{"v":1,"up":false,"gone":true,"at":"2026-11-22T05:00:00Z"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := DecodeLinkState(b)
		if err != nil {
			return
		}
		if ls.V != LinkStateVersion || ls.At.IsZero() || (ls.Up && ls.Gone) || len(b) > maxLinkState {
			t.Fatalf("accepted %q as %+v", b, ls)
		}
	})
}

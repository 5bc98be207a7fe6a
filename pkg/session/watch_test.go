package session

import (
	"testing"

	"github.com/tandem-ha/tandem/pkg/api"
)

// A watcher gets the newest notification at once, then every notification
// not older than the newest (re-announcements included), never a stale one.
func TestWatch(t *testing.T) {
	c := &Client{pair: "p", sessions: map[string]*Session{}}
	n := func(epoch uint64) api.Notification {
		return api.Notification{V: 1, Pair: "p", Epoch: epoch, Active: "b", Source: api.SourceLocal}
	}
	c.deliver(nil, n(3), true)
	var got []uint64
	c.Watch(func(n api.Notification) { got = append(got, n.Epoch) })
	for _, e := range []uint64{2, 3, 5, 4, 5} {
		c.deliver(nil, n(e), true)
	}
	if want := []uint64{3, 3, 5, 5}; len(got) != len(want) || got[0] != 3 || got[1] != 3 || got[2] != 5 || got[3] != 5 {
		t.Fatalf("watched %v, want %v", got, want)
	}
	if s := c.Stats(); s.Stale != 2 {
		t.Fatalf("stale %d, want 2", s.Stale)
	}
}

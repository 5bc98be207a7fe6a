package replicator

import (
	"testing"
	"time"
)

// The shipper polls fast while the database is busy, backs off while it is
// quiet, and is fast again at the first change.
func TestShipPollBacksOffWhenIdle(t *testing.T) {
	const poll, idle = 10 * time.Millisecond, 2 * time.Second
	t0 := time.Unix(1_000_000, 0)
	var p shipPoll
	p.start(t0)
	for _, c := range []struct {
		after time.Duration
		want  time.Duration
	}{
		{0, poll},
		{999 * time.Millisecond, poll},
		{time.Second, 50 * time.Millisecond},
		{2999 * time.Millisecond, 50 * time.Millisecond},
		{3 * time.Second, idle},
		{time.Hour, idle},
	} {
		if got := p.delay(t0.Add(c.after), poll, idle); got != c.want {
			t.Errorf("%v after the last change: delay %v, want %v", c.after, got, c.want)
		}
	}
	busy := t0.Add(time.Hour)
	p.due(busy, true, false)
	if got := p.delay(busy.Add(poll), poll, idle); got != poll {
		t.Errorf("right after a change: delay %v, want %v", got, poll)
	}
	if got := p.delay(busy.Add(time.Hour), 5*time.Second, idle); got != 5*time.Second {
		t.Errorf("a PollInterval above the idle steps: delay %v, want it kept", got)
	}
	// A write the watcher saw polls fast again, as a change does: its
	// commit may not be visible yet at the first poll.
	written := busy.Add(2 * time.Hour)
	p.written(written)
	if got := p.delay(written.Add(poll), poll, idle); got != poll {
		t.Errorf("right after a write: delay %v, want %v", got, poll)
	}
	if got := p.delay(written.Add(3*time.Second), poll, idle); got != idle {
		t.Errorf("3 s after a write that changed nothing: delay %v, want %v", got, idle)
	}
}

// It ships at start, on every change, a second after a failure, and every
// fullShip in any case; never while paused.
func TestShipPollDue(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	var p shipPoll
	p.start(t0)
	if !p.due(t0, false, false) {
		t.Fatal("not due at start (changes may have been made while the shipper was down)")
	}
	p.shipped(t0, true)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	steps := []struct {
		at              time.Duration
		changed, paused bool
		want, shippedOK bool
		what            string
	}{
		{10 * time.Millisecond, false, false, false, true, "idle"},
		{20 * time.Millisecond, true, false, true, false, "a change (shipping fails)"},
		{500 * time.Millisecond, false, false, false, true, "half a second after the failure"},
		{1020 * time.Millisecond, false, false, true, true, "a second after the failure"},
		{2 * time.Second, false, false, false, true, "idle after a success"},
		{3 * time.Second, true, true, false, true, "a change while paused"},
		{4 * time.Second, false, false, true, true, "resumed: the change waits"},
		{13 * time.Second, false, false, false, true, "idle"},
		{14 * time.Second, false, false, true, true, "fullShip after the last attempt"},
		{14*time.Second + time.Millisecond, false, false, false, true, "idle"},
	}
	for _, s := range steps {
		got := p.due(at(s.at), s.changed, s.paused)
		if got != s.want {
			t.Fatalf("%s: due %v, want %v", s.what, got, s.want)
		}
		if got {
			p.shipped(at(s.at), s.shippedOK)
		}
	}
	p.woken()
	if !p.due(at(14*time.Second+2*time.Millisecond), false, false) {
		t.Fatal("not due when woken")
	}
}

package clock

import (
	"testing"
	"time"
)

func TestUntilBeat(t *testing.T) {
	base := time.Unix(1_700_000_000, 0) // a whole second
	for _, c := range []struct {
		now  time.Time
		d    time.Duration
		want time.Duration
	}{
		{base, time.Second, time.Second},
		{base.Add(time.Nanosecond), time.Second, time.Second - time.Nanosecond},
		{base.Add(300 * time.Millisecond), time.Second, 700 * time.Millisecond},
		{base.Add(999 * time.Millisecond), time.Second, time.Millisecond},
		{base.Add(1500 * time.Millisecond), 2 * time.Second, 500 * time.Millisecond},
		{base.Add(250 * time.Millisecond), 100 * time.Millisecond, 50 * time.Millisecond},
	} {
		if got := untilBeat(c.now, c.d); got != c.want {
			t.Errorf("untilBeat(%v, %v) = %v, want %v", c.now.Sub(base), c.d, got, c.want)
		}
	}
}

func TestAlign(t *testing.T) {
	base := time.Unix(1_700_000_000, 0) // a whole second
	for _, c := range []struct {
		from, d, want time.Duration
	}{
		{0, 2 * time.Second, 2 * time.Second},
		{300 * time.Millisecond, 2 * time.Second, 2700 * time.Millisecond},
		{300 * time.Millisecond, 700 * time.Millisecond, 700 * time.Millisecond},
		{999 * time.Millisecond, 1500 * time.Millisecond, 2001 * time.Millisecond},
	} {
		got := Align(base.Add(c.from), c.d, time.Second)
		if got != c.want {
			t.Errorf("Align(+%v, %v, 1s) = %v, want %v", c.from, c.d, got, c.want)
		}
	}
}

// A Beat's ticks carry the instants they were due at: whole multiples of
// its period, however late a loaded machine delivers them; Stop stops it.
func TestBeatTicksOnMultiples(t *testing.T) {
	const d = 50 * time.Millisecond
	b := NewBeat(d)
	defer b.Stop()
	for range 3 {
		select {
		case at := <-b.C:
			if off := time.Duration(at.UnixNano() % int64(d)); off > time.Millisecond && d-off > time.Millisecond {
				t.Errorf("a tick at %v is %v past a multiple of %v", at, off, d)
			}
			b.Next()
		case <-time.After(30 * time.Second):
			t.Fatal("the Beat did not tick")
		}
	}
	b.Stop()
	select {
	case <-b.C:
		t.Error("a stopped Beat ticked")
	case <-time.After(2 * d):
	}
}

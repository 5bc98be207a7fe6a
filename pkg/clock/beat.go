package clock

import "time"

// Beat ticks on the whole multiples of its period, counted from the Unix
// epoch, rather than at multiples of it from its start: the periodic jobs
// of one process that use Beats of one period wake together, once a
// period, instead of once each (issue 19: each separate wake-up of an idle
// node costs it CPU). Whoever receives from C calls Next for the next
// tick. A tick missed (the process was not scheduled) is dropped, as a
// time.Ticker drops it.
type Beat struct {
	C <-chan time.Time
	t *time.Timer
	d time.Duration
}

// NewBeat returns a Beat of period d (d > 0), armed for the next multiple.
func NewBeat(d time.Duration) *Beat {
	t := time.NewTimer(untilBeat(time.Now(), d))
	return &Beat{C: t.C, t: t, d: d}
}

// Next arms b for the first multiple of its period after now.
func (b *Beat) Next() { b.t.Reset(untilBeat(time.Now(), b.d)) }

// Stop stops b; no tick is received after it.
func (b *Beat) Stop() { b.t.Stop() }

// untilBeat is how long from now to the next whole multiple of d: a full
// d when now is one.
func untilBeat(now time.Time, d time.Duration) time.Duration {
	return d - time.Duration(now.UnixNano()%int64(d))
}

// Align lengthens a wait d that starts at now so that it ends on a whole
// multiple of period (by less than period): a one-off timer set to it
// wakes with the Beats of that period.
func Align(now time.Time, d, period time.Duration) time.Duration {
	return d + untilBeat(now.Add(d), period)%period
}

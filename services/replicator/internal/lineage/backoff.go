package lineage

import "time"

// The back-off policy (R10: no resync loops).
const (
	// MinBackoff is the first wait after a failed or fruitless attempt.
	MinBackoff = time.Second
	// MaxBackoff is the longest wait; the wait doubles up to it.
	MaxBackoff = time.Minute
	// NoProgress is how long an attempt must hold before the next one is
	// not counted as "again": an attempt needed again within NoProgress of
	// the last (plus the wait before it) counts as no progress.
	NoProgress = 30 * time.Second
)

// Backoff spaces out attempts at something that may fail or make no
// progress (a resync, shipping a change that is too large): the first runs
// at once; each one that fails, or that comes again within NoProgress of the
// last, doubles the wait from MinBackoff up to MaxBackoff; one that succeeds
// and holds for NoProgress resets it. It is a pure value: the time is passed
// in.
type Backoff struct {
	last   time.Time
	delay  time.Duration
	reason string
}

// Wait is how long to wait at now before the next attempt (≤ 0: go).
func (b *Backoff) Wait(now time.Time) time.Duration {
	if b.last.IsZero() || now.Sub(b.last) > NoProgress+b.delay {
		b.delay = 0
	}
	return b.last.Add(b.delay).Sub(now)
}

// Attempted records an attempt at now (reason "" when it succeeded) and
// reports whether the reason changed to a new non-empty one: one event per
// change of reason, not one per attempt.
func (b *Backoff) Attempted(now time.Time, reason string) bool {
	again := !b.last.IsZero() && now.Sub(b.last) < NoProgress+b.delay
	switch {
	case reason != "" || again:
		b.delay = min(max(2*b.delay, MinBackoff), MaxBackoff)
	default:
		b.delay = 0
	}
	b.last = now
	changed := reason != b.reason
	b.reason = reason
	return changed && reason != ""
}

// Delay is the current wait after the last attempt.
func (b *Backoff) Delay() time.Duration { return b.delay }

// Reason is why the last attempt failed ("" when it did not).
func (b *Backoff) Reason() string { return b.reason }

// SetReason records the reason of a wait that no attempt produced (a resync
// needed again too soon).
func (b *Backoff) SetReason(r string) { b.reason = r }

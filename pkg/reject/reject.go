// Package reject reports the input a service refused (SPEC §9): each
// rejection is counted and logged by the service, and reported as a
// tandem.input.rejected event at most PerSecond times a second, so that a
// flood of bad input cannot flood the audit stream.
//
// Time is passed in by the caller (its clock), so the limit is tested with
// a fake clock. A Limiter is safe for concurrent use.
package reject

import (
	"sync"
	"time"

	"github.com/rs/zerolog"
)

// PerSecond is how many rejections a second are reported as events.
const PerSecond = 10

// Limiter allows PerSecond reports in each one-second window. The zero
// value is ready to use.
type Limiter struct {
	mu    sync.Mutex // guards the fields below
	start time.Time  // of the current window
	n     int        // reports asked for in the window
}

// Allow reports whether a rejection at now may be reported. A now before
// the window's start (a clock set back) starts a new window, so a clock
// stepped back does not silence reports until it catches up.
func (l *Limiter) Allow(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.start) >= time.Second || now.Before(l.start) {
		l.start, l.n = now, 0
	}
	l.n++
	return l.n <= PerSecond
}

// Log logs a rejection of kind on subj and reports whether it should also
// be reported as an event: at warn when allowed, at debug (without the
// subject) when over the limit.
func (l *Limiter) Log(log zerolog.Logger, now time.Time, kind, subj string, err error) bool {
	if !l.Allow(now) {
		log.Debug().Err(err).Str("kind", kind).Msg("input rejected")
		return false
	}
	log.Warn().Err(err).Str("kind", kind).Str("subject", subj).Msg("input rejected")
	return true
}

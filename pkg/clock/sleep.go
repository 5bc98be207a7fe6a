package clock

import (
	"context"
	"time"
)

// Sleep waits d on the real clock, or less if ctx ends first; it reports
// whether it waited the whole of d (false: ctx ended).
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Or is d when it is positive, else def: the default of a duration option
// left unset (zero) or set to nonsense (negative).
func Or(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

package reject

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/clock"
)

var start = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// allowed counts how many of n rejections at the clock's time are allowed.
func allowed(l *Limiter, c *clock.Fake, n int) int {
	k := 0
	for range n {
		if l.Allow(c.Now()) {
			k++
		}
	}
	return k
}

func TestLimiterAllowsTenASecond(t *testing.T) {
	var l Limiter
	c := clock.NewFake(start)
	if got := allowed(&l, c, 25); got != PerSecond {
		t.Fatalf("allowed %d of 25 in one instant, want %d", got, PerSecond)
	}
	c.Advance(999 * time.Millisecond)
	if got := allowed(&l, c, 5); got != 0 {
		t.Fatalf("allowed %d within the same second, want 0", got)
	}
	c.Advance(time.Millisecond)
	if got := allowed(&l, c, 25); got != PerSecond {
		t.Fatalf("allowed %d in the next second, want %d", got, PerSecond)
	}
}

func TestLimiterClockSetBackStartsANewWindow(t *testing.T) {
	var l Limiter
	c := clock.NewFake(start)
	allowed(&l, c, 25)
	c.Set(start.Add(-time.Hour))
	if got := allowed(&l, c, 25); got != PerSecond {
		t.Fatalf("after the clock was set back an hour: allowed %d, want %d", got, PerSecond)
	}
	c.Advance(500 * time.Millisecond)
	if got := allowed(&l, c, 5); got != 0 {
		t.Fatalf("within the new window: allowed %d, want 0", got)
	}
}

func TestLogLevelsFollowTheLimit(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf).Level(zerolog.DebugLevel)
	var l Limiter
	reported := 0
	for range PerSecond + 1 {
		if l.Log(log, start, "decode", "tandem.p.x", errors.New("bad")) {
			reported++
		}
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if reported != PerSecond || len(lines) != PerSecond+1 {
		t.Fatalf("reported %d, logged %d lines; want %d and %d", reported, len(lines), PerSecond, PerSecond+1)
	}
	if !strings.Contains(lines[0], `"level":"warn"`) || !strings.Contains(lines[0], `"subject":"tandem.p.x"`) {
		t.Errorf("first line %s: want warn with the subject", lines[0])
	}
	if last := lines[PerSecond]; !strings.Contains(last, `"level":"debug"`) || strings.Contains(last, "subject") {
		t.Errorf("line over the limit %s: want debug without the subject", last)
	}
}

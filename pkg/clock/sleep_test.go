package clock

import (
	"context"
	"testing"
	"time"
)

func TestSleepWaitsOrStopsWithContext(t *testing.T) {
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep with a live context reported it was cut short")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan bool, 1)
	go func() { done <- Sleep(ctx, time.Hour) }()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("Sleep with an ended context reported a full wait")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Sleep did not return when its context had ended")
	}
}

func TestOr(t *testing.T) {
	for _, c := range []struct{ d, def, want time.Duration }{
		{0, time.Second, time.Second},
		{-time.Millisecond, time.Second, time.Second},
		{time.Millisecond, time.Second, time.Millisecond},
	} {
		if got := Or(c.d, c.def); got != c.want {
			t.Errorf("Or(%v, %v) = %v, want %v", c.d, c.def, got, c.want)
		}
	}
}

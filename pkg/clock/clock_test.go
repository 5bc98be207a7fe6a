package clock

import (
	"testing"
	"time"
)

func TestFakeTickerFiresOnAdvance(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	tk := f.NewTicker(time.Second)
	defer tk.Stop()
	select {
	case <-tk.C():
		t.Fatal("ticker fired before time moved")
	default:
	}
	f.Advance(1500 * time.Millisecond)
	select {
	case got := <-tk.C():
		if want := start.Add(1500 * time.Millisecond); !got.Equal(want) {
			t.Fatalf("tick at %v, want %v", got, want)
		}
	default:
		t.Fatal("ticker did not fire after 1.5s")
	}
}

func TestFakeAfterAndSetBack(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(start)
	c := f.After(time.Minute)
	f.Set(start.Add(-time.Hour)) // clock set back: nothing fires
	select {
	case <-c:
		t.Fatal("After fired when the clock went back")
	default:
	}
	f.Set(start.Add(time.Minute))
	select {
	case <-c:
	default:
		t.Fatal("After did not fire when due")
	}
	if !f.Now().Equal(start.Add(time.Minute)) {
		t.Fatalf("Now = %v", f.Now())
	}
}

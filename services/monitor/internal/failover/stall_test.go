package failover

import (
	"slices"
	"testing"
)

// TestStallReportsCountLateTicks: the window between two reports counts the
// ticks a stall was late, which the machine's own clock does not catch up,
// so that a node stalling all the time still reports once per window.
func TestStallReportsCountLateTicks(t *testing.T) {
	var r stallReports
	if ok, n := r.report(0, 3, 20); !ok || n != 0 {
		t.Fatalf("first stall: reported %v with %d unreported, want true, 0", ok, n)
	}
	// Stalls late by 4 ticks each, one tick apart on the machine's clock:
	// at the fourth, 4 ticks of its own and 16 late have passed.
	var got []bool
	for now := 1; now <= 5; now++ {
		ok, n := r.report(now, 4, 20)
		got = append(got, ok)
		if ok && n != 3 {
			t.Fatalf("report at %d counts %d unreported stalls, want 3", now, n)
		}
	}
	if want := []bool{false, false, false, true, false}; !slices.Equal(got, want) {
		t.Fatalf("reported %v, want %v (20 ticks passed, 16 of them late, at the fourth)", got, want)
	}
}

// TestStallReportsZeroReportsEvery: StallReportTicks 0 reports every stall.
func TestStallReportsZeroReportsEvery(t *testing.T) {
	var r stallReports
	for now := range 5 {
		if ok, n := r.report(now, 1, 0); !ok || n != 0 {
			t.Fatalf("stall at %d: reported %v with %d unreported, want every stall reported", now, ok, n)
		}
	}
}

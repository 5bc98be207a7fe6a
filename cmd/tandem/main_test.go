package main

import (
	"errors"
	"testing"
)

// TestOneLine: an error of several problems (errors.Join) prints on one
// line with each problem apart, not run together.
func TestOneLine(t *testing.T) {
	err := errors.Join(errors.New("heartbeat.interval: 0s: want at least 10ms"), errors.New(`role:  "boss" is neither
master nor standby`))
	want := `heartbeat.interval: 0s: want at least 10ms; role: "boss" is neither; master nor standby`
	if got := oneLine(err.Error()); got != want {
		t.Fatalf("oneLine: %q, want %q", got, want)
	}
	if got := oneLine("  one \t problem\n\n"); got != "one problem" {
		t.Fatalf("oneLine: %q", got)
	}
}

package pairtest

import (
	"testing"
	"time"
)

// pollEvery is how often WaitFor asks its condition.
const pollEvery = 5 * time.Millisecond

// WaitFor polls cond until it holds, and fails t after limit with what
// (and, when given, what detail returns then: the state that did not
// converge). limit bounds the wait so that a test fails instead of
// hanging; it proves nothing about speed.
func WaitFor(t testing.TB, limit time.Duration, what string, cond func() bool, detail ...func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			msg := "timed out after " + limit.String() + " waiting for " + what
			for _, d := range detail {
				msg += " (" + d() + ")"
			}
			t.Fatal(msg)
		}
		time.Sleep(pollEvery)
	}
}

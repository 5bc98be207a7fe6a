package replicator

import (
	"runtime/debug"
	"sync"
	"time"
)

// largeGC is the collector's target (GOGC) while a row too large for one
// message is shipped or applied: the heap then holds the row (tens of
// megabytes live), and the default target (100: the heap may grow to twice
// what is live) would add as much again in garbage of the row's parts.
const largeGC = 25

// largeLinger is how long the lowered target outlasts a large row: the
// JetStream file store keeps the blocks of its batches cached (strongly)
// for 10 s after their last use, then only weakly, and the collector can
// give them back.
const largeLinger = 15 * time.Second

// large lowers the collector's target while any row too large for one
// message is in flight in this process (R12: memory stays about twice the
// largest row), and gives the memory back to the system when the last one
// ends. It is process-wide, as the collector's target is.
var large struct {
	mu  sync.Mutex
	n   int
	old int
}

// largeBegin marks a large row in flight; largeEnd must follow.
func largeBegin() {
	large.mu.Lock()
	defer large.mu.Unlock()
	if large.n == 0 {
		large.old = debug.SetGCPercent(largeGC)
	}
	large.n++
}

// largeEnd marks a large row done (largeLinger later).
func largeEnd() { time.AfterFunc(largeLinger, largeDone) }

func largeDone() {
	large.mu.Lock()
	defer large.mu.Unlock()
	large.n--
	if large.n == 0 {
		debug.SetGCPercent(large.old)
		debug.FreeOSMemory()
	}
}

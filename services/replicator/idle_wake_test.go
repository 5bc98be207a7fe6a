package replicator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/services/replicator"
)

// An idle shipper sleeps long between polls, yet a write after a quiet
// spell is shipped at once: the database is watched for writes. With idle
// polls of an hour, the row could only reach b within the wait if the write
// woke a's shipper (fullShip waits for a poll too).
func TestIdleShipperWakesOnWrite(t *testing.T) {
	w := newWorld(t)
	for _, n := range []string{"a", "b"} {
		w.nodes[n].edit = func(o *replicator.Options) { o.IdlePoll = time.Hour }
	}
	w.start("a")
	w.start("b")
	w.waitSynced()
	// Past the quiet spell after which the shipper sleeps IdlePoll
	// (3 s after the last change or write it saw).
	time.Sleep(4 * time.Second)
	w.exec("a", `INSERT INTO items VALUES(1, 'after a quiet spell', 1)`)
	w.waitFor("the row on b", func() bool { return strings.Contains(w.items("b"), "1:after a quiet spell") })
	time.Sleep(4 * time.Second)
	w.shell("a", `INSERT INTO items VALUES(2, 'a shell after a quiet spell', 2)`)
	w.waitFor("the shell's row on b", func() bool { return strings.Contains(w.items("b"), "2:a shell after a quiet spell") })
}

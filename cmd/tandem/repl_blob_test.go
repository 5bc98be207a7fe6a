package main

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// blobSize is the row of TestReplicationLargeBlob: 50 MiB, 200 times the
// largest part of a batch message.
const blobSize = 50 << 20

// blobRSSLimit bounds how much a node's resident memory may grow while the
// blob replicates: about twice the row (R12), with a margin for the
// collector's lag on a loaded machine. Measured on 2026-12-05 (see the
// test's doc): at most 71 MiB on the master and 83 MiB on the standby in 5
// runs, 98 MiB on the master when starved.
const blobRSSLimit = 2*blobSize + blobSize/2

// TestReplicationLargeBlob writes one 50 MiB blob on the active master
// while the pair runs at the default heartbeat (1 s, timeout 3 s): it
// reaches the standby byte for byte, in parts, with no failover (no epoch
// change, the standby never active), `tandem repl verify` clean, and each
// process's resident memory grows by a bounded amount (R12). It logs the
// peak resident memory of both processes.
//
// Measured on 2026-12-05 (2 vCPUs, -race test binary). Before (the row's
// pieces in the master's batch stream, 2 runs, load average 6–8): the
// master grew by 247–257 MiB (JetStream's file store held the row's whole
// literal in cached 8 MiB blocks), the standby by 137–147 MiB. After (the
// chunks fetched from the master's log; verify reading blobs by blob I/O;
// 5 runs, load average 2.4–3.2, 17–20 s each): the master 63–71 MiB, the
// standby 70–83 MiB. Starved on purpose (this test and its nodes in a
// cgroup of 1.5 CPUs shared with 12 busy loops): before, the standby's
// leaf connection went unread for 3.3 s (a collection that took 3.4 s while
// the 50 MiB row was first allocated; the master's link held 2.5 MB of
// parts), and verify did not converge in time (1 run); after (3 runs,
// 107–135 s): no failover, no gap over 0.9 s on the link, at most one
// 192 KiB chunk queued on it, the master grew by 86–98 MiB, the standby by
// 73–83 MiB.
func TestReplicationLargeBlob(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	dir := t.TempDir()
	db := map[string]string{master: filepath.Join(dir, master+".db"), standby: filepath.Join(dir, standby+".db")}
	f := &faultApp{t: t, db: db, acked: map[int]string{}}
	f.sql(master, `CREATE TABLE blobs(id INTEGER PRIMARY KEY, b BLOB)`)
	f.sql(master, `CREATE TABLE items(id INTEGER PRIMARY KEY, v TEXT)`)
	p, st := proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Wait: waitLimit, // the product's default heartbeat
		Extra: func(n string) map[string]any { return map[string]any{"database.path": db[n]} },
	})
	f.p = p
	f.converged("the first start")
	mark := p.Watch().Mark()
	mem := watchRSS(t, map[string]int{master: p.PID(master), standby: p.PID(standby)})

	// Written and read back by the sqlite3 shell, as an application would:
	// the test binary's driver (built with -race) takes minutes on a 50 MiB
	// value.
	blobShell(t, db[master], `INSERT INTO blobs(id, b) VALUES(1, randomblob(52428800))`)
	f.write(master, 1) // a small change behind the large one
	f.converged("the 50 MiB blob")
	peak, base := mem()

	const sum = `SELECT length(b) || ' ' || hex(sha3(b, 256)) FROM blobs WHERE id = 1`
	want, got := blobShell(t, db[master], sum), blobShell(t, db[standby], sum)
	if !strings.HasPrefix(want, fmt.Sprintf("%d ", blobSize)) || want != got {
		t.Errorf("the blob (length and SHA3-256): %q on the master, %q on the standby", want, got)
	}
	beats := p.Watch().Since(mark)
	for _, b := range beats {
		if (b.Node == standby && b.State != "passive") || (b.Node == master && (b.State != "active" || b.Epoch != st.Epoch)) {
			t.Errorf("a failover while the blob replicated: %v (the pair was in epoch %d, %s active)", b, st.Epoch, master)
		}
	}
	if len(beats) == 0 {
		t.Error("no heartbeat while the blob replicated: nothing was checked")
	}
	for _, n := range []string{master, standby} {
		t.Logf("%s: resident memory %d MiB before the blob, peak %d MiB while it replicated", n, base[n]>>20, peak[n]>>20)
		if grew := peak[n] - base[n]; grew > blobRSSLimit {
			t.Errorf("%s: resident memory grew by %d MiB for a %d MiB row (at most %d MiB)", n, grew>>20, blobSize>>20, blobRSSLimit>>20)
		}
	}
	checkInvariants(t, p)
}

// watchRSS samples the resident memory of the processes every 20 ms until
// the returned function is called, which returns the peak and the first
// sample of each.
func watchRSS(t *testing.T, pids map[string]int) func() (peak, base map[string]int64) {
	peak, base := map[string]int64{}, map[string]int64{}
	var mu sync.Mutex
	done, ended := make(chan struct{}), make(chan struct{})
	sample := func() {
		mu.Lock()
		defer mu.Unlock()
		for n, pid := range pids {
			u, err := proctest.ReadUsage(pid)
			if err != nil {
				continue
			}
			if _, ok := base[n]; !ok {
				base[n] = u.RSS
			}
			peak[n] = max(peak[n], u.RSS)
		}
	}
	sample()
	go func() {
		defer close(ended)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				sample()
			}
		}
	}()
	return func() (map[string]int64, map[string]int64) {
		close(done)
		<-ended
		if len(base) != len(pids) {
			t.Fatalf("could not read the resident memory of every node: %v", base)
		}
		return peak, base
	}
}

// blobShell runs q on the database at path with the sqlite3 shell and
// returns its output.
func blobShell(t *testing.T, path, q string) string {
	t.Helper()
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 shell")
	}
	out, err := exec.Command(bin, "-cmd", ".timeout 10000", path, q).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %s: %v: %s", q, err, out)
	}
	return strings.TrimSpace(string(out))
}

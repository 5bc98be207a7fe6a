//go:build linux

package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/testpki"
)

// TestProcessWitness: a pair with a witness (F14). A crashed master (its
// port refuses the connection) still fails over at once — the standby
// takes the lease over; with the witness killed, the active standby stays
// active (witness.required false: the seed behaviour) and says so in a
// tandem.witness.unreachable event.
func TestProcessWitness(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	bin := proctest.Build(t)
	wit := proctest.StartWitness(t, bin, waitLimit)
	p, st := proctest.StartActive(t, proctest.Options{
		Binary: bin, Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit,
		Extra: func(string) map[string]any { return map[string]any{"witness.url": wit.URL} },
	})
	crashMaster(t, p, st)

	// The witness dies: the standby stays active, in the same epoch, and
	// says so.
	before := p.Status(time.Second)
	logBefore, _ := os.ReadFile(p.Node(standby).LogPath)
	wit.Kill()
	mark := p.Watch().Mark()
	p.AwaitBeats(mark, 20, waitLimit, proctest.Match{Node: standby})
	for _, b := range p.Watch().Since(mark) {
		if b.Node == standby && (b.State != "active" || b.Epoch != before.Epoch) {
			t.Fatalf("with the witness killed the standby left the active role: %v", b)
		}
	}
	deadline := time.Now().Add(waitLimit)
	for {
		log, _ := os.ReadFile(p.Node(standby).LogPath)
		if len(log) > len(logBefore) && strings.Contains(string(log[len(logBefore):]), "witness.unreachable") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tandem.witness.unreachable in %s's log after the witness was killed", standby)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	// tandem check names it (the dead master makes the verdict critical).
	deadline = time.Now().Add(waitLimit)
	for {
		r := p.CLI("check", "--pair", p.Name, "--server", p.Servers(standby))
		if r.Code >= 1 && strings.Contains(r.Stdout, "witness unreachable from "+standby) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem check with the witness dead: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}
	checkInvariants(t, p)
}

// TestProcessWitnessCuts (F14): a pair in network namespaces with a witness
// in a third namespace that each node reaches over a link of its own. With
// the pair's link cut silently both ways, one way, and both ways while the
// witness restarts on an empty data directory (it loses the lease), the
// master stays the only active node: the standby loses it, asks the
// witness, and is refused while the master renews. The pair's state is
// sampled every 50 ms from the nodes' own heartbeats. Then the witness is
// killed: the active node stays active (the seed behaviour) and says so
// (event, tandem check WARNING).
func TestProcessWitnessCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	if err := proctest.NetnsAvailable(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	p, _ := proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit, Netns: true,
		Witness: &proctest.WitnessOptions{},
	})
	waitLease(t, p, master)
	for _, c := range []struct {
		name string
		cut  func()
	}{
		{"both ways", func() { p.Cut() }},
		{"one way, master → standby", func() { p.CutOneWay(master, standby) }},
		{"both ways, the witness restarted without its leases", func() {
			log := logSize(p, standby)
			p.Cut()
			awaitLogSince(t, p, standby, log, "tandem.peer.lost")
			start := time.Now()
			p.Witness().Restart(true)
			t.Logf("the witness restarted on an empty data directory in %v", time.Since(start).Round(time.Millisecond))
		}},
	} {
		from := time.Now()
		log := logSize(p, standby)
		c.cut()
		awaitLogSince(t, p, standby, log, "tandem.peer.lost")
		// The standby asks the witness every interval; 20 of its beats
		// (2 s at 100 ms) see it refused that many times.
		p.AwaitBeats(p.Watch().Mark(), 20, waitLimit, proctest.Match{Node: standby, Via: standby})
		p.Heal()
		p.WaitStable(master, waitLimit)
		onlyActive(t, p, c.name, master, from, time.Now())
	}

	// The witness dies: nothing moves, and the pair says so.
	log := logSize(p, master)
	p.Witness().Kill()
	from := time.Now()
	awaitLogSince(t, p, master, log, "tandem.witness.unreachable")
	deadline := time.Now().Add(waitLimit)
	for {
		r := p.CLI("check", "--pair", p.Name, "--server", p.Servers())
		if r.Code == 1 && strings.HasPrefix(r.Stdout, "TANDEM WARNING") && strings.Contains(r.Stdout, "witness unreachable from "+master) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tandem check with the witness dead: exit %d, %q %q", r.Code, r.Stdout, r.Stderr)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}
	p.AwaitBeats(p.Watch().Mark(), 20, waitLimit, proctest.Match{Node: master, Via: master})
	onlyActive(t, p, "the witness killed", master, from, time.Now())
	checkInvariants(t, p)
}

// waitLease waits until node holds the witness's lease.
func waitLease(t *testing.T, p *proctest.Pair, node string) proctest.Status {
	t.Helper()
	return p.WaitStatus(node+" holds the witness's lease", waitLimit, func(s proctest.Status) bool {
		n, ok := s.Get(node)
		return ok && n.Witness != nil && n.Witness.Reachable && n.Witness.Lease
	})
}

// onlyActive fails the test unless node was the only active node at every
// 50 ms from from to to.
func onlyActive(t *testing.T, p *proctest.Pair, what, node string, from, to time.Time) {
	t.Helper()
	samples := proctest.ActiveSamples(p.Watch().All(), from, to, 50*time.Millisecond)
	for _, s := range samples {
		if len(s.Active) != 1 || s.Active[0] != node {
			t.Errorf("%s: at %s the active nodes were %v, want only %s", what, s.At.Format("15:04:05.000"), s.Active, node)
			return
		}
	}
	t.Logf("%s: %s the only active node in all %d samples over %v", what, node, len(samples), to.Sub(from).Round(time.Millisecond))
}

// logSize is the size of node's log now, for awaitLogSince.
func logSize(p *proctest.Pair, node string) int {
	b, _ := os.ReadFile(p.Node(node).LogPath)
	return len(b)
}

// awaitLogSince waits until node's log mentions what after its first since
// bytes.
func awaitLogSince(t *testing.T, p *proctest.Pair, node string, since int, what string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		b, _ := os.ReadFile(p.Node(node).LogPath)
		if len(b) > since && strings.Contains(string(b[since:]), what) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in %s's log within %v", what, node, waitLimit)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
}

// TestProcessWitnessCredentials (F14, SPEC §9): a witness with
// witness.pairs and TLS. The master signs in with its pair's key (made by
// tandem auth witness) and holds the lease; the standby is refused with
// another key, with no key, and with the right key but without the CA of
// the witness's certificate — each time it says the witness is unreachable
// (status, tandem check WARNING) and logs why; with the right key and CA it
// reaches the witness, and takes the lease over when the master crashes.
func TestProcessWitnessCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	bin := proctest.Build(t)
	pki := testpki.New(t)
	dir := t.TempDir()
	right, pub := authWitness(t, bin, filepath.Join(dir, "right"), "p1")
	wrong, _ := authWitness(t, bin, filepath.Join(dir, "wrong"), "p1")
	wit := proctest.StartWitnessWith(t, bin, waitLimit, proctest.WitnessOptions{Pairs: map[string]string{"p1": pub}, Cert: pki.Cert, Key: pki.Key})
	if !strings.HasPrefix(wit.URL, "tls://") {
		t.Fatalf("witness URL %s", wit.URL)
	}
	creds := map[string]string{master: right, standby: wrong}
	p, st := proctest.StartActive(t, proctest.Options{
		Binary: bin, Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit,
		Extra: func(node string) map[string]any {
			return map[string]any{"witness.url": wit.URL, "witness.creds": creds[node], "witness.ca": pki.CA}
		},
	})
	waitLease(t, p, master)
	for _, c := range []struct {
		name  string
		edit  func(w map[string]any)
		inLog string
	}{
		{"another key", func(map[string]any) {}, "Authorization Violation"},
		{"no key", func(w map[string]any) { delete(w, "creds") }, "Authorization Violation"},
		{"no CA", func(w map[string]any) { w["creds"] = right; delete(w, "ca") }, "certificate"},
	} {
		log := 0 // the first case is the standby's first start
		if c.name != "another key" {
			log = logSize(p, standby)
			editWitnessConfig(t, p.Node(standby).Config, c.edit)
			p.Restart(standby)
		}
		awaitLogSince(t, p, standby, log, c.inLog)
		p.WaitStatus(c.name+": the standby cannot reach the witness", waitLimit, func(s proctest.Status) bool {
			n, ok := s.Get(standby)
			return ok && n.Reachable && n.Witness != nil && !n.Witness.Reachable
		})
		r := p.CLI("check", "--pair", p.Name, "--server", p.Servers())
		if r.Code != 1 || !strings.Contains(r.Stdout, "witness unreachable from "+standby) {
			t.Errorf("%s: tandem check: exit %d, %q %q", c.name, r.Code, r.Stdout, r.Stderr)
		}
	}
	editWitnessConfig(t, p.Node(standby).Config, func(w map[string]any) { w["ca"] = pki.CA })
	p.Restart(standby)
	p.WaitStatus("the standby reaches the witness", waitLimit, func(s proctest.Status) bool {
		n, ok := s.Get(standby)
		return ok && n.Reachable && n.State == "passive" && n.Witness != nil && n.Witness.Reachable
	})
	crashMaster(t, p, st)
	waitLease(t, p, standby)
	checkInvariants(t, p)
}

// authWitness makes a pair's witness key with `tandem auth witness` and
// returns the seed file and the public key it printed.
func authWitness(t *testing.T, bin, dir, pair string) (string, string) {
	t.Helper()
	out, err := exec.Command(bin, "auth", "witness", pair, "--dir", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("tandem auth witness: %v: %s", err, out)
	}
	for line := range strings.Lines(string(out)) {
		if key, ok := strings.CutPrefix(strings.TrimSpace(line), pair+": "); ok {
			return filepath.Join(dir, "witness-"+pair+".nk"), key
		}
	}
	t.Fatalf("tandem auth witness printed no key: %s", out)
	return "", ""
}

// editWitnessConfig changes the witness section of a node's configuration
// file (JSON, as proctest writes it).
func editWitnessConfig(t *testing.T, path string, edit func(w map[string]any)) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	w, _ := c["witness"].(map[string]any)
	edit(w)
	if b, err = json.Marshal(c); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

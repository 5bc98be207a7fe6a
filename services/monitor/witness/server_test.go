package witness

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/services/monitor/witness/lease"
)

func startWitness(t *testing.T, dir string) (*Server, *nats.Conn) {
	t.Helper()
	s, err := Start(context.Background(), ServerOptions{Listen: "127.0.0.1:0", DataDir: dir, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return s, nc
}

func ask(t *testing.T, nc *nats.Conn, r lease.Request) lease.Reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rep, err := Ask(ctx, nc, "print", r)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// TestServerLease runs the lease rule through a real witness: grant,
// renewal, refusal to the peer, takeover on Over, and a lease that
// survives a restart of the witness (counted as renewed at the restart).
func TestServerLease(t *testing.T) {
	dir := t.TempDir()
	s, nc := startWitness(t, dir)
	// A fresh witness grants only an active node's renewal (see
	// TestServerLostLeases).
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("first request refused: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("renewal refused: %+v", rep)
	}
	rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 60_000})
	if rep.Granted || rep.Holder != "a" || rep.Epoch != 2 || rep.Left <= 0 {
		t.Fatalf("b was not refused the lease a holds: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, Probe: true}); rep.Granted || rep.Holder != "a" {
		t.Fatalf("probe: %+v", rep)
	}
	// Over with an older epoch than a's lease: refused; with a's epoch: granted.
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 60_000, Over: true, Peer: "a", PeerEpoch: 1}); rep.Granted {
		t.Fatalf("takeover with a stale peer epoch granted: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 60_000, Over: true, Peer: "a", PeerEpoch: 2}); !rep.Granted {
		t.Fatalf("takeover refused: %+v", rep)
	}
	// Restart: b still holds it.
	s.Close()
	_, nc = startWitness(t, dir)
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 4, TTLMS: 60_000}); rep.Granted || rep.Holder != "b" {
		t.Fatalf("after a restart the lease b held went to a: %+v", rep)
	}
	// An active a renewing in an older epoch than b's lease is refused;
	// in a newer one (a took over while the witness was down: b died) it
	// is granted, and b's renewal then is not.
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); rep.Granted || rep.Holder != "b" {
		t.Fatalf("after a restart a stale renewal took b's lease: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 4, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("after a restart the renewal of a, active in a newer epoch than the stored lease, was refused: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 60_000, Renew: true}); rep.Granted || rep.Holder != "a" {
		t.Fatalf("b's renewal in its older epoch took the lease back: %+v", rep)
	}
}

// TestServerLostLeases: a witness restarted on a fresh data directory does
// not know who holds a pair's lease, which its previous life may have
// granted for a whole term. For that term it grants only the active node's
// renewal and takeovers, so a standby cut off from a live master cannot
// take the lease in the gap; once the term has passed unrenewed, it can.
func TestServerLostLeases(t *testing.T) {
	s, nc := startWitness(t, t.TempDir())
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("refused: %+v", rep)
	}
	s.Close()
	_, nc = startWitness(t, t.TempDir())
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 60_000}); rep.Granted || rep.Holder != "" || rep.Left <= 0 {
		t.Fatalf("a fresh witness gave b the lease a may still hold: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("the active node's renewal refused: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 60_000}); rep.Granted || rep.Holder != "a" {
		t.Fatalf("after a's renewal b was not refused: %+v", rep)
	}

	// Nobody renews: after one term (of the request) b gets it.
	_, nc = startWitness(t, t.TempDir())
	deadline := time.Now().Add(10 * time.Second)
	first := true
	for {
		rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 300})
		if rep.Granted {
			if first {
				t.Fatalf("granted at once on a fresh witness: %+v", rep)
			}
			break
		}
		first = false
		if time.Now().After(deadline) {
			t.Fatalf("the unknown lease never lapsed: %+v", rep)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
	// A stale renewal (a's, sent before b took over in epoch 3, delayed
	// past the restart) comes first: b's renewal in the higher epoch still
	// gets the lease, and a's next one is refused.
	_, nc = startWitness(t, t.TempDir())
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("a's renewal on a fresh witness: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("b's renewal in a higher epoch refused after a stale one: %+v", rep)
	}
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); rep.Granted || rep.Holder != "b" {
		t.Fatalf("a's stale renewal took the lease back: %+v", rep)
	}
	// A takeover (the peer handed over, or is proven dead) is granted at once.
	_, nc = startWitness(t, t.TempDir())
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 5, TTLMS: 60_000, Over: true, Peer: "a", PeerEpoch: 4}); !rep.Granted {
		t.Fatalf("takeover on a fresh witness refused: %+v", rep)
	}
}

// TestServerLapse: a lease not renewed lapses and goes to the other node.
func TestServerLapse(t *testing.T) {
	_, nc := startWitness(t, t.TempDir())
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 100, Renew: true}); !rep.Granted {
		t.Fatalf("refused: %+v", rep)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 100})
		if rep.Granted {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease never lapsed: %+v", rep)
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

// TestServerBadInput: bad requests get an error and change nothing.
func TestServerBadInput(t *testing.T) {
	_, nc := startWitness(t, t.TempDir())
	ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true})
	for _, body := range []string{`{`, `{"node":"A B","epoch":1,"ttl_ms":1000}`, `{"node":"b","epoch":1,"ttl_ms":1}`,
		`{"node":"b","epoch":1,"ttl_ms":1000,"extra":1}`, strings.Repeat("x", 2000)} {
		m, err := nc.Request(Subject("print"), []byte(body), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(m.Data), `"error"`) {
			t.Errorf("%.40q: no error: %s", body, m.Data)
		}
	}
	if rep := ask(t, nc, lease.Request{Node: "b", Epoch: 3, TTLMS: 60_000}); rep.Granted || rep.Holder != "a" {
		t.Fatalf("bad input changed the lease: %+v", rep)
	}
}

// TestServerLoopbackOnly: a non-loopback listener needs --insecure.
func TestServerLoopbackOnly(t *testing.T) {
	_, err := Start(context.Background(), ServerOptions{Listen: "0.0.0.0:0", DataDir: t.TempDir(), Log: zerolog.Nop()})
	if err == nil || !strings.Contains(err.Error(), "--insecure") {
		t.Fatalf("non-loopback listener: %v", err)
	}
}

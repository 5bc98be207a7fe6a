package natsnode

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestCoreCrossesLinkBothWays(t *testing.T) {
	a, b := startPair(t)
	for _, acc := range leafAccounts(t, a, b) {
		if acc != AppAccount {
			t.Errorf("leaf connection bound to account %q, want %s", acc, AppAccount)
		}
	}
	t.Run("a to b", func(t *testing.T) { roundTrip(t, a, b) })
	t.Run("b to a", func(t *testing.T) { roundTrip(t, b, a) })
}

// leafAccounts lists the account of every leaf connection of the servers.
func leafAccounts(t *testing.T, servers ...*Server) []string {
	var accs []string
	for _, s := range servers {
		lz, err := s.NATS().Leafz(nil)
		if err != nil {
			t.Fatalf("leafz: %v", err)
		}
		for _, l := range lz.Leafs {
			accs = append(accs, l.Account)
		}
	}
	if len(accs) != len(servers) {
		t.Fatalf("%d leaf connections on %d servers", len(accs), len(servers))
	}
	return accs
}

// roundTrip requests from an in-process client of from and is answered by a
// TCP client of to that presents no credentials: both land in TANDEM.
func roundTrip(t *testing.T, from, to *Server) {
	responder, err := nats.Connect(to.ClientURL(), nats.Name("responder"))
	if err != nil {
		t.Fatalf("connect to %s over tcp: %v", to.Domain(), err)
	}
	defer responder.Close()
	subj := "t.echo." + to.Domain()
	if _, err := responder.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond([]byte("pong " + to.Domain())) }); err != nil {
		t.Fatal(err)
	}
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}
	requester, err := from.Connect("requester")
	if err != nil {
		t.Fatal(err)
	}
	defer requester.Close()
	var reply *nats.Msg
	waitFor(t, 5*time.Second, "reply across the link", func() bool {
		reply, err = requester.Request(subj, []byte("ping"), 200*time.Millisecond)
		return err == nil
	})
	if got, want := string(reply.Data), "pong "+to.Domain(); got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
}

func TestJetStreamOnSurvivor(t *testing.T) {
	for _, dead := range []string{"a", "b"} {
		t.Run("without "+dead, func(t *testing.T) {
			a, b := startPair(t)
			gone, live := a, b
			if dead == "b" {
				gone, live = b, a
			}
			useJetStream(t, live, "before")
			gone.Shutdown()
			waitFor(t, 5*time.Second, "link down", func() bool { return !live.Linked() })
			useJetStream(t, live, "after")
		})
	}
}

// useJetStream creates a stream on s, publishes to it and reads the message
// back, checking that s's own domain answered.
func useJetStream(t *testing.T, s *Server, name string) {
	t.Helper()
	nc, err := s.Connect("js-" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream := strings.ToUpper(name) + "_" + strings.ReplaceAll(s.Domain(), "-", "_")
	subj := "t.js." + name + "." + s.Domain()
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subj}})
	if err != nil {
		t.Fatalf("%s: create stream %s: %v", s.Domain(), stream, err)
	}
	ack, err := js.Publish(ctx, subj, []byte(name))
	if err != nil {
		t.Fatalf("%s: publish: %v", s.Domain(), err)
	}
	if ack.Domain != s.Domain() {
		t.Errorf("ack from domain %q, want %q", ack.Domain, s.Domain())
	}
	msg, err := st.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("%s: get message: %v", s.Domain(), err)
	}
	if string(msg.Data) != name {
		t.Errorf("read %q, want %q", msg.Data, name)
	}
}

func TestRequireAuth(t *testing.T) {
	a := startNode(t, "a", func(o *Options) {
		o.RequireAuth = true
		o.Users = []string{`{user: svc, password: "s3cret"}`}
		o.LeafAuthorization = `user: leaf, password: "l3af", account: TANDEM`
	})
	if nc, err := nats.Connect(a.ClientURL(), nats.NoReconnect()); err == nil {
		nc.Close()
		t.Fatal("tcp client without credentials accepted")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Logf("refused with: %v", err)
	}
	b := startNode(t, "b", func(o *Options) {
		o.RequireAuth = true
		o.Peer = strings.Replace(a.LeafURL(), "://", "://leaf:l3af@", 1)
		o.Solicit = true
	})
	waitFor(t, 10*time.Second, "link with credentials", func() bool { return a.Linked() && b.Linked() })

	svc, err := nats.Connect(a.ClientURL(), nats.UserInfo("svc", "s3cret"))
	if err != nil {
		t.Fatalf("tcp client with credentials: %v", err)
	}
	defer svc.Close()
	sub, err := svc.SubscribeSync("t.auth")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}
	inproc, err := b.Connect("in-process")
	if err != nil {
		t.Fatalf("in-process client: %v", err)
	}
	defer inproc.Close()
	waitFor(t, 5*time.Second, "message from b's in-process client to a's svc user", func() bool {
		if err := inproc.Publish("t.auth", []byte("x")); err != nil {
			t.Fatal(err)
		}
		_, err := sub.NextMsg(50 * time.Millisecond)
		return err == nil
	})
}

// A port in use makes Start fail at once, naming the cause, instead of
// waiting out the readiness timeout.
func TestStartFailsFastOnPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	start := time.Now()
	_, err = Start(Options{Pair: "p", Node: "a", Listen: ln.Addr().String(), StoreDir: t.TempDir(), Logger: testLogger(t)})
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
	if took := time.Since(start); took >= readyTimeout {
		t.Fatalf("Start took %v, the whole readiness timeout", took)
	}
}

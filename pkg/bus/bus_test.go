package bus

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testPair = "p1"
	testNode = "a"
	// waitLong bounds every wait for a condition; the conditions normally
	// hold in milliseconds.
	waitLong = 30 * time.Second
)

// startServer runs a JetStream server in the test process on port (-1 for a
// random one) with its store in dir; it is shut down at cleanup.
func startServer(t *testing.T, dir string, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		ServerName: "bus-test",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	t.Cleanup(func() { stopServer(s) })
	return s
}

func stopServer(s *server.Server) {
	s.Shutdown()
	s.WaitForShutdown()
}

func serverPort(s *server.Server) int { return s.Addr().(*net.TCPAddr).Port }

// connect returns a client that reconnects forever, quickly.
func connect(t *testing.T, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// newJetStream starts a server and returns a client of it.
func newJetStream(t *testing.T) (*server.Server, *nats.Conn, jetstream.JetStream) {
	t.Helper()
	s := startServer(t, t.TempDir(), -1)
	nc, js := connect(t, s)
	return s, nc, js
}

func ensureStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	// The events stream as pkg/audit makes it (audit imports bus: its
	// OriginConfig cannot be used here), as far as publishing needs.
	st, err := js.CreateStream(testCtx(t), jetstream.StreamConfig{
		Name:       subject.EventStream(testPair, testNode),
		Subjects:   []string{subject.EventsOf(testPair, testNode)},
		Storage:    jetstream.FileStorage,
		Duplicates: DuplicateWindow,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}

// testCtx is canceled after waitLong or at cleanup.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

func newEvent(t *testing.T, typ string, n int) event.Envelope {
	t.Helper()
	e, err := event.New(testPair, testNode, "monitor", typ, 1, time.Now(), map[string]int{"n": n})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// waitFor polls cond until it holds, failing the test after waitLong.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLong)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func streamMsgs(t *testing.T, st jetstream.Stream) uint64 {
	t.Helper()
	info, err := st.Info(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

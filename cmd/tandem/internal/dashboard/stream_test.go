package dashboard

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/event"
)

// The dashboard reads the events as an admin, whose role may create
// consumers but not delete them: reading a stream, again after it grew,
// causes no permission violation and returns the events in order.
func TestReadStreamAsReadOnlyUser(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true,
		Users: []*server.User{
			{Username: "setup", Password: "s"},
			{Username: "reader", Password: "r", Permissions: &server.Permissions{
				Publish:   &server.SubjectPermission{Allow: []string{"$JS.API.>"}, Deny: []string{"$JS.API.CONSUMER.DELETE.>"}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}}}},
		}}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	setup, err := nats.Connect(ns.ClientURL(), nats.UserInfo("setup", "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	sjs, _ := jetstream.New(setup)
	if _, err := sjs.CreateStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"tandem.print.events.>"}}); err != nil {
		t.Fatal(err)
	}
	publish := func(n int) {
		for i := range n {
			e := ev(t, "a", event.PeerLost, 2, time.Duration(i)*time.Second, map[string]any{"reason": "link closed"})
			b, err := e.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := sjs.Publish(ctx, e.Subject(), b); err != nil {
				t.Fatal(err)
			}
		}
	}

	violations := make(chan error, 16)
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("reader", "r"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { violations <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	src := newSource("print", "b", nc, js, time.Second)
	for round, n := range []int{3, 2} {
		publish(n)
		evs, err := src.readStream(ctx, "EVENTS")
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if want := []int{3, 5}[round]; len(evs) != want {
			t.Fatalf("round %d: %d events, want %d", round, len(evs), want)
		}
	}
	// A denied publish of our own last: its violation comes back after
	// any the reads caused, in order.
	const sentinel = "$JS.API.CONSUMER.DELETE.SENTINEL.x"
	if err := nc.Publish(sentinel, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-violations:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), sentinel) {
			t.Fatalf("reading the stream: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no permission violation for the sentinel publish")
	}
}

package bus

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// rejects records what a router reported as rejected input.
type rejects struct {
	mu  sync.Mutex
	got []string // kind|subject|reason
}

func (r *rejects) reject(kind, subj string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, kind+"|"+subj+"|"+err.Error())
}

func (r *rejects) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.got...)
}

// runRouter runs a Router with Tandem's middleware over the test
// subscription, with handle as its one handler.
func runRouter(t *testing.T, sub *Subscriber, rej *rejects, reg prometheus.Registerer, handle message.NoPublishHandlerFunc) {
	t.Helper()
	r, err := NewRouter(RouterConfig{Log: testLog(t), Reject: rej.reject, Registry: reg, RetryInitial: time.Millisecond, RetryMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	r.AddConsumerHandler("events", subject.EventsOf(testPair, testNode), sub, handle)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = r.Close()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	<-r.Running()
}

// TestRouterMiddleware: a poison message is reported as rejected input
// (with its reason and subject) and the consumer goes on; a panicking
// handler is recovered and its message reported the same way; a failing
// handler is retried until it succeeds; the event id is the correlation
// id; the router's metrics are registered.
func TestRouterMiddleware(t *testing.T) {
	_, _, js := newJetStream(t)
	pub, sub := newSubscription(t, js)
	rej := &rejects{}
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	calls := map[string]int{}
	handled := make(chan string, 16)
	runRouter(t, sub, rej, reg, func(m *message.Message) error {
		mu.Lock()
		calls[m.UUID]++
		n := calls[m.UUID]
		mu.Unlock()
		if got := middleware.MessageCorrelationID(m); got != "c-"+m.UUID && got != m.UUID {
			t.Errorf("correlation id %q for %s", got, m.UUID)
		}
		switch {
		case m.UUID == "poison":
			return Poison(errors.New("not an event"))
		case m.UUID == "panic":
			panic("handler bug")
		case m.UUID == "busy" && n < 3:
			return errors.New("database busy")
		}
		handled <- m.UUID
		return nil
	})
	for _, id := range []string{"poison", "after-poison", "panic", "after-panic", "busy"} {
		publish(t, pub, id)
	}
	for _, want := range []string{"after-poison", "after-panic", "busy"} {
		select {
		case id := <-handled:
			if id != want {
				t.Fatalf("handled %s, want %s", id, want)
			}
		case <-time.After(waitLong):
			t.Fatalf("%s not handled: the consumer stopped", want)
		}
	}
	got := rej.list()
	subj := subject.Event(testPair, testNode, "tandem.repl.snapshot")
	if len(got) != 2 || got[0] != "events|"+subj+"|not an event" || !strings.HasPrefix(got[1], "events|"+subj+"|panic occurred") {
		t.Fatalf("rejected %q", got)
	}
	mu.Lock()
	if calls["busy"] != 3 || calls["poison"] != 1 || calls["panic"] != 1 {
		t.Errorf("calls %v: want busy retried to its third call, poison and panic not retried", calls)
	}
	mu.Unlock()
	cons, err := js.Consumer(testCtx(t), sub.cfg.Stream, testDurable)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every message acked once", func() bool {
		info, err := cons.Info(testCtx(t))
		return err == nil && info.AckFloor.Stream == 5 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range families {
		found = found || strings.HasPrefix(f.GetName(), "tandem_router_")
	}
	if !found {
		t.Error("no tandem_router_ metrics registered")
	}
}

func TestNewRouterNeedsReject(t *testing.T) {
	if _, err := NewRouter(RouterConfig{Log: testLog(t)}); err == nil {
		t.Fatal("a router without Reject was made")
	}
}

// TestRunConsumer: a consumer that cannot bind returns the error and
// leaves no goroutine behind (goleak in TestMain); one that runs stops when
// ctx ends.
func TestRunConsumer(t *testing.T) {
	_, _, js := newJetStream(t)
	rej := &rejects{}
	cfg := RouterConfig{Log: testLog(t), Reject: rej.reject}
	missing, err := NewSubscriber(js, SubscriberConfig{Stream: "nope", Consumer: "nope"}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := RunConsumer(testCtx(t), cfg, "events", "x", missing, func(*message.Message) error { return nil }); err == nil {
		t.Fatal("bound to a missing consumer")
	}
	pub, sub := newSubscription(t, js)
	ctx, cancel := context.WithCancel(testCtx(t))
	handled := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- RunConsumer(ctx, cfg, "events", subject.EventsOf(testPair, testNode), sub, func(m *message.Message) error {
			handled <- m.UUID
			return nil
		})
	}()
	publish(t, pub, "m1")
	select {
	case <-handled:
	case <-time.After(waitLong):
		t.Fatal("not handled")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(waitLong):
		t.Fatal("RunConsumer did not return when ctx ended")
	}
}

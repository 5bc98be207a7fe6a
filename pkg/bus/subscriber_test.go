package bus

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/subject"
)

const testDurable = "replicator"

// newSubscription makes the event stream, a durable consumer of it and a
// Publisher and Subscriber on them.
func newSubscription(t *testing.T, js jetstream.JetStream) (*Publisher, *Subscriber) {
	t.Helper()
	st := ensureStream(t, js)
	name := st.CachedInfo().Config.Name
	if _, err := js.CreateOrUpdateConsumer(testCtx(t), name, ConsumerConfig(testDurable, subject.EventsOf(testPair, testNode))); err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(js, PublisherConfig{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	sub, err := NewSubscriber(js, SubscriberConfig{Stream: name, Consumer: testDurable}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Close() })
	return pub, sub
}

func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		if !ok {
			t.Fatal("channel closed")
		}
		return m
	case <-time.After(waitLong):
		t.Fatal("no message")
	}
	return nil
}

func waitClosed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case m, ok := <-ch:
		if ok {
			t.Fatalf("message %s instead of close", m.UUID)
		}
	case <-time.After(waitLong):
		t.Fatal("channel not closed")
	}
}

func publish(t *testing.T, pub *Publisher, id string) {
	t.Helper()
	m := message.NewMessage(id, []byte(`{"id":"`+id+`"}`))
	m.Metadata.Set("correlation_id", "c-"+id)
	if err := pub.Publish(subject.Event(testPair, testNode, "tandem.repl.snapshot"), m); err != nil {
		t.Fatal(err)
	}
}

func TestSubscriberNackRedeliversAckDoesNot(t *testing.T) {
	_, _, js := newJetStream(t)
	pub, sub := newSubscription(t, js)
	publish(t, pub, "m1")
	ch, err := sub.Subscribe(testCtx(t), subject.EventsOf(testPair, testNode))
	if err != nil {
		t.Fatal(err)
	}

	m := receive(t, ch)
	if m.UUID != "m1" || string(m.Payload) != `{"id":"m1"}` || m.Metadata.Get("correlation_id") != "c-m1" {
		t.Fatalf("got %s %s %v", m.UUID, m.Payload, m.Metadata)
	}
	if _, ok := m.Metadata[jetstream.MsgIDHeader]; ok {
		t.Errorf("NATS header in metadata: %v", m.Metadata)
	}
	m.Nack()
	if m = receive(t, ch); m.UUID != "m1" {
		t.Fatalf("after nack got %s, want m1 again", m.UUID)
	}
	m.Ack()
	select {
	case <-m.Context().Done():
	case <-time.After(waitLong):
		t.Error("message context not canceled after ack")
	}
	cons, err := js.Consumer(testCtx(t), sub.cfg.Stream, testDurable)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ack recorded", func() bool {
		info, err := cons.Info(testCtx(t))
		return err == nil && info.AckFloor.Stream == 1 && info.NumAckPending == 0
	})
	publish(t, pub, "m2")
	if m = receive(t, ch); m.UUID != "m2" {
		t.Fatalf("after ack got %s, want m2", m.UUID)
	}
	m.Ack()

	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)
	info, err := cons.Info(testCtx(t))
	if err != nil {
		t.Fatalf("durable consumer gone after Close: %v", err)
	}
	if info.Config.Durable != testDurable || info.Delivered.Stream != 2 {
		t.Errorf("consumer after close: durable %q, delivered %d", info.Config.Durable, info.Delivered.Stream)
	}
	if _, err := sub.Subscribe(testCtx(t), subject.EventsOf(testPair, testNode)); !errors.Is(err, ErrClosed) {
		t.Errorf("subscribe after close: %v", err)
	}
}

func TestSubscriberResumesWhereTheDurableLeftOff(t *testing.T) {
	_, _, js := newJetStream(t)
	pub, sub := newSubscription(t, js)
	topic := subject.EventsOf(testPair, testNode)
	publish(t, pub, "m1")
	publish(t, pub, "m2")
	ch, err := sub.Subscribe(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	receive(t, ch).Ack()
	m := receive(t, ch) // held, neither acked nor nacked, when the subscriber closes
	if m.UUID != "m2" {
		t.Fatalf("got %s, want m2", m.UUID)
	}
	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ch)

	again, err := NewSubscriber(js, sub.cfg, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = again.Close() })
	ch, err = again.Subscribe(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	if m := receive(t, ch); m.UUID != "m2" {
		t.Errorf("resumed at %s, want m2 (m1 was acked, m2 was not)", m.UUID)
	}
}

func TestSubscriberChecksTheBinding(t *testing.T) {
	_, _, js := newJetStream(t)
	_, sub := newSubscription(t, js)
	if _, err := sub.Subscribe(testCtx(t), subject.EventsOf(testPair, "b")); !errors.Is(err, ErrTopicMismatch) {
		t.Errorf("other topic: %v, want ErrTopicMismatch", err)
	}
	other, err := NewSubscriber(js, SubscriberConfig{Stream: sub.cfg.Stream, Consumer: "nobody"}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Subscribe(testCtx(t), subject.EventsOf(testPair, testNode)); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Errorf("missing consumer: %v", err)
	}
	_ = other.Close()
	if _, err := NewSubscriber(js, SubscriberConfig{Stream: sub.cfg.Stream}, testLog(t)); err == nil {
		t.Error("config without consumer accepted")
	}
}

func TestSubscriberClosesTheChannelWhenCtxEnds(t *testing.T) {
	_, _, js := newJetStream(t)
	_, sub := newSubscription(t, js)
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := sub.Subscribe(ctx, subject.EventsOf(testPair, testNode))
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	waitClosed(t, ch)
}

// TestSubscriberUnderAWatermillRouter runs the Subscriber the way services
// do: a handler that fails once (the router nacks) and then succeeds.
func TestSubscriberUnderAWatermillRouter(t *testing.T) {
	_, _, js := newJetStream(t)
	pub, sub := newSubscription(t, js)
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: waitLong}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	handled, calls := make(chan string, 4), 0 // calls: only the handler's goroutine
	router.AddConsumerHandler("replicate", subject.EventsOf(testPair, testNode), sub, func(m *message.Message) error {
		calls++
		handled <- m.UUID
		if calls == 1 {
			return errors.New("database busy")
		}
		return nil
	})
	done := make(chan error, 1)
	go func() { done <- router.Run(context.Background()) }()
	t.Cleanup(func() {
		_ = router.Close()
		if err := <-done; err != nil {
			t.Errorf("router: %v", err)
		}
	})
	publish(t, pub, "m1")
	for i := range 2 {
		select {
		case id := <-handled:
			if id != "m1" {
				t.Fatalf("handled %s, want m1", id)
			}
		case <-time.After(waitLong):
			t.Fatalf("handler call %d missing", i+1)
		}
	}
	cons, err := js.Consumer(testCtx(t), sub.cfg.Stream, testDurable)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "ack recorded", func() bool {
		info, err := cons.Info(testCtx(t))
		return err == nil && info.AckFloor.Stream == 1 && info.NumAckPending == 0 && info.NumRedelivered == 0
	})
}

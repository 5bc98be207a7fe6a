package bus

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/event"
)

func TestPublisherConfigValidate(t *testing.T) {
	if err := DefaultPublisherConfig().Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	for _, c := range []PublisherConfig{
		{AckTimeout: -1},
		{Attempts: -1},
		{MinBackoff: time.Second, MaxBackoff: time.Millisecond},
		{AckTimeout: 10 * time.Second, Attempts: 12}, // may span 2 min: past the duplicates window
	} {
		if _, err := NewPublisher(nil, c, zerolog.Nop()); err == nil {
			t.Errorf("NewPublisher(%+v) accepted", c)
		}
	}
}

func TestPublisherRefusesInvalidMessages(t *testing.T) {
	pub, err := NewPublisher(nil, PublisherConfig{}, zerolog.Nop()) // refused before any I/O
	if err != nil {
		t.Fatal(err)
	}
	withMeta := func(k, v string) *message.Message {
		m := message.NewMessage("id1", []byte("{}"))
		m.Metadata.Set(k, v)
		return m
	}
	for name, m := range map[string]*message.Message{
		"no uuid":       message.NewMessage("", []byte("{}")),
		"uuid with LF":  message.NewMessage("a\nb", []byte("{}")),
		"nats header":   withMeta("Nats-Expected-Last-Sequence", "1"),
		"nats msg id":   withMeta("nats-msg-id", "other"),
		"key with :":    withMeta("a:b", "v"),
		"key with ' '":  withMeta("a b", "v"),
		"empty key":     withMeta("", "v"),
		"value with CR": withMeta("k", "a\rb"),
	} {
		err := pub.Publish("tandem.p1.events.a.node.started", m)
		if !errors.Is(err, ErrInvalidMessage) || !errors.Is(err, ErrPermanent) {
			t.Errorf("%s: err = %v, want ErrInvalidMessage and ErrPermanent", name, err)
		}
	}
	_ = pub.Close()
	if err := pub.Publish("x", message.NewMessage("id1", nil)); !errors.Is(err, ErrClosed) {
		t.Errorf("publish after Close: %v", err)
	}
}

func TestPublisherSetsMsgIDAndMetadataHeaders(t *testing.T) {
	_, _, js := newJetStream(t)
	st := ensureStream(t, js)
	pub, err := NewPublisher(js, PublisherConfig{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	m := message.NewMessage("id-1", []byte(`{"x":1}`))
	m.Metadata.Set("correlation_id", "c-1")
	m.Metadata.Set("Content-Type", "application/json")
	topic := "tandem.p1.events.a.node.started"
	if err := pub.Publish(topic, m); err != nil {
		t.Fatal(err)
	}
	raw, err := st.GetMsg(testCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{jetstream.MsgIDHeader: "id-1", "correlation_id": "c-1", "Content-Type": "application/json"} {
		if got := raw.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if raw.Subject != topic || string(raw.Data) != `{"x":1}` {
		t.Errorf("stored %s %s", raw.Subject, raw.Data)
	}
	if err := pub.Publish("tandem.p1.nowhere", message.NewMessage("id-2", nil)); err == nil {
		t.Error("publish to a subject no stream holds succeeded")
	}
}

// TestPublisherRetriesAcrossRestart stops the server, emits an event while
// it is down, waits until the publish has been retried, then restarts the
// server on the same port and store: the event must be stored exactly once
// although every attempt was buffered by the client and sent on reconnect.
func TestPublisherRetriesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, -1)
	port := serverPort(s)
	nc, js := connect(t, s)
	st := ensureStream(t, js)
	pub, err := NewPublisher(js, PublisherConfig{AckTimeout: 200 * time.Millisecond, Attempts: 3,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	em := NewEmitter(pub, testLog(t), 8, WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond))
	t.Cleanup(func() { _ = em.Close(testCtx(t)) })

	before, during := newEvent(t, event.NodeStarted, 1), newEvent(t, event.NodeActivated, 2)
	em.Emit(before)
	if err := em.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	stopServer(s)
	waitFor(t, "client to notice", func() bool { return !nc.IsConnected() })
	em.Emit(during)
	waitFor(t, "publisher and emitter retries", func() bool {
		return pub.Retries() >= 2 && em.Stats().Retried >= 1
	})

	startServer(t, dir, port)
	if err := em.Flush(testCtx(t)); err != nil {
		t.Fatalf("flush after restart: %v", err)
	}
	st, err = js.Stream(testCtx(t), st.CachedInfo().Config.Name)
	if err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, st); n != 2 {
		t.Fatalf("stream has %d messages, want 2 (the retried event once)", n)
	}
	raw, err := st.GetMsg(testCtx(t), 2)
	if err != nil {
		t.Fatal(err)
	}
	if id := raw.Header.Get(jetstream.MsgIDHeader); id != during.ID {
		t.Errorf("second message has id %s, want %s", id, during.ID)
	}
	if s := em.Stats(); s.Published != 2 || s.Dropped != 0 {
		t.Errorf("stats %+v", s)
	}
}

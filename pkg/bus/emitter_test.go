package bus

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/event"
)

func TestEmitterPublishesEventsToTheStream(t *testing.T) {
	_, _, js := newJetStream(t)
	st := ensureStream(t, js)
	em := newStreamEmitter(t, js, 16)
	evs := []event.Envelope{
		newEvent(t, event.NodeStarted, 1),
		newEvent(t, event.NodeActivated, 2),
		newEvent(t, event.PeerLost, 3),
	}
	for _, ev := range evs {
		em.Emit(ev)
	}
	if err := em.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for i, ev := range evs {
		raw, err := st.GetMsg(testCtx(t), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		if raw.Subject != ev.Subject() || raw.Header.Get(jetstream.MsgIDHeader) != ev.ID {
			t.Errorf("message %d: subject %s id %s, want %s %s", i+1, raw.Subject, raw.Header.Get(jetstream.MsgIDHeader), ev.Subject(), ev.ID)
		}
		if ct := raw.Header.Get("Content-Type"); ct != ContentType {
			t.Errorf("message %d: Content-Type %q", i+1, ct)
		}
		got, err := event.Decode(raw.Data)
		if err != nil || !reflect.DeepEqual(got, ev) {
			t.Errorf("message %d decodes to %+v, %v; want %+v", i+1, got, err, ev)
		}
	}
	if s := em.Stats(); s != (EmitterStats{Published: 3}) {
		t.Errorf("stats %+v", s)
	}
}

func TestEmitterStoresARepeatedEventOnce(t *testing.T) {
	_, _, js := newJetStream(t)
	st := ensureStream(t, js)
	em := newStreamEmitter(t, js, 16)
	ev := newEvent(t, event.NodeActivated, 1)
	em.Emit(ev)
	em.Emit(ev)
	if err := em.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, st); n != 1 {
		t.Errorf("stream has %d messages, want 1", n)
	}
	if s := em.Stats(); s.Published != 2 {
		t.Errorf("stats %+v: both publishes should be acknowledged", s)
	}
}

func TestEmitterFlushWaitsForEveryEvent(t *testing.T) {
	_, _, js := newJetStream(t)
	st := ensureStream(t, js)
	em := newStreamEmitter(t, js, 256)
	const n = 200
	ids := make([]string, n)
	for i := range n {
		ev := newEvent(t, event.ReplStatusWritten, i)
		ids[i] = ev.ID
		em.Emit(ev)
	}
	if err := em.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if s := em.Stats(); s.Published != n || s.Queued != 0 || s.Dropped != 0 {
		t.Fatalf("stats after flush %+v", s)
	}
	if got := streamMsgs(t, st); got != n {
		t.Fatalf("stream has %d messages, want %d", got, n)
	}
	for i, id := range ids { // in emission order
		raw, err := st.GetMsg(testCtx(t), uint64(i+1))
		if err != nil || raw.Header.Get(jetstream.MsgIDHeader) != id {
			t.Fatalf("message %d: %v, want id %s", i+1, err, id)
		}
	}
}

func TestEmitterDropsWhenTheQueueStaysFull(t *testing.T) {
	fp := newFakePublisher()
	em := NewEmitter(fp, testLog(t), 1, WithEnqueueWait(10*time.Millisecond))
	t.Cleanup(func() { _ = em.Close(testCtx(t)) })

	first, second, third := newEvent(t, event.NodeStarted, 1), newEvent(t, event.NodeStarted, 2), newEvent(t, event.NodeStarted, 3)
	em.Emit(first)
	waitFor(t, "worker to hold the first event", func() bool { return fp.calls() == 1 })
	em.Emit(second) // fills the queue of 1
	start := time.Now()
	em.Emit(third)
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("Emit on a full queue took %v", took)
	}
	if s := em.Stats(); s.Dropped != 1 || s.Queued != 1 {
		t.Fatalf("stats %+v, want one dropped, one queued", s)
	}
	fp.release()
	if err := em.Flush(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if got, want := fp.ids(), []string{first.ID, second.ID}; !reflect.DeepEqual(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
}

func TestEmitterCountsInvalidEvents(t *testing.T) {
	fp := newFakePublisher()
	fp.release()
	em := NewEmitter(fp, testLog(t), 4)
	em.Emit(event.Envelope{ID: "x"})
	if err := em.Close(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if s := em.Stats(); s != (EmitterStats{Invalid: 1}) || fp.calls() != 0 {
		t.Errorf("stats %+v, %d publishes", s, fp.calls())
	}
}

func TestEmitterDropsOnPermanentError(t *testing.T) {
	fp := newFakePublisher()
	fp.release()
	bad, good := newEvent(t, event.NodeStarted, 1), newEvent(t, event.NodeStarted, 2)
	fp.failWith(bad.ID, fmt.Errorf("%w: refused", ErrPermanent))
	em := NewEmitter(fp, testLog(t), 4)
	t.Cleanup(func() { _ = em.Close(testCtx(t)) })
	em.Emit(bad)
	em.Emit(good)
	if err := em.Flush(testCtx(t)); !errors.Is(err, ErrDropped) {
		t.Fatalf("flush: %v, want ErrDropped", err)
	}
	if s := em.Stats(); s.Published != 1 || s.Dropped != 1 || s.Retried != 0 {
		t.Errorf("stats %+v", s)
	}
	em.Emit(newEvent(t, event.NodeStarted, 3))
	if err := em.Flush(testCtx(t)); err != nil {
		t.Errorf("flush of later events: %v", err)
	}
}

func TestEmitterRetriesUntilCloseGivesUp(t *testing.T) {
	fp := newFakePublisher()
	fp.release()
	fp.failWith("", errors.New("no responders")) // every event, transient
	em := NewEmitter(fp, testLog(t), 4, WithRetryBackoff(time.Millisecond, 5*time.Millisecond))
	for i := range 3 {
		em.Emit(newEvent(t, event.NodeStarted, i))
	}
	waitFor(t, "retries", func() bool { return em.Stats().Retried >= 3 })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := em.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close: %v, want deadline exceeded", err)
	}
	em.Emit(newEvent(t, event.NodeStarted, 4))
	if s := em.Stats(); s.Dropped != 4 || s.Published != 0 || s.Queued != 0 {
		t.Errorf("stats %+v, want 4 dropped", s)
	}
	if err := em.Flush(testCtx(t)); !errors.Is(err, ErrDropped) {
		t.Errorf("flush after close: %v, want the drops reported", err)
	}
	if err := em.Flush(testCtx(t)); err != nil {
		t.Errorf("second flush after close: %v, want nil (drops reported once)", err)
	}
	if err := em.Close(testCtx(t)); err != nil {
		t.Errorf("second close: %v", err)
	}
	for _, id := range fp.ids() {
		if id != fp.ids()[0] {
			t.Fatalf("worker moved past an unacknowledged event: %v", fp.ids())
		}
	}
}

func newStreamEmitter(t *testing.T, js jetstream.JetStream, queue int) *Emitter {
	t.Helper()
	pub, err := NewPublisher(js, PublisherConfig{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	em := NewEmitter(pub, testLog(t), queue)
	t.Cleanup(func() {
		if err := em.Close(testCtx(t)); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return em
}

// fakePublisher blocks every Publish until release, then records it or
// fails it as told.
type fakePublisher struct {
	gate chan struct{}

	mu    sync.Mutex // guards the fields below
	n     int
	seen  []string
	fails map[string]error // by message id; "" fails every message
}

var _ message.Publisher = (*fakePublisher)(nil)

func newFakePublisher() *fakePublisher {
	return &fakePublisher{gate: make(chan struct{}), fails: map[string]error{}}
}

func (f *fakePublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		f.mu.Lock()
		f.n++
		f.mu.Unlock()
		select {
		case <-f.gate:
		case <-m.Context().Done():
			return m.Context().Err()
		}
		f.mu.Lock()
		f.seen = append(f.seen, m.UUID)
		err, ok := f.fails[m.UUID]
		if !ok {
			err = f.fails[""]
		}
		f.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

func (f *fakePublisher) Close() error { return nil }

func (f *fakePublisher) release() { close(f.gate) }

func (f *fakePublisher) failWith(id string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails[id] = err
}

func (f *fakePublisher) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

func (f *fakePublisher) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

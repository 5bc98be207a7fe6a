package bus

import (
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func TestEventStreamConfig(t *testing.T) {
	c := EventStreamConfig(testPair, testNode, 0, 0)
	switch {
	case c.Name != subject.EventStream(testPair, testNode):
		t.Errorf("name %q", c.Name)
	case !slices.Equal(c.Subjects, []string{subject.EventsOf(testPair, testNode)}):
		t.Errorf("subjects %q", c.Subjects)
	case c.Storage != jetstream.FileStorage || !c.DenyDelete || !c.DenyPurge || c.AllowRollup:
		t.Errorf("storage %v, deny delete %v, deny purge %v, rollup %v", c.Storage, c.DenyDelete, c.DenyPurge, c.AllowRollup)
	case c.MaxAge != 90*24*time.Hour || c.MaxBytes != -1 || c.Duplicates != 2*time.Minute:
		t.Errorf("max age %v, max bytes %d, duplicates %v", c.MaxAge, c.MaxBytes, c.Duplicates)
	}
	if c := EventStreamConfig(testPair, testNode, time.Hour, 1<<20); c.MaxAge != time.Hour || c.MaxBytes != 1<<20 {
		t.Errorf("explicit limits: max age %v, max bytes %d", c.MaxAge, c.MaxBytes)
	}
}

func TestEnsureEventStreamIsIdempotent(t *testing.T) {
	_, _, js := newJetStream(t)
	ctx := testCtx(t)
	ensureStream(t, js)
	st, err := EnsureEventStream(ctx, js, testPair, testNode, time.Hour, 1<<20)
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.Config; c.MaxAge != time.Hour || c.MaxBytes != 1<<20 || !c.DenyDelete || !c.DenyPurge {
		t.Errorf("updated config: max age %v, max bytes %d, deny %v/%v", c.MaxAge, c.MaxBytes, c.DenyDelete, c.DenyPurge)
	}
	if _, err := EnsureEventStream(ctx, js, testPair, testNode, time.Hour, 1<<20); err != nil {
		t.Errorf("same config again: %v", err)
	}
	for _, bad := range []struct {
		pair, node string
		age        time.Duration
		bytes      int64
	}{{"P", "a", 0, 0}, {"p1", "", 0, 0}, {"p1", "a", -time.Second, 0}, {"p1", "a", 0, -2}} {
		if _, err := EnsureEventStream(ctx, js, bad.pair, bad.node, bad.age, bad.bytes); err == nil {
			t.Errorf("EnsureEventStream(%+v) accepted", bad)
		}
	}
}

func TestEventStreamRefusesDeleteAndPurge(t *testing.T) {
	_, _, js := newJetStream(t)
	ctx := testCtx(t)
	st := ensureStream(t, js)
	pub, err := NewPublisher(js, PublisherConfig{}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	ev := newEvent(t, event.NodeStarted, 1)
	b, _ := ev.Encode()
	if err := pub.Publish(ev.Subject(), message.NewMessage(ev.ID, b)); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMsg(ctx, 1); err == nil {
		t.Error("delete accepted")
	}
	if err := st.SecureDeleteMsg(ctx, 1); err == nil {
		t.Error("secure delete accepted")
	}
	if err := st.Purge(ctx); err == nil {
		t.Error("purge accepted")
	}
	if err := st.Purge(ctx, jetstream.WithPurgeSubject(ev.Subject())); err == nil {
		t.Error("purge of a subject accepted")
	}
	lift := EventStreamConfig(testPair, testNode, 0, 0)
	lift.DenyDelete, lift.DenyPurge = false, false
	if _, err := js.UpdateStream(ctx, lift); err == nil {
		t.Error("update lifting deny delete/purge accepted")
	}
	if n := streamMsgs(t, st); n != 1 {
		t.Errorf("stream has %d messages, want 1", n)
	}
}

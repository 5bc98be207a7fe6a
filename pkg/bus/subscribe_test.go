package bus

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

func TestSubscribeAll(t *testing.T) {
	_, nc, _ := newJetStream(t)
	got := make(chan string, 2)
	h := func(m *nats.Msg) { got <- m.Subject }
	subs, err := SubscribeAll(nc, map[string]nats.MsgHandler{"a.x": h, "a.y": h}, Limits{Msgs: 10, Bytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a.x", "a.y"} {
		if err := nc.Publish(s, nil); err != nil {
			t.Fatal(err)
		}
		select {
		case subj := <-got:
			if subj != s {
				t.Fatalf("got %s, want %s", subj, s)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no message on %s", s)
		}
	}
	if m, b, _ := subs[0].PendingLimits(); m != 10 || b != 1<<20 {
		t.Fatalf("pending limits %d/%d", m, b)
	}
	subs.Unsubscribe()
	for _, s := range subs {
		if s.IsValid() {
			t.Fatal("a subscription is still valid after Unsubscribe")
		}
	}
	// A bad subject fails the whole call and leaves nothing subscribed.
	if _, err := SubscribeAll(nc, map[string]nats.MsgHandler{"ok.subject": h, "bad subject": h}, Limits{Msgs: 1, Bytes: 1}); err == nil {
		t.Fatal("a bad subject was accepted")
	}
	if n := nc.NumSubscriptions(); n != 0 {
		t.Fatalf("%d subscriptions left after a failed SubscribeAll", n)
	}
}

package notifier_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/notifier"
)

// forge stores raw event e, with epoch, in node's stream, past the
// emitter's validation: what a key allowed to publish events could do.
func (w *world) forge(node string, e event.Envelope, epoch uint64) {
	w.t.Helper()
	e.Epoch = epoch
	b, err := json.Marshal(e)
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if _, err := w.nodes[node].js.Publish(ctx, e.Subject(), b); err != nil {
		w.t.Fatal(err)
	}
}

// An activation in epoch 2⁶⁴−1, or one not made by the node's monitor, is
// refused and counted; the next real activation is notified (issue 12 §4).
func TestImplausibleActivationsRefused(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	w.activate("a", 2, false)
	w.waitEpoch("a", 2)
	before := metric(t, a, "tandem_notifier_rejected_total")

	wrap, err := event.New(pairName, "a", "monitor", event.NodeActivated, 1, time.Now(), map[string]any{"reason": "forged"})
	if err != nil {
		t.Fatal(err)
	}
	w.forge("a", wrap, 1<<64-1)
	jump, _ := event.New(pairName, "a", "monitor", event.NodeActivated, 1, time.Now(), map[string]any{"reason": "forged"})
	w.forge("a", jump, 2+event.MaxEpochJump+1)
	notMonitor, _ := event.New(pairName, "a", "notifier", event.NodeActivated, 1, time.Now(), map[string]any{"reason": "forged"})
	w.forge("a", notMonitor, 3)
	waitFor(t, "three forged activations refused", func() bool { return metric(t, a, "tandem_notifier_rejected_total") >= before+3 })
	if n, _ := a.svc.Current(); n.Epoch != 2 {
		t.Fatalf("a forged activation was taken: epoch %d", n.Epoch)
	}
	w.activate("a", 3, false)
	w.waitEpoch("a", 3)
}

// An activation reaches the notifier twice: as the monitor publishes it
// (the quick path) and through the durable consumer of the node's event
// stream. It is notified once, and the second arrival is not a stale
// activation.
func TestActivationNotifiedOnce(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	w.activate("a", 2, false)
	w.waitEpoch("a", 2)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	stream, err := a.js.Stream(ctx, subject.EventStream(pairName, "a"))
	if err != nil {
		t.Fatal(err)
	}
	last := stream.CachedInfo().State.LastSeq
	waitFor(t, "the consumer handled the activation", func() bool {
		c, err := stream.Consumer(ctx, notifier.ConsumerName("a"))
		return err == nil && c.CachedInfo().AckFloor.Stream >= last
	})
	if n := metric(t, a, "tandem_notifier_notifications_total"); n != 1 {
		t.Fatalf("%v notifications for one activation, want 1", n)
	}
	if n := metric(t, a, "tandem_notifier_stale_activations_total"); n != 0 {
		t.Fatalf("%v stale activations counted for one activation, want 0", n)
	}
}

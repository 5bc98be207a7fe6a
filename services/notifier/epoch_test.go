package notifier_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
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

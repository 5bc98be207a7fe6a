package notifier_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/notifier"
)

// Durable consumers on the state bucket, and push consumers delivering
// outside an inbox (what the shared session key could make, issue 12 §5),
// are removed and counted; a session's watch stays.
func TestStateBucketJanitor(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", func(o *notifier.Options) { o.JanitorInterval = 50 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	stream := "KV_" + subject.StateBucket
	kv, err := a.js.KeyValue(ctx, subject.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	watch, err := kv.Watch(ctx, pairName)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Stop() //nolint:errcheck
	before := metric(t, a, "tandem_input_rejected_total")
	filter := "$KV." + subject.StateBucket + "." + pairName
	if _, err := a.js.CreateConsumer(ctx, stream, jetstream.ConsumerConfig{Durable: "hoard", FilterSubject: filter}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.js.CreateOrUpdatePushConsumer(ctx, stream, jetstream.ConsumerConfig{Name: "redirect", FilterSubject: filter,
		DeliverSubject: subject.Control(pairName, "a")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the durable and the redirecting consumer removed", func() bool {
		_, e1 := a.js.Consumer(ctx, stream, "hoard")
		_, e2 := a.js.Consumer(ctx, stream, "redirect")
		return e1 != nil && e2 != nil
	})
	// Each removal is counted just after it is made: wait for the count too.
	waitFor(t, "both removals counted as rejected input", func() bool {
		return metric(t, a, "tandem_input_rejected_total") >= before+2
	})
	st, err := a.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if n := st.CachedInfo().State.Consumers; n < 1 {
		t.Fatalf("%d consumers left: the session's watch was removed too", n)
	}
}

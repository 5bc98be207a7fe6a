package main

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// An event stream whose retention is shrunk behind the node's back (what
// the notifier's key could do before issue 12) is restored by the node and
// reported as a critical tandem.audit.changed event.
func TestNodeRestoresChangedEventStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := startMaster(ctx, t, func(c *config.Config) { c.Hosts = map[string]string{"a": "print-a", "b": "print-b"} })
	nc, err := n.Server().Connect("attacker")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, n.Server().Domain())
	if err != nil {
		t.Fatal(err)
	}
	cfg := bus.EventStreamConfig("p", "a", time.Second, 0)
	cfg.Duplicates = time.Second
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := js.Stream(ctx, subject.EventStream("p", "a"))
		if err != nil {
			t.Fatal(err)
		}
		_, merr := st.GetLastMsgForSubject(ctx, subject.Event("p", "a", event.AuditChanged))
		if st.CachedInfo().Config.MaxAge == config.Default().Audit.MaxAge && merr == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restored: max_age %v, audit.changed event: %v", st.CachedInfo().Config.MaxAge, merr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

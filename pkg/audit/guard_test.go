package audit_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// A stream's retention shrunk (the notifier-key attack of issue 12) and a
// mirror deleted are found by Drift and put back by Restore.
func TestDriftFoundAndRestored(t *testing.T) {
	_, nodes := setup(t)
	a := nodes["a"]
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if got, err := audit.Drift(ctx, a.js, pairName, "a", "b", audit.Retention{}); err != nil || len(got) != 0 {
		t.Fatalf("fresh streams drift: %v %v", got, err)
	}
	cfg := audit.OriginConfig(pairName, "a", audit.Retention{MaxAge: time.Second})
	cfg.Duplicates = time.Second
	if _, err := a.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// Full rights (this in-process connection) can delete a mirror:
	// deny_delete protects messages, not the stream.
	if err := a.js.DeleteStream(ctx, subject.EventStream(pairName, "b")); err != nil {
		t.Fatal(err)
	}
	got, err := audit.Drift(ctx, a.js, pairName, "a", "b", audit.Retention{})
	if err != nil {
		t.Fatal(err)
	}
	joined := strings.Join(got, "\n")
	if !strings.Contains(joined, "tandem_events_p_a: max_age is 1s") || !strings.Contains(joined, "tandem_events_p_b: deleted") {
		t.Fatalf("drift: %v", got)
	}
	if err := audit.Restore(ctx, a.js, pairName, "a", "b", audit.Retention{}); err != nil {
		t.Fatal(err)
	}
	if got, err := audit.Drift(ctx, a.js, pairName, "a", "b", audit.Retention{}); err != nil || len(got) != 0 {
		t.Fatalf("after restore: %v %v", got, err)
	}
}

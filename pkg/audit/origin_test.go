package audit_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func TestOriginConfig(t *testing.T) {
	c := audit.OriginConfig(pairName, "a", audit.Retention{})
	switch {
	case c.Name != subject.EventStream(pairName, "a"):
		t.Errorf("name %q", c.Name)
	case !slices.Equal(c.Subjects, []string{subject.EventsOf(pairName, "a")}):
		t.Errorf("subjects %q", c.Subjects)
	case c.Storage != jetstream.FileStorage || !c.DenyDelete || !c.DenyPurge || c.AllowRollup:
		t.Errorf("storage %v, deny delete %v, deny purge %v, rollup %v", c.Storage, c.DenyDelete, c.DenyPurge, c.AllowRollup)
	case c.MaxAge != 90*24*time.Hour || c.MaxBytes != -1 || c.Duplicates != 2*time.Minute:
		t.Errorf("max age %v, max bytes %d, duplicates %v", c.MaxAge, c.MaxBytes, c.Duplicates)
	}
	if c := audit.OriginConfig(pairName, "a", audit.Retention{MaxAge: time.Hour, MaxBytes: 1 << 20}); c.MaxAge != time.Hour || c.MaxBytes != 1<<20 {
		t.Errorf("explicit limits: max age %v, max bytes %d", c.MaxAge, c.MaxBytes)
	}
}

func TestEnsureOriginStreamIsIdempotent(t *testing.T) {
	_, nodes := setup(t)
	js := nodes["a"].js
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	r := audit.Retention{MaxAge: time.Hour, MaxBytes: 1 << 20}
	st, err := audit.EnsureOriginStream(ctx, js, pairName, "a", r)
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
	if _, err := audit.EnsureOriginStream(ctx, js, pairName, "a", r); err != nil {
		t.Errorf("same config again: %v", err)
	}
	for _, bad := range [][2]string{{"P", "a"}, {"p1", ""}, {"p1", "a.b"}} {
		if _, err := audit.EnsureOriginStream(ctx, js, bad[0], bad[1], r); err == nil {
			t.Errorf("EnsureOriginStream(%q, %q) accepted", bad[0], bad[1])
		}
	}
}

func TestOriginRefusesDeleteAndPurge(t *testing.T) {
	_, nodes := setup(t)
	a := nodes["a"]
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	st, err := a.js.Stream(ctx, subject.EventStream(pairName, "a"))
	if err != nil {
		t.Fatal(err)
	}
	ev := a.emit(t, event.NodeStarted, 1, time.Now())[0]
	waitCount(t, a, 1)
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
	lift := audit.OriginConfig(pairName, "a", audit.Retention{})
	lift.DenyDelete, lift.DenyPurge = false, false
	if _, err := a.js.UpdateStream(ctx, lift); err == nil {
		t.Error("update lifting deny delete/purge accepted")
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := info.State.Msgs; n != 1 {
		t.Errorf("stream has %d messages, want 1", n)
	}
}

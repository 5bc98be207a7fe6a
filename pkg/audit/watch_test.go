package audit

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
)

// The guard's verdict over a sequence of checks: critical from the first
// change, naming every change, until restored and unchanged for the hold;
// a change during the hold starts it again; a failed restore and a failed
// check are shown.
func TestWatch(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := Watch{Hold: 10 * time.Second}
	state := func(s int) api.AuditState { return w.State("a", at(s)) }
	if st := state(0); st.Status != api.AuditUnchecked {
		t.Fatalf("before any check: %+v", st)
	}
	w.Observe(at(0), nil, nil, nil)
	if st := state(1); st.Status != api.AuditOK || st.Checked == nil || !st.Checked.Equal(at(0)) {
		t.Fatalf("clean: %+v", st)
	}
	w.Observe(at(2), []string{"s: max_age is 1s, want 90d"}, nil, errors.New("jetstream unavailable"))
	st := state(2)
	if st.Status != api.AuditCritical || st.Restored || st.RestoreError != "jetstream unavailable" || !st.Since.Equal(at(2)) || st.ClearsAt != nil {
		t.Fatalf("changed, restore failed: %+v", st)
	}
	w.Observe(at(4), []string{"s: max_age is 1s, want 90d", "m: deleted"}, nil, nil)
	st = state(4)
	if st.Status != api.AuditCritical || !st.Restored || !slices.Equal(st.Changes, []string{"s: max_age is 1s, want 90d", "m: deleted"}) || !st.Since.Equal(at(2)) {
		t.Fatalf("changed again, restored: %+v", st)
	}
	w.Observe(at(6), nil, nil, nil)
	st = state(15)
	if st.Status != api.AuditCritical || st.ClearsAt == nil || !st.ClearsAt.Equal(at(16)) || !st.Restored {
		t.Fatalf("restored, within the hold: %+v", st)
	}
	w.Observe(at(8), nil, errors.New("timeout"), nil)
	if st := state(8); st.CheckError != "timeout" || st.Status != api.AuditCritical {
		t.Fatalf("a failed check: %+v", st)
	}
	w.Observe(at(12), []string{"m: deleted"}, nil, nil) // changed again during the hold
	if st := state(21); st.Status != api.AuditCritical || st.ClearsAt != nil || !st.Since.Equal(at(2)) {
		t.Fatalf("changed during the hold: %+v", st)
	}
	w.Observe(at(14), nil, nil, nil)
	if st := state(23); st.Status != api.AuditCritical {
		t.Fatalf("hold restarted at 14 s, asked at 23 s: %+v", st)
	}
	if st := state(24); st.Status != api.AuditOK || st.Changes != nil || st.CheckError != "" {
		t.Fatalf("hold over: %+v", st)
	}
	w.Observe(at(30), []string{"s: deleted"}, nil, nil) // a new incident
	if st := state(30); st.Status != api.AuditCritical || !st.Since.Equal(at(30)) || !slices.Equal(st.Changes, []string{"s: deleted"}) {
		t.Fatalf("a new incident: %+v", st)
	}
}

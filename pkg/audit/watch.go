package audit

// Watch is the audit guard's verdict over time (SPEC §7 A3: a change made
// anyway is reported as critical). It is a pure state machine: the guard
// feeds it each check's outcome with the time of the check, and asks for
// the state at the time of the question. It keeps no clock and does no I/O.
//
// A check that finds a difference opens an incident: critical, with every
// difference found since, until the configuration has been restored and
// found as it must be by every check for Hold. A change during the hold
// starts it again, so a stream that someone keeps changing stays critical.
// A check that fails (JetStream unreachable) changes nothing but is shown.

import (
	"slices"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
)

// DefaultHold is how long the audit streams must stay as restored before a
// node reports them ok again: long enough for a monitoring system that
// polls every few minutes to see the incident.
const DefaultHold = 15 * time.Minute

// Watch holds the guard's verdict; the zero value is unchecked.
type Watch struct {
	// Hold is how long a restored configuration must stay right;
	// DefaultHold when 0.
	Hold time.Duration

	checked    time.Time
	checkErr   string
	changes    []string // of the open incident; nil when none
	since      time.Time
	clean      time.Time // first clean check since the last change; zero while changed
	restoreErr string
}

// Observe records a check at now: the differences found (none when the
// streams are as they must be), or checkErr when they could not be read,
// and the outcome of the restore made after a difference.
func (w *Watch) Observe(now time.Time, drift []string, checkErr, restoreErr error) {
	w.settle(now)
	if checkErr != nil {
		w.checkErr = checkErr.Error()
		return
	}
	w.checked, w.checkErr = now, ""
	if len(drift) == 0 {
		if w.changes != nil && w.clean.IsZero() {
			w.clean = now
		}
		return
	}
	if w.changes == nil {
		w.since = now
		w.changes = []string{}
	}
	for _, d := range drift {
		if !slices.Contains(w.changes, d) {
			w.changes = append(w.changes, d)
		}
	}
	w.clean = time.Time{}
	w.restoreErr = ""
	if restoreErr != nil {
		w.restoreErr = restoreErr.Error()
	}
}

func (w *Watch) hold() time.Duration {
	if w.Hold > 0 {
		return w.Hold
	}
	return DefaultHold
}

// State is the verdict at now, for node.
func (w *Watch) State(node string, now time.Time) api.AuditState {
	s := api.AuditState{Node: node, Status: api.AuditOK, CheckError: w.checkErr}
	if w.checked.IsZero() {
		s.Status = api.AuditUnchecked
		return s
	}
	checked := w.checked
	s.Checked = &checked
	if w.changes == nil {
		return s
	}
	if !w.clean.IsZero() && !now.Before(w.clean.Add(w.hold())) {
		return s
	}
	since := w.since
	s.Status, s.Changes, s.Since = api.AuditCritical, slices.Clone(w.changes), &since
	s.Restored, s.RestoreError = !w.clean.IsZero() || w.restoreErr == "", w.restoreErr
	if !w.clean.IsZero() {
		clears := w.clean.Add(w.hold())
		s.ClearsAt = &clears
	}
	return s
}

// settle closes an incident whose hold has passed, so that the next change
// starts a new one with its own Since.
func (w *Watch) settle(now time.Time) {
	if w.changes != nil && !w.clean.IsZero() && !now.Before(w.clean.Add(w.hold())) {
		w.changes, w.since, w.clean, w.restoreErr = nil, time.Time{}, time.Time{}, ""
	}
}

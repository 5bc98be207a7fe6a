// Package grace is the license decision of one node (SPEC §6 L4, L5) as pure
// functions of (licenses, last proof of contact, persisted high-water mark,
// now): no clock, no I/O. The service's driver feeds it the time, persists
// the State it returns, and publishes an event for every Level change
// (Transition).
//
// # The grace clock
//
// On the standby, licenses stay valid for Grace after the last proof of
// contact with the master. Time since contact is measured on the standby's
// own clock, which can be set back to cheat; HighWater is the latest reading
// of that clock ever seen. When a reading is behind HighWater, the clock was
// set back by the difference: Observe moves Contact back by the same amount
// (and HighWater down to the new reading), so the time already counted
// stays counted and the count goes on from the new reading. Time the node
// spends stopped counts, since Contact is persisted (a restart resets
// nothing); only a clock set back while the node was stopped hides the
// stopped time, never time that was counted before.
//
// Warnings come when 7, 3 and 1 days are left; at 0 the licenses are invalid
// until the next proof of contact.
package grace

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/license"
)

// Level is the grace state of a node.
type Level int

// Levels, in the order they are reached without contact.
const (
	Valid   Level = iota
	Warn7         // at most 7 days left
	Warn3         // at most 3 days left
	Warn1         // at most 1 day left
	Invalid       // no time left
)

func (l Level) String() string {
	switch l {
	case Valid:
		return "valid"
	case Warn7, Warn3, Warn1:
		return fmt.Sprintf("warning (%d days left)", l.DaysLeft())
	case Invalid:
		return "invalid"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// DaysLeft is the warning threshold of a warning level (7, 3, 1), else 0.
func (l Level) DaysLeft() int {
	switch l {
	case Warn7:
		return 7
	case Warn3:
		return 3
	case Warn1:
		return 1
	}
	return 0
}

const day = 24 * time.Hour

// levelFor is the level with left time remaining.
func levelFor(left time.Duration) Level {
	switch {
	case left <= 0:
		return Invalid
	case left <= 1*day:
		return Warn1
	case left <= 3*day:
		return Warn3
	case left <= 7*day:
		return Warn7
	}
	return Valid
}

// State is what a node persists.
type State struct {
	// Contact is the last proof of contact with the master, on this node's
	// clock (moved back with every clock set back; see the package doc);
	// zero when there is none: no grace until the next contact.
	Contact time.Time `json:"contact"`
	// HighWater is the latest reading of this node's clock seen, or the
	// latest trusted timestamp seen elsewhere (Floor).
	HighWater time.Time `json:"high_water"`
	// Skew is how far the clock was found set back in all: license time
	// checks use now + Skew, so setting the clock back revives nothing.
	Skew time.Duration `json:"skew,omitempty"`
}

// Start is the state of a node in contact with the master now.
func Start(now time.Time) State { return State{Contact: now, HighWater: now} }

// Observe accounts for a reading of the clock: it returns the state with
// HighWater at now and, if the clock was set back, how far (Contact moved
// back and Skew raised by as much).
func Observe(s State, now time.Time) (State, time.Duration) {
	if s.HighWater.IsZero() {
		s.HighWater = now
	}
	var back time.Duration
	if now.Before(s.HighWater) {
		back = s.HighWater.Sub(now)
		if !s.Contact.IsZero() {
			s.Contact = s.Contact.Add(-back)
		}
		s.Skew += back
	}
	s.HighWater = now
	return s, back
}

// Floor raises HighWater to t, a timestamp this node has seen that it can
// trust (a signed answer of the master, the last message of its own event
// stream): a clock found behind it was set back.
func Floor(s State, t time.Time) State {
	if t.After(s.HighWater) {
		s.HighWater = t
	}
	return s
}

// Contacted records a fresh, verified proof of contact: the master's
// answer, signed at masterTime on its clock, received at now. Contact is
// the earlier of the two, so a master clock ahead gives nothing extra.
func Contacted(s State, now, masterTime time.Time) State {
	s, _ = Observe(s, now)
	s.Contact = now
	if masterTime.Before(now) {
		s.Contact = masterTime
	}
	return s
}

// Input is everything a node's license decision depends on.
type Input struct {
	Master    bool              // the master has no grace clock
	Licenses  []license.Payload // verified signatures, in any order
	State     State             // the standby's grace state
	Now       time.Time
	Grace     time.Duration // license.grace
	Tolerance time.Duration // how far in the future a license may be issued
}

// Entry is one license and whether it is valid now.
type Entry struct {
	license.Payload
	Err error // nil when valid
}

// Status is a node's license decision.
type Status struct {
	Master     bool
	Level      Level
	Left       time.Duration // standby: grace left (0 once invalid)
	Contact    time.Time     // standby: last proof of contact
	Grace      time.Duration
	RolledBack time.Duration // how far the clock was found set back by this evaluation
	Licenses   []Entry       // sorted by id
	ValidOnes  int
	NoContact  bool // standby: no proof of contact at all (state missing or not trusted)
}

// Evaluate observes now and decides. It returns the state to persist.
// Licenses are checked at now plus the clock's known set-back (Skew).
func Evaluate(in Input) (State, Status) {
	st := Status{Master: in.Master, Grace: in.Grace}
	s, back := Observe(in.State, in.Now)
	st.RolledBack = back
	if !in.Master {
		st.NoContact = s.Contact.IsZero()
		if !st.NoContact {
			st.Left = max(in.Grace-in.Now.Sub(s.Contact), 0)
		}
		st.Level = levelFor(st.Left)
		st.Contact = s.Contact
	}
	now := in.Now.Add(s.Skew)
	for _, p := range in.Licenses {
		e := Entry{Payload: p, Err: p.CheckTime(now, in.Tolerance)}
		if e.Err == nil {
			st.ValidOnes++
		}
		st.Licenses = append(st.Licenses, e)
	}
	sort.Slice(st.Licenses, func(i, j int) bool { return st.Licenses[i].ID < st.Licenses[j].ID })
	return s, st
}

// Licensed reports whether any license is usable on this node.
func (st Status) Licensed() bool { return st.ValidOnes > 0 && st.Level != Invalid }

// Reason explains the node's state in one sentence.
func (st Status) Reason() string {
	switch {
	case st.NoContact:
		return "no proof of contact with the master yet (the license state is new, missing or not trusted): " +
			"licenses are invalid on this standby until the master answers its challenge"
	case st.Level == Invalid:
		return fmt.Sprintf("no contact with the master since %s, longer than the grace of %v",
			st.Contact.UTC().Format(time.RFC3339), st.Grace)
	case len(st.Licenses) == 0:
		return "no license on this node"
	case st.ValidOnes == 0:
		return "no license is valid now: " + st.Licenses[0].Err.Error()
	case st.Master:
		return fmt.Sprintf("%d valid license(s) on the master", st.ValidOnes)
	case st.Level != Valid:
		return fmt.Sprintf("no contact with the master for %v: %v of grace left", roughly(st.Grace-st.Left), roughly(st.Left))
	}
	return fmt.Sprintf("%d valid license(s), in contact with the master", st.ValidOnes)
}

// Check answers whether feature is licensed on this node (L5): the id of
// the license that grants it, or why not.
func (st Status) Check(feature string) (ok bool, id, reason string) {
	if st.Level == Invalid {
		return false, "", st.Reason()
	}
	var expired []string
	for _, e := range st.Licenses {
		if !e.Has(feature) {
			continue
		}
		if e.Err == nil {
			r := fmt.Sprintf("granted by license %s (%s), valid until the end of %s", e.ID, e.Customer, e.Expires)
			if !st.Master && st.Level != Valid {
				r += fmt.Sprintf("; %v of grace left without contact with the master", roughly(st.Left))
			}
			return true, e.ID, r
		}
		expired = append(expired, fmt.Sprintf("license %s: %v", e.ID, e.Err))
	}
	switch {
	case len(expired) > 0:
		return false, "", fmt.Sprintf("feature %q is granted only by licenses that are not valid now (%s)", feature, strings.Join(expired, "; "))
	case len(st.Licenses) == 0:
		return false, "", "no license on this node"
	}
	var all []string
	for _, e := range st.Licenses {
		all = append(all, e.Features...)
	}
	slices.Sort(all)
	return false, "", fmt.Sprintf("no license grants feature %q (licensed features: %s)", feature, strings.Join(slices.Compact(all), ", "))
}

// Transition is the event type for a change of level, or "" when the
// change is not reported (no change).
func Transition(from, to Level) string {
	switch {
	case from == to:
		return ""
	case to == Invalid:
		return event.LicenseInvalid
	case to == Valid:
		return event.LicenseValid
	}
	// A warning level, reached from any other (more days left after a
	// longer license.grace is configured, too).
	return event.LicenseWarning
}

// roughly rounds d for people: to the minute from an hour up, else to
// the second (a short grace, as in a test, is not rounded away: 89 s is
// not "1m0s").
func roughly(d time.Duration) time.Duration {
	if d >= time.Hour {
		return d.Round(time.Minute)
	}
	return d.Round(time.Second)
}

// Package progress counts a pair's sessions and their acknowledgements of
// the current notification (SPEC N6). It is pure: the caller passes the
// time, and owns the Tracker (not safe for concurrent use).
package progress

import "time"

// MaxSessions bounds how many sessions a Tracker remembers.
const MaxSessions = 1 << 20

// Tracker remembers, per session, the newest epoch it acknowledged and how
// many connections it switched for it.
type Tracker struct {
	sessions map[string]ack
	epoch    uint64 // the current notification's epoch
	acked    int    // sessions at epoch or later
	switched int    // connections switched in acknowledgements of epoch

	start     time.Time // activation time of the current notification
	published time.Time // when this node published it; zero if another node did
	allAcked  time.Time // when the last known session acknowledged; zero while some have not
	reported  bool
}

type ack struct {
	epoch    uint64
	switched int
}

// New returns an empty Tracker.
func New() *Tracker { return &Tracker{sessions: map[string]ack{}} }

// Notified starts counting for a new notification of epoch, made on
// activation at start; published is when this node published it (zero if
// it did not: then nothing is reported).
func (t *Tracker) Notified(epoch uint64, start, published time.Time) {
	t.epoch, t.start, t.published = epoch, start, published
	t.acked, t.switched, t.allAcked, t.reported = 0, 0, time.Time{}, false
	// Sessions may acknowledge before this node learns of the notification
	// (it reached them first): they count, with what they switched.
	for _, a := range t.sessions {
		if a.epoch >= epoch {
			t.acked++
		}
		if a.epoch == epoch {
			t.switched += a.switched
		}
	}
	t.checkAll(published)
}

// Ack records that session is at epoch after switching n connections;
// false if the session is new and the Tracker is full.
func (t *Tracker) Ack(session string, epoch uint64, n int, now time.Time) bool {
	p, known := t.sessions[session]
	if !known && len(t.sessions) >= MaxSessions {
		return false
	}
	prev := p.epoch
	switch {
	case epoch > prev || !known:
		t.sessions[session] = ack{epoch: epoch, switched: n}
	default:
		epoch = prev // an older or repeated acknowledgement changes nothing
	}
	reached := t.epoch > 0 && epoch >= t.epoch && (!known || prev < t.epoch)
	if reached {
		t.acked++
	}
	if t.epoch > 0 && epoch == t.epoch && (!known || prev < t.epoch) {
		t.switched += n
	}
	switch {
	case t.epoch == 0:
	case t.acked < len(t.sessions):
		// A session this node had not heard of is behind: not all are.
		t.allAcked = time.Time{}
	case reached:
		// The last known session acknowledged now, also when this node
		// learnt of it after the others (a restarted notifier).
		t.allAcked = now
	}
	return true
}

// Each calls f with every session the Tracker knows, with the newest epoch
// it acknowledged and what it switched for it, in no order.
func (t *Tracker) Each(f func(session string, epoch uint64, switched int)) {
	for s, a := range t.sessions {
		f(s, a.epoch, a.switched)
	}
}

// Bye forgets session.
func (t *Tracker) Bye(session string, now time.Time) {
	p, known := t.sessions[session]
	if !known {
		return
	}
	delete(t.sessions, session)
	if t.epoch > 0 && p.epoch >= t.epoch {
		t.acked--
	}
	if t.epoch > 0 && p.epoch == t.epoch {
		t.switched -= p.switched
	}
	t.checkAll(now)
}

func (t *Tracker) checkAll(now time.Time) {
	if t.allAcked.IsZero() && t.epoch > 0 && t.acked >= len(t.sessions) && !now.IsZero() {
		t.allAcked = now
	}
}

// Progress is what a Tracker reports.
type Progress struct {
	Epoch        uint64
	Known        int
	Acknowledged int
	Switched     int
	Complete     bool
	// NotifiedMS and AllAckedMS are measured from the activation; -1 when
	// not (yet) known.
	NotifiedMS, AllAckedMS int64
}

// Progress returns the counts.
func (t *Tracker) Progress() Progress {
	p := Progress{Epoch: t.epoch, Known: len(t.sessions), Acknowledged: t.acked, Switched: t.switched,
		Complete: !t.allAcked.IsZero(), NotifiedMS: -1, AllAckedMS: -1}
	if !t.published.IsZero() {
		p.NotifiedMS = ms(t.published.Sub(t.start))
	}
	if !t.allAcked.IsZero() {
		p.AllAckedMS = ms(t.allAcked.Sub(t.start))
	}
	return p
}

// Report returns the progress to report as tandem.failover.notified, once
// per notification this node published: when every known session has
// acknowledged, but not before hold has passed since it was published (the
// caller may not know every session yet), or at deadline with what has
// come. ok is false otherwise.
func (t *Tracker) Report(now time.Time, hold, deadline time.Duration) (Progress, bool) {
	if t.reported || t.published.IsZero() {
		return Progress{}, false
	}
	if since := now.Sub(t.published); since < deadline && (t.allAcked.IsZero() || since < hold) {
		return Progress{}, false
	}
	t.reported = true
	return t.Progress(), true
}

func ms(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return d.Milliseconds()
}

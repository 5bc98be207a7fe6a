package progress

import (
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tr := New()
	tr.Ack("s1", 0, 0, t0)
	tr.Ack("s2", 0, 0, t0)
	tr.Notified(3, t0, t0.Add(10*time.Millisecond))
	if p := tr.Progress(); p.Known != 2 || p.Acknowledged != 0 || p.Complete || p.NotifiedMS != 10 {
		t.Fatalf("%+v", p)
	}
	if _, ok := tr.Report(t0.Add(time.Second), 0, time.Minute); ok {
		t.Fatal("reported before all acknowledged")
	}
	tr.Ack("s1", 3, 2, t0.Add(20*time.Millisecond))
	tr.Ack("s1", 3, 2, t0.Add(25*time.Millisecond)) // a re-acknowledgement counts once
	tr.Ack("s1", 2, 0, t0.Add(26*time.Millisecond)) // an older one does not go back
	if p := tr.Progress(); p.Acknowledged != 1 || p.Switched != 2 {
		t.Fatalf("%+v", p)
	}
	tr.Bye("s2", t0.Add(30*time.Millisecond))
	p, ok := tr.Report(t0.Add(31*time.Millisecond), 0, time.Minute)
	if !ok || !p.Complete || p.Known != 1 || p.Acknowledged != 1 || p.AllAckedMS != 30 {
		t.Fatalf("%+v %v", p, ok)
	}
	if _, ok := tr.Report(t0.Add(time.Hour), 0, time.Minute); ok {
		t.Fatal("reported twice")
	}
	// A notification another node published is counted but not reported;
	// one with missing sessions is reported at the deadline.
	tr.Ack("s3", 3, 0, t0)
	tr.Notified(5, t0, time.Time{})
	if _, ok := tr.Report(t0.Add(time.Hour), 0, time.Minute); ok {
		t.Fatal("reported a notification this node did not publish")
	}
	tr.Notified(7, t0, t0)
	tr.Ack("s1", 7, 1, t0)
	p, ok = tr.Report(t0.Add(time.Minute), 0, time.Minute)
	if !ok || p.Complete || p.Known != 2 || p.Acknowledged != 1 || p.AllAckedMS != -1 {
		t.Fatalf("deadline: %+v %v", p, ok)
	}
}

// A session's acknowledgement can reach this node before this node learns
// of the notification itself: it counts, with what it switched, once the
// notification arrives; a repeated acknowledgement counts once.
func TestAckBeforeNotified(t *testing.T) {
	now := time.Unix(100, 0)
	tr := New()
	tr.Notified(2, now, now)
	tr.Ack("s1", 2, 0, now)
	tr.Ack("s2", 2, 0, now)
	tr.Ack("s1", 3, 2, now) // early: this node still tracks epoch 2
	tr.Ack("s1", 3, 0, now) // the same session again, nothing left to switch
	tr.Notified(3, now, now)
	tr.Ack("s2", 3, 2, now)
	p := tr.Progress()
	if p.Epoch != 3 || p.Known != 2 || p.Acknowledged != 2 || p.Switched != 4 || !p.Complete {
		t.Fatalf("progress %+v, want 2 of 2 acknowledged with 4 switched", p)
	}
	tr.Bye("s2", now)
	if p := tr.Progress(); p.Known != 1 || p.Acknowledged != 1 || p.Switched != 2 {
		t.Fatalf("after bye: %+v", p)
	}
}

// A notifier that learns of sessions after the notification (restarted, it
// hears of them only through their acknowledgements) reports the time of
// the last acknowledgement, not of the first moment the few it knew were
// done; a session it hears of behind the epoch makes it incomplete again.
func TestAllAckedIsTheLastKnown(t *testing.T) {
	t0 := time.Unix(100, 0)
	tr := New()
	tr.Notified(4, t0, t0.Add(time.Millisecond)) // knows no session yet
	tr.Ack("s1", 4, 1, t0.Add(5*time.Millisecond))
	tr.Ack("s2", 4, 1, t0.Add(80*time.Millisecond))
	if p := tr.Progress(); !p.Complete || p.AllAckedMS != 80 {
		t.Fatalf("%+v, want all acknowledged at 80 ms", p)
	}
	tr.Ack("s3", 3, 0, t0.Add(90*time.Millisecond)) // a hello from behind
	if p := tr.Progress(); p.Complete || p.AllAckedMS != -1 || p.Known != 3 {
		t.Fatalf("%+v, want incomplete", p)
	}
	tr.Ack("s1", 4, 1, t0.Add(95*time.Millisecond)) // a repeat changes nothing
	tr.Ack("s3", 4, 1, t0.Add(120*time.Millisecond))
	if p := tr.Progress(); !p.Complete || p.AllAckedMS != 120 || p.Acknowledged != 3 || p.Switched != 3 {
		t.Fatalf("%+v, want all 3 acknowledged at 120 ms", p)
	}
}

// A hold delays the report of a complete notification until it has passed
// since the notification was published, and counts the sessions heard
// meanwhile; the deadline still ends the wait.
func TestReportHold(t *testing.T) {
	t0 := time.Unix(100, 0)
	tr := New()
	tr.Notified(2, t0, t0) // no session known: complete at once
	if p := tr.Progress(); !p.Complete {
		t.Fatalf("%+v", p)
	}
	if _, ok := tr.Report(t0.Add(time.Second), 5*time.Second, time.Minute); ok {
		t.Fatal("reported within the hold")
	}
	tr.Ack("s1", 2, 1, t0.Add(2*time.Second)) // a session that came back
	p, ok := tr.Report(t0.Add(5*time.Second), 5*time.Second, time.Minute)
	if !ok || !p.Complete || p.Known != 1 || p.Acknowledged != 1 || p.Switched != 1 {
		t.Fatalf("after the hold: %+v %v", p, ok)
	}
	tr.Notified(3, t0, t0)
	tr.Ack("s1", 3, 0, t0)
	if p, ok := tr.Report(t0.Add(time.Minute), time.Hour, time.Minute); !ok || !p.Complete {
		t.Fatalf("a hold beyond the deadline: %+v %v", p, ok)
	}
}

package grace

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/license"
)

var start = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

const grace28 = 28 * day

// standby is a standby's driver in miniature: a fake clock, what it
// persists as bytes (all that survives a restart), and the events it emits.
type standby struct {
	t       *testing.T
	clk     *clock.Fake
	elapsed time.Duration // true time since start; the clock may be set back
	disk    []byte
	events  []string
	status  Status
}

type persisted struct {
	State State `json:"state"`
	Level Level `json:"level"` // last level reported, so a restart does not report it again
}

func newStandby(t *testing.T) *standby {
	s := &standby{t: t, clk: clock.NewFake(start)}
	s.save(persisted{State: Start(start)})
	s.eval()
	return s
}

func (s *standby) load() persisted {
	var p persisted
	if err := json.Unmarshal(s.disk, &p); err != nil {
		s.t.Fatal(err)
	}
	return p
}

func (s *standby) save(p persisted) {
	b, err := json.Marshal(p)
	if err != nil {
		s.t.Fatal(err)
	}
	s.disk = b
}

var lic = license.Payload{V: 1, ID: "l1", Customer: "c", Product: "tandem", Features: []string{"audit"},
	Seats: 1, Issued: start, Expires: "2028-01-01"}

func (s *standby) eval() {
	p := s.load()
	st, status := Evaluate(Input{Licenses: []license.Payload{lic}, State: p.State, Now: s.clk.Now(),
		Grace: grace28, Tolerance: 5 * time.Minute})
	if typ := Transition(p.Level, status.Level); typ != "" {
		s.events = append(s.events, fmt.Sprintf("day %d %s %s", s.day(), strings.TrimPrefix(typ, "tandem.license."), status.Level))
	}
	s.save(persisted{State: st, Level: status.Level})
	s.status = status
}

func (s *standby) day() int { return int(s.elapsed / day) }

func (s *standby) advance(d time.Duration) {
	s.elapsed += d
	s.clk.Advance(d)
	s.eval()
}

// restart is a new process: nothing but the disk is kept.
func (s *standby) restart() {
	s.status = Status{}
	s.eval()
}

func (s *standby) contact() {
	p := s.load()
	p.State = Contacted(p.State, s.clk.Now(), s.clk.Now())
	s.save(p)
	s.eval()
}

// runDays advances day by day until the true day last, checking that the
// standby is licensed before day 28 and not from day 28 on.
func (s *standby) runDays(last int, at map[int]func()) {
	s.t.Helper()
	for s.day() < last {
		s.advance(day)
		if f := at[s.day()]; f != nil {
			f()
		}
		if want := s.day() < 28; s.status.Licensed() != want {
			s.t.Fatalf("day %d: licensed %v, want %v (%s, %v left)", s.day(), s.status.Licensed(), want, s.status.Level, s.status.Left)
		}
	}
}

var wantEvents = []string{
	"day 21 warning warning (7 days left)",
	"day 25 warning warning (3 days left)",
	"day 27 warning warning (1 days left)",
	"day 28 invalid invalid",
}

func TestGraceDays(t *testing.T) {
	s := newStandby(t)
	if !s.status.Licensed() {
		t.Fatalf("day 0: not licensed: %s", s.status.Reason())
	}
	s.runDays(30, nil)
	if !reflect.DeepEqual(s.events, wantEvents) {
		t.Fatalf("events\n%s\nwant\n%s", strings.Join(s.events, "\n"), strings.Join(wantEvents, "\n"))
	}
	if ok, _, why := s.status.Check("audit"); ok || !strings.Contains(why, "no contact with the master") {
		t.Fatalf("check after the grace: %v %q", ok, why)
	}
}

func TestRestartOnDay20KeepsTheCount(t *testing.T) {
	s := newStandby(t)
	s.runDays(30, map[int]func(){20: s.restart})
	if !reflect.DeepEqual(s.events, wantEvents) {
		t.Fatalf("events\n%s", strings.Join(s.events, "\n"))
	}
}

// A restart after a long stop counts the time stopped.
func TestStoppedTimeCounts(t *testing.T) {
	s := newStandby(t)
	s.runDays(10, nil)
	s.elapsed += 18 * day
	s.clk.Advance(18 * day)
	s.restart()
	if s.status.Level != Invalid {
		t.Fatalf("day 28 after a stop: %s", s.status.Level)
	}
}

func TestClockSetBackDoesNotExtend(t *testing.T) {
	s := newStandby(t)
	s.runDays(30, map[int]func(){26: func() {
		s.clk.Set(s.clk.Now().Add(-10 * day))
		s.eval()
		if s.status.RolledBack != 10*day {
			t.Fatalf("set back by %v detected, want 10 days", s.status.RolledBack)
		}
	}})
	if !reflect.DeepEqual(s.events, wantEvents) {
		t.Fatalf("events\n%s", strings.Join(s.events, "\n"))
	}
	// Also across a restart: set back while the node was stopped.
	s2 := newStandby(t)
	s2.runDays(26, nil)
	s2.clk.Set(s2.clk.Now().Add(-10 * day))
	s2.restart()
	s2.runDays(30, nil)
	if s2.status.Level != Invalid {
		t.Fatalf("set back during a stop: %s", s2.status.Level)
	}
}

func TestContactRestoresValidity(t *testing.T) {
	s := newStandby(t)
	s.runDays(30, nil)
	s.contact()
	if s.status.Level != Valid || !s.status.Licensed() || s.status.Left != grace28 {
		t.Fatalf("after contact: %s, %v left", s.status.Level, s.status.Left)
	}
	if last := s.events[len(s.events)-1]; last != "day 30 valid valid" {
		t.Fatalf("last event %q", last)
	}
	// Contact in the warning days restores validity too.
	s.advance(22 * day)
	s.contact()
	if s.status.Level != Valid {
		t.Fatalf("after contact in the warning days: %s", s.status.Level)
	}
}

func TestMasterHasNoGrace(t *testing.T) {
	_, st := Evaluate(Input{Master: true, Licenses: []license.Payload{lic}, Now: start.Add(400 * day), Grace: grace28})
	if !st.Licensed() || st.Level != Valid {
		t.Fatalf("master: %s %s", st.Level, st.Reason())
	}
}

func TestCheckReasons(t *testing.T) {
	old := lic
	old.ID, old.Features, old.Expires = "l0", []string{"audit", "old"}, "2026-11-30"
	_, st := Evaluate(Input{Master: true, Licenses: []license.Payload{lic, old}, Now: start.Add(40 * day), Grace: grace28})
	for feature, want := range map[string]string{
		"audit": "granted by license l1",
		"old":   "not valid now",
		"x":     `no license grants feature "x" (licensed features: audit, old)`,
	} {
		_, _, why := st.Check(feature)
		if !strings.Contains(why, want) {
			t.Errorf("%s: %q, want %q", feature, why, want)
		}
	}
	_, none := Evaluate(Input{Master: true, Now: start, Grace: grace28})
	if ok, _, why := none.Check("audit"); ok || why != "no license on this node" {
		t.Errorf("no licenses: %v %q", ok, why)
	}
}

// No proof of contact (a missing or untrusted state): no grace at all.
func TestNoContactNoGrace(t *testing.T) {
	_, st := Evaluate(Input{Licenses: []license.Payload{lic}, State: State{}, Now: start, Grace: grace28, Tolerance: time.Minute})
	if st.Licensed() || st.Level != Invalid || !st.NoContact || !strings.Contains(st.Reason(), "no proof of contact") {
		t.Fatalf("no contact: %s %s", st.Level, st.Reason())
	}
	if ok, _, why := st.Check("audit"); ok || !strings.Contains(why, "no proof of contact") {
		t.Fatalf("check: %v %q", ok, why)
	}
	s := Contacted(State{}, start, start.Add(time.Hour)) // a master clock ahead gives nothing extra
	if _, st := Evaluate(Input{Licenses: []license.Payload{lic}, State: s, Now: start, Grace: grace28}); st.Level != Valid || st.Left != grace28 {
		t.Fatalf("after contact: %s %v", st.Level, st.Left)
	}
}

// Setting the master's clock back does not revive an expired license; a
// trusted timestamp (Floor) counts as seen.
func TestMasterClockSetBack(t *testing.T) {
	short := lic
	short.Expires = "2026-11-30"
	in := Input{Master: true, Licenses: []license.Payload{short}, Now: start.Add(40 * day), Grace: grace28}
	s, st := Evaluate(in)
	if st.Licensed() {
		t.Fatal("expired license valid")
	}
	in.State, in.Now = s, start
	s, st = Evaluate(in)
	if st.Licensed() || st.RolledBack != 40*day {
		t.Fatalf("after setting the clock back 40 days: licensed %v, rolled back %v", st.Licensed(), st.RolledBack)
	}
	in.State = s
	if _, st := Evaluate(in); st.Licensed() {
		t.Fatal("licensed on the next evaluation")
	}
	// A floor from a trusted timestamp: a fresh state, clock behind it.
	f := Floor(State{}, start.Add(40*day))
	if _, st := Evaluate(Input{Master: true, Licenses: []license.Payload{short}, State: f, Now: start, Grace: grace28}); st.Licensed() {
		t.Fatal("licensed with the clock behind a trusted timestamp")
	}
}

// A short grace (how an operator tries the feature) is said in seconds,
// not rounded to "0s" (issue 12, outside probe).
func TestShortGraceReason(t *testing.T) {
	st := Status{Level: Warn1, Grace: 20 * time.Second, Left: 11400 * time.Millisecond, ValidOnes: 1, Licenses: []Entry{{}}}
	if r := st.Reason(); r != "no contact with the master for 9s: 11s of grace left" {
		t.Fatalf("reason %q", r)
	}
	st.Grace, st.Left = 28*24*time.Hour, 3*24*time.Hour+20*time.Second
	if r := st.Reason(); r != "no contact with the master for 600h0m0s: 72h0m0s of grace left" {
		t.Fatalf("reason %q", r)
	}
	// Under an hour, to the second: 82 s of silence in a grace of 90 s is
	// not "1m0s" of it with 8 s left.
	if r := roughly(82*time.Second + 300*time.Millisecond); r != 82*time.Second {
		t.Errorf("roughly(82.3 s) = %v", r)
	}
	if r := roughly(671*time.Hour + 59*time.Minute + 40*time.Second); r != 672*time.Hour {
		t.Errorf("roughly(671h59m40s) = %v", r)
	}
}

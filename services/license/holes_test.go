package license_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	lic "github.com/tandem-ha/tandem/pkg/license"
	"github.com/tandem-ha/tandem/pkg/pairtest"
	"github.com/tandem-ha/tandem/services/license"
)

// The state file of node's license service.
func (w *world) stateFile(node string) string {
	return filepath.Join(w.nodes[node].dir, "license", "grace.json")
}

// standbyCutOff is a pair whose standby had contact and licence l1, then
// lost its master (killed); the standby is stopped.
func standbyCutOff(t *testing.T, opts ...func(*world)) *world {
	w := newWorld(t, opts...)
	if _, err := w.add("a", w.issue("l1", "audit")); err != nil {
		t.Fatal(err)
	}
	w.waitListed("b", "l1")
	w.waitContact("b")
	w.kill("a")
	w.stop("a")
	return w
}

// Deleting the state file and restarting the standby gives no grace: the
// licenses are invalid with the reason, the service runs on (issue 12 §1).
func TestDeletedStateFileGivesNoGrace(t *testing.T) {
	w := standbyCutOff(t)
	w.stop("b")
	if err := os.Remove(w.stateFile("b")); err != nil {
		t.Fatal(err)
	}
	w.start("b")
	w.waitListed("b", "l1")
	st := w.waitStatus("b", api.LicenseInvalid, nil)
	if !contains(st.Reason, "no proof of contact") {
		t.Fatalf("status after deleting the state: %+v", st)
	}
	if c := w.check("b", "audit"); c.Licensed || !contains(c.Reason, "no proof of contact") {
		t.Fatalf("check: %+v", c)
	}
}

// Editing the contact time into the future is not trusted (issue 12 §1).
func TestEditedStateFileGivesNoGrace(t *testing.T) {
	w := standbyCutOff(t)
	w.stop("b")
	b, err := os.ReadFile(w.stateFile("b"))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	rec["state"].(map[string]any)["contact"] = "2099-01-01T00:00:00Z"
	if b, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.stateFile("b"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	w.start("b")
	st := w.waitStatus("b", api.LicenseInvalid, nil)
	if !contains(st.Reason, "not trusted") || !contains(st.Reason, "later than the master's signed answer") {
		t.Fatalf("status after editing the contact: %+v", st)
	}
}

// A damaged state file does not stop the service (issue 12 §7): it runs,
// answers, and says why its licenses are invalid.
func TestDamagedStateFileKeepsServiceRunning(t *testing.T) {
	w := standbyCutOff(t)
	w.stop("b")
	if err := os.WriteFile(w.stateFile("b"), []byte("{garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	w.start("b")
	st := w.waitStatus("b", api.LicenseInvalid, nil)
	if !contains(st.Reason, "damaged") {
		t.Fatalf("status with a damaged state: %+v", st)
	}
	// The master back: contact, and the trouble is no longer reported.
	w.pair.Restart(t, "a")
	w.nodes["a"].killed = false
	w.start("a")
	w.waitContact("b")
	w.waitFor("b's status without the damaged state's trouble", func() bool {
		st = w.list("b").State
		return st.Status != api.LicenseInvalid && !contains(st.Reason, "damaged")
	})
}

// A 20 s grace: 30 s after the master is gone every answer says invalid,
// evaluated at the time of the question, not from a stale evaluation.
func TestShortGraceAnsweredAtTheTimeOfTheQuestion(t *testing.T) {
	w := standbyCutOff(t, func(w *world) { w.grace = 20 * time.Second })
	if c := w.check("b", "audit"); !c.Licensed {
		t.Fatalf("check right after losing the master: %+v", c)
	}
	if v := pairtest.MetricSum(t, w.nodes["b"].reg, "tandem_license_valid"); v != 1 {
		t.Fatalf("tandem_license_valid %v before the grace ran out", v)
	}
	w.nodes["b"].clk.Advance(30 * time.Second)
	// The metrics, too, are evaluated when scraped.
	if v := pairtest.MetricSum(t, w.nodes["b"].reg, "tandem_license_valid"); v != 0 {
		t.Fatalf("tandem_license_valid %v after the grace ran out", v)
	}
	if v := pairtest.MetricSum(t, w.nodes["b"].reg, "tandem_license_grace_left_seconds"); v != 0 {
		t.Fatalf("tandem_license_grace_left_seconds %v after the grace ran out", v)
	}
	// No waiting: the very next answer is evaluated now.
	if c := w.check("b", "audit"); c.Licensed || !contains(c.Reason, "longer than the grace of 20s") {
		t.Fatalf("check 30 s after losing the master with a 20 s grace: %+v", c)
	}
	if st := w.list("b").State; st.Status != api.LicenseInvalid || st.GraceLeft != "0s" {
		t.Fatalf("status: %+v", st)
	}
}

// Setting the standby's clock back across a restart does not extend the
// grace.
func TestStandbyClockSetBackAcrossRestart(t *testing.T) {
	w := standbyCutOff(t)
	clk := w.nodes["b"].clk
	clk.Advance(27 * day)
	w.waitStatus("b", api.LicenseWarning, nil)
	w.stop("b")
	clk.Set(clk.Now().Add(-20 * day))
	w.start("b")
	st := w.waitStatus("b", api.LicenseWarning, nil)
	if left, err := time.ParseDuration(st.GraceLeft); err != nil || left > day {
		t.Fatalf("grace left after setting the clock back 20 days: %+v", st)
	}
	clk.Advance(day)
	w.waitStatus("b", api.LicenseInvalid, nil)
}

// Setting the master's clock back does not revive an expired license, also
// across a restart.
func TestMasterClockSetBack(t *testing.T) {
	w := newWorld(t)
	if _, err := w.add("a", w.issue("l1", "audit")); err != nil {
		t.Fatal(err)
	}
	clk := w.nodes["a"].clk
	clk.Advance(400 * day)
	w.waitFor("a evaluated after a year", func() bool { return !w.check("a", "audit").Licensed })
	// Let the service persist what it saw (its check tick).
	w.waitFor("state saved", func() bool {
		b, err := os.ReadFile(w.stateFile("a"))
		return err == nil && contains(string(b), clk.Now().UTC().Format("2006-01-02"))
	})
	clk.Set(clk.Now().Add(-400 * day))
	if c := w.check("a", "audit"); c.Licensed {
		t.Fatalf("check after setting the clock back: %+v", c)
	}
	w.stop("a")
	w.start("a")
	if c := w.check("a", "audit"); c.Licensed {
		t.Fatalf("check after setting the clock back and a restart: %+v", c)
	}
}

// A license is bound to its pair: another pair's node refuses it.
func TestLicenseOfAnotherPairRefused(t *testing.T) {
	w := newWorld(t)
	now := w.nodes["a"].clk.Now()
	for _, tt := range []struct {
		pair string
		ok   bool
	}{{"other", false}, {pairName, true}, {"", true}} {
		s, err := lic.Sign(w.priv, lic.Payload{V: lic.Version, ID: "l-" + tt.pair, Customer: "ACME", Product: "tandem",
			Features: []string{"audit"}, Seats: 1, Issued: now, Expires: now.Add(365 * day).Format(lic.DateLayout), Pair: tt.pair})
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.add("a", s.Armor())
		if (err == nil) != tt.ok {
			t.Errorf("license for pair %q: added %v (%v)", tt.pair, err == nil, err)
		}
		if err != nil && !contains(err.Error(), "issued for pair \"other\"") {
			t.Errorf("refusal: %v", err)
		}
	}
}

// Seats are enforced through the L5 check.
func TestSeatsEnforcedByCheck(t *testing.T) {
	w := newWorld(t)
	if _, err := w.add("a", w.issue("l1", "audit")); err != nil { // 5 seats
		t.Fatal(err)
	}
	seat := func(name string) api.LicenseCheckReply {
		var r api.LicenseCheckReply
		if err := w.request("a", api.VerbLicenseCheck, api.LicenseCheckRequest{Request: head(), Feature: "audit", Seat: name}, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for i := range 5 {
		if r := seat(fmt.Sprintf("desk-%d", i)); !r.Licensed {
			t.Fatalf("seat %d: %+v", i, r)
		}
	}
	if r := seat("desk-5"); r.Licensed || !contains(r.Reason, "all 5 seat(s) of license l1 are in use") {
		t.Fatalf("sixth seat: %+v", r)
	}
	if r := seat("desk-0"); !r.Licensed {
		t.Fatalf("a seat holder checking again: %+v", r)
	}
	w.nodes["a"].clk.Advance(license.SeatHold + time.Second)
	if r := seat("desk-5"); !r.Licensed {
		t.Fatalf("after the seats were released: %+v", r)
	}
}

// The master's node key replaced (its license directory lost): the
// standby's status names the cause — answers signed by another key than
// the pinned one, and the file to delete — not only "no contact"; once the
// operator deletes the pinned key, the next answer is pinned and counts.
func TestReplacedMasterKeyNamedAndRepinned(t *testing.T) {
	w := newWorld(t)
	if _, err := w.add("a", w.issue("l1", "audit")); err != nil {
		t.Fatal(err)
	}
	w.waitListed("b", "l1")
	first := w.waitContact("b")
	w.stop("a")
	if err := os.Remove(filepath.Join(w.nodes["a"].dir, "license", "node.key")); err != nil {
		t.Fatal(err)
	}
	w.nodes["a"].clk.Advance(time.Minute)
	w.nodes["b"].clk.Advance(time.Minute)
	w.start("a") // a new node key: its lease kicks b's challenger
	pinned := filepath.Join(w.nodes["b"].dir, "license", "master.pub")
	var st api.LicenseState
	w.waitFor("b names the key mismatch", func() bool {
		w.nodes["b"].clk.Advance(leaseTick) // the next challenge
		st = w.list("b").State
		return contains(st.Reason, "signed by another key than the one pinned in "+pinned)
	})
	if st.LastContact == nil || st.LastContact.After(first) {
		t.Fatalf("an answer signed by another key counted as contact: %+v", st)
	}
	if err := os.Remove(pinned); err != nil {
		t.Fatal(err)
	}
	w.waitFor("b pins the new key and counts the contact", func() bool {
		w.nodes["b"].clk.Advance(leaseTick)
		st = w.list("b").State
		return !contains(st.Reason, "another key") && st.LastContact != nil && st.LastContact.After(first)
	})
	if _, err := os.Stat(pinned); err != nil {
		t.Fatalf("the new key is not pinned: %v", err)
	}
}

// A standby without a single license that has no proof of contact (its
// master down at its start, its state new) is unlicensed, not "licenses
// invalid": there is nothing to be invalid, and tandem check said CRITICAL
// for a pair that holds no license at all.
func TestNoLicensesNoContactIsUnlicensed(t *testing.T) {
	w := newWorld(t)
	w.kill("a")
	w.stop("a")
	w.stop("b")
	if err := os.Remove(w.stateFile("b")); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	w.start("b")
	st := w.waitStatus("b", api.LicenseUnlicensed, nil)
	if st.Licenses != 0 || !contains(st.Reason, "no proof of contact") {
		t.Fatalf("status: %+v", st)
	}
}

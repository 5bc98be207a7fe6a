package license_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
	lic "github.com/tandem-ha/tandem/pkg/license"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// L1, L3: a license added on the master is listed, valid, on the standby.
func TestAddOnMasterListedOnStandby(t *testing.T) {
	w := newWorld(t)
	r, err := w.add("a", w.issue("l1", "audit", "sessions"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Node != "a" || r.License.ID != "l1" || !r.License.Valid {
		t.Fatalf("add reply %+v", r)
	}
	if got := w.list("a").Licenses; len(got) != 1 || got[0].ID != "l1" {
		t.Fatalf("master lists %+v right after add", got)
	}
	w.waitListed("b", "l1")
	st := w.waitStatus("b", api.LicenseValid, nil)
	if st.Role != "standby" || st.GraceLeft == "" {
		t.Fatalf("standby state %+v", st)
	}
	if c := w.check("b", "audit"); !c.Licensed || c.License != "l1" {
		t.Fatalf("check audit on b: %+v", c)
	}
	if c := w.check("a", "print"); c.Licensed || !contains(c.Reason, `no license grants feature "print"`) {
		t.Fatalf("check print on a: %+v", c)
	}
	if n := w.nodes["a"].events.Count(event.LicenseAdded); n != 1 {
		t.Fatalf("%d added events", n)
	}
	// Adding the same license again is harmless; another under its id is not.
	if _, err := w.add("a", w.issue("l1", "audit", "sessions")); err != nil {
		t.Fatalf("the same license again: %v", err)
	}
	_, err = w.add("a", w.issue("l1", "audit"))
	if re := asReplyError(t, err); re.Code != reply.CodeInvalidState {
		t.Fatalf("another license under an existing id: %+v", re)
	}
}

// L2: the standby refuses, naming the master; nothing is stored.
func TestAddOnStandbyRefusedNamingMaster(t *testing.T) {
	w := newWorld(t)
	_, err := w.add("b", w.issue("l1", "audit"))
	re := asReplyError(t, err)
	if re.Code != reply.CodeNotMaster || re.Node != "a" || !contains(re.Message, "master a") {
		t.Fatalf("refusal %+v", re)
	}
	if n := w.nodes["b"].events.Count(event.LicenseRefused); n != 1 {
		t.Fatalf("%d refused events on b", n)
	}
	for _, n := range []string{"a", "b"} {
		if got := w.list(n).Licenses; len(got) != 0 {
			t.Fatalf("%s lists %+v", n, got)
		}
	}
}

// L1 and SPEC §9: forged, altered, expired, future-dated, garbage and
// oversized licenses are refused with the reason; nothing is stored.
func TestBadLicensesRefused(t *testing.T) {
	w := newWorld(t)
	good := w.issue("l1", "audit")
	altered := bytes.Clone(good)
	i := bytes.Index(altered, []byte("\n\n")) + 10 // a byte of the signed body
	altered[i] ^= 1
	_, otherKey, _ := lic.GenerateKey()
	now := w.nodes["a"].clk.Now()
	sign := func(priv []byte, issued time.Time, expires string) []byte {
		s, err := lic.Sign(priv, lic.Payload{V: 1, ID: "x", Customer: "c", Product: "tandem", Features: []string{"audit"},
			Seats: 1, Issued: issued, Expires: expires})
		if err != nil {
			t.Fatal(err)
		}
		return s.Armor()
	}
	cases := map[string]struct {
		text []byte
		want string
	}{
		"altered byte": {altered, "license refused"},
		"other key":    {sign(otherKey, now, "2099-01-01"), "signature invalid"},
		"garbage":      {[]byte("\x00\xffnot a license"), "malformed license"},
		"oversized":    {bytes.Repeat([]byte("A"), lic.MaxArmoredSize+1), "too large"},
		"expired":      {sign(w.priv, now.Add(-400*day), now.Add(-2*day).Format(lic.DateLayout)), "expired"},
		"future":       {sign(w.priv, now.Add(time.Hour), "2099-01-01"), "issued in the future"},
	}
	for name, c := range cases {
		_, err := w.add("a", c.text)
		re := asReplyError(t, err)
		if re.Code != reply.CodeBadRequest || !contains(re.Message, c.want) {
			t.Errorf("%s: %+v, want %q", name, re, c.want)
		}
	}
	if n := w.nodes["a"].events.Count(event.LicenseRefused); n != len(cases) {
		t.Errorf("%d refused events, want %d", n, len(cases))
	}
	// A request larger than any admin request is refused at the edge.
	_, err := w.add("a", bytes.Repeat([]byte("A"), reply.MaxSize))
	if re := asReplyError(t, err); re.Code != reply.CodeBadRequest {
		t.Errorf("huge request: %+v", re)
	}
	for _, n := range []string{"a", "b"} {
		if got := w.list(n).Licenses; len(got) != 0 {
			t.Fatalf("%s lists %+v", n, got)
		}
	}
}

// L4: cut off for the grace, the standby's licenses become invalid while
// the master's stay valid; contact after the heal restores them.
func TestGraceAcrossAPartition(t *testing.T) {
	w := newWorld(t)
	if _, err := w.add("a", w.issue("l1", "audit")); err != nil {
		t.Fatal(err)
	}
	w.waitListed("b", "l1")
	w.waitContact("b")
	w.pair.Cut()
	w.nodes["a"].clk.Advance(28 * day)
	w.nodes["b"].clk.Advance(28 * day)
	st := w.waitStatus("b", api.LicenseInvalid, nil)
	if st.GraceLeft != "0s" || !contains(st.Reason, "no contact with the master") {
		t.Fatalf("standby after 28 days cut off: %+v", st)
	}
	if c := w.check("b", "audit"); c.Licensed || !contains(c.Reason, "longer than the grace") {
		t.Fatalf("check on b: %+v", c)
	}
	if st := w.list("a").State; st.Status != api.LicenseValid {
		t.Fatalf("master after 28 days: %+v", st)
	}
	if c := w.check("a", "audit"); !c.Licensed {
		t.Fatalf("check on a: %+v", c)
	}
	w.waitFor("one invalid event on b", func() bool { return w.nodes["b"].events.Count(event.LicenseInvalid) == 1 })
	// The first contact of the fresh standby was reported valid already.
	validBefore := w.nodes["b"].events.Count(event.LicenseValid)

	w.pair.Heal()
	w.pair.WaitLinked(t, waitLimit)
	// The master renews its lease every leaseTick of its clock.
	w.waitStatus("b", api.LicenseValid, func() { w.nodes["a"].clk.Advance(leaseTick) })
	if c := w.check("b", "audit"); !c.Licensed {
		t.Fatalf("check on b after the heal: %+v", c)
	}
	w.waitFor("one more valid event on b", func() bool { return w.nodes["b"].events.Count(event.LicenseValid) == validBefore+1 })
}

// L4: a restart of the standby keeps the count, and the replicated copy
// is readable while the master is down.
func TestStandbyRestartKeepsCount(t *testing.T) {
	w := newWorld(t)
	if _, err := w.add("a", w.issue("l1", "audit")); err != nil {
		t.Fatal(err)
	}
	w.waitListed("b", "l1")
	w.waitContact("b")
	w.kill("a")
	w.stop("a")
	w.nodes["b"].clk.Advance(20 * day)
	w.stop("b")
	w.start("b")
	w.waitListed("b", "l1")
	st := w.waitStatus("b", api.LicenseValid, nil)
	left, err := time.ParseDuration(st.GraceLeft)
	if err != nil || left > 8*day {
		t.Fatalf("grace left after a restart on day 20: %q (%v)", st.GraceLeft, err)
	}
	w.nodes["b"].clk.Advance(day)
	w.waitStatus("b", api.LicenseWarning, nil)
}

// A standby whose data directory was lost lists the master's licenses
// again: its new mirror of the master's bucket copies all of it, not only
// what the master writes from then on (the master's consumer remembered
// how far the former mirror had acknowledged).
func TestStandbyWithLostDataGetsTheLicenses(t *testing.T) {
	w := newWorld(t)
	if _, err := w.add("a", w.issue("l1", "audit")); err != nil {
		t.Fatal(err)
	}
	w.waitListed("b", "l1")
	// The precondition: the master's consumer knows how far the mirror has
	// acknowledged (the mirror does now and then, by flow control).
	js, err := jetstream.NewWithDomain(w.nodes["a"].nc, w.pair.Server("a").Domain())
	if err != nil {
		t.Fatal(err)
	}
	st, err := js.Stream(context.Background(), "KV_"+subject.LicenseBucket(pairName))
	if err != nil {
		t.Fatal(err)
	}
	feed, err := st.PushConsumer(context.Background(), subject.LicenseMirrorConsumer)
	if err != nil {
		t.Fatal(err)
	}
	w.waitFor("an acknowledgement of the mirror's", func() bool {
		info, err := feed.Info(context.Background())
		return err == nil && info.AckFloor.Stream > 0
	})
	w.stop("b")
	w.pair.RestartEmpty(t, "b")
	w.pair.WaitLinked(t, waitLimit)
	w.nodes["b"].dir = filepath.Join(w.nodes["b"].dir, "lost")
	w.start("b")
	w.waitListed("b", "l1")
}

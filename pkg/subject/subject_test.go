package subject

import (
	"regexp"
	"testing"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"a", "print-a", "0", "abcdefghijklmnopqrstuvwxyz012345"} {
		if !ValidName(ok) {
			t.Errorf("%q rejected", ok)
		}
	}
	for _, bad := range []string{"", "-a", "A", "a.b", "a*", "a>", "a b", "_pair", "abcdefghijklmnopqrstuvwxyz0123456"} {
		if ValidName(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestLayout(t *testing.T) {
	cases := map[string]string{
		Heartbeat("p", "a"):                      "tandem.p.hb.a",
		Admin("p", "a", "status"):                "tandem.p.admin.a.status",
		Admin("p", PairScope, "status"):          "tandem.p.admin._pair.status",
		Event("p", "a", "tandem.node.activated"): "tandem.p.events.a.node.activated",
		Notify("p"):                              "tandem.p.notify",
		EventStream("p", "a"):                    "tandem_events_p_a",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

// ValidName accepts exactly the names of its documented expression.
func FuzzValidName(f *testing.F) {
	re := regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)
	for _, s := range []string{"a", "-a", "a-", "print-a", "A", "", "abcdefghijklmnopqrstuvwxyz0123456", "a\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if ValidName(s) != re.MatchString(s) {
			t.Fatalf("ValidName(%q) = %v, the expression says %v", s, ValidName(s), re.MatchString(s))
		}
	})
}

package subject

import "testing"

func TestNotifierNames(t *testing.T) {
	cases := map[string]string{
		Ack("p", "ts1"):      "tandem.p.ack.ts1",
		Acks("p"):            "tandem.p.ack.*",
		ReplConfig("p", "a"): "tandem.p.admin.a.repl.config",
		NotifierStatus("p"):  "tandem.p.admin._pair.notifier.status",
	}
	for got, want := range cases {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	for _, ok := range []string{"a", "TS01-user_42", "0"} {
		if !ValidSession(ok) {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "-a", "_a", "a.b", "a*", "a>", "a b", string(make([]byte, 65))} {
		if ValidSession(bad) {
			t.Errorf("%q accepted", bad)
		}
	}
}

package session

import (
	"reflect"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/api"
)

func TestHostOf(t *testing.T) {
	cases := map[string]string{
		`\\print-a\Floor3`:                       "print-a",
		`\\print-a`:                              "print-a",
		`//print-a/Floor3`:                       "print-a",
		"ipp://print-a:631/printers/Floor3":      "print-a",
		"ipp://user:pw@print-a:631/printers/F":   "print-a",
		"http://[fe80::1]:631/printers/F":        "[fe80::1]",
		"lpd://print-a/queue":                    "print-a",
		"print-a:9100":                           "print-a",
		"print-a":                                "print-a",
		"PRINT-A.corp.example\\x":                "PRINT-A.corp.example",
		"socket://print-a.example.com:9100?x=1#": "print-a.example.com",
	}
	for addr, want := range cases {
		got, i, j, ok := HostOf(addr)
		if !ok || got != want || addr[i:j] != want {
			t.Errorf("HostOf(%q) = %q, %v; want %q", addr, got, ok, want)
		}
	}
	for _, bad := range []string{"", `\\`, "ipp://", ":631"} {
		if h, _, _, ok := HostOf(bad); ok {
			t.Errorf("HostOf(%q) = %q, want none", bad, h)
		}
	}
}

func TestRewriteKeepsSettingsAndOnlyFailedHost(t *testing.T) {
	conns := []Connection{
		{Address: `\\Print-A\Floor3`, Default: true, Options: map[string]string{"duplex": "long"}},
		{Address: "ipp://print-a:631/printers/Label", Options: map[string]string{"tray": "2"}},
		{Address: `\\print-ab\Other`},
		{Address: `\\files\Scan`},
	}
	n := api.Notification{V: 1, Pair: "p", Epoch: 3, Active: "b", Failed: "a", Source: api.SourceDatabase,
		Hosts:   map[string]string{"print-a": "print-b"},
		Renames: map[string]string{"ipp://print-a:631/printers/Label": "ipp://print-b:631/printers/Label-B"}}
	got, sw := Rewrite(conns, n)
	want := []Connection{
		{Address: `\\print-b\Floor3`, Default: true, Options: map[string]string{"duplex": "long"}},
		{Address: "ipp://print-b:631/printers/Label-B", Options: map[string]string{"tray": "2"}},
		{Address: `\\print-ab\Other`},
		{Address: `\\files\Scan`},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
	}
	if len(sw) != 2 || sw[0].From != `\\Print-A\Floor3` || sw[1].To != "ipp://print-b:631/printers/Label-B" {
		t.Fatalf("switched %+v", sw)
	}
	if conns[0].Address != `\\Print-A\Floor3` {
		t.Fatal("Rewrite changed its input")
	}
	// Applying it again switches nothing, and leaves the connections as
	// they are.
	if again, sw := Rewrite(got, n); len(sw) != 0 || !reflect.DeepEqual(again, want) {
		t.Fatalf("second rewrite switched %+v: %+v", sw, again)
	}
}

// One rewriter for many sessions (a delivery) gives each what Rewrite
// gives it alone, in slices of its own: more sessions than a block, some
// sharing addresses, some not, some switching nothing.
func TestRewriterSharesNothingVisible(t *testing.T) {
	n := api.Notification{V: 1, Pair: "p", Epoch: 3, Active: "b", Failed: "a", Source: api.SourceDatabase,
		Hosts:   map[string]string{"print-a": "print-b"},
		Renames: map[string]string{"ipp://print-a:631/printers/Label": "ipp://print-b:631/printers/Label-B"}}
	rw := newRewriter(n, 3*maxBlock)
	type result struct {
		conns []Connection
		sw    []api.Switch
	}
	var sessions [][]Connection
	var got []result
	for i := range 3 * maxBlock {
		conns := []Connection{{Address: `\\print-a\Floor3`, Default: true}, {Address: "ipp://print-a:631/printers/Label"}}
		switch i % 3 {
		case 1:
			conns = append(conns, Connection{Address: `\\print-a\Own` + strings.Repeat("x", i)})
		case 2:
			conns = []Connection{{Address: `\\files\Scan`}}
		}
		sessions = append(sessions, conns)
		c, sw := rw.rewrite(conns)
		got = append(got, result{c, sw})
	}
	for i, conns := range sessions {
		want, wantSw := Rewrite(conns, n)
		if !reflect.DeepEqual(got[i].conns, want) || !reflect.DeepEqual(got[i].sw, wantSw) {
			t.Fatalf("session %d: %+v %+v, alone %+v %+v", i, got[i].conns, got[i].sw, want, wantSw)
		}
		if cap(got[i].sw) != len(got[i].sw) && len(got[i].sw) > 0 {
			t.Fatalf("session %d: switches %d of room %d: an append would write another's: %+v", i, len(got[i].sw), cap(got[i].sw), got[i].sw)
		}
	}
	for i := range got { // appending to one leaves the next alone
		if len(got[i].sw) > 0 {
			_ = append(got[i].sw, api.Switch{From: "x", To: "y"})
			_ = append(got[i].conns, Connection{Address: "x"})
		}
	}
	for i, conns := range sessions {
		want, wantSw := Rewrite(conns, n)
		if !reflect.DeepEqual(got[i].conns, want) || !reflect.DeepEqual(got[i].sw, wantSw) {
			t.Fatalf("session %d changed by another's append: %+v %+v", i, got[i].conns, got[i].sw)
		}
	}
}

func FuzzRewrite(f *testing.F) {
	f.Add(`\\print-a\F3`, "print-a", "print-b")
	f.Add("ipp://u@print-a:631/x", "print-a", "print-b")
	f.Add("[::1]:80", "[::1]", "h")
	f.Fuzz(func(t *testing.T, addr, from, to string) {
		host, i, j, ok := HostOf(addr)
		if ok && (i < 0 || j > len(addr) || i >= j || addr[i:j] != host) {
			t.Fatalf("HostOf(%q) = %q [%d:%d]", addr, host, i, j)
		}
		out, changed := ReplaceHost(addr, from, to)
		if !changed && out != addr {
			t.Fatal("unchanged address differs")
		}
		if changed && (!strings.EqualFold(host, from) || out != addr[:i]+to+addr[j:]) {
			t.Fatalf("ReplaceHost(%q, %q, %q) = %q", addr, from, to, out)
		}
		if from == "" || to == "" {
			return
		}
		n := api.Notification{Hosts: map[string]string{from: to}}
		got, sw := Rewrite([]Connection{{Address: addr, Default: true}}, n)
		if len(got) != 1 || !got[0].Default || len(sw) > 1 {
			t.Fatalf("Rewrite lost a setting: %+v %+v", got, sw)
		}
		if got[0].Address != out || (len(sw) == 1) != (out != addr) {
			t.Fatalf("Rewrite(%q) with %q → %q: %+v %+v, ReplaceHost says %q", addr, from, to, got, sw, out)
		}
	})
}

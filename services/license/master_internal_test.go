package license

import (
	"testing"

	"github.com/tandem-ha/tandem/pkg/heartbeat"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func TestMasterOf(t *testing.T) {
	hb := func(node, role string) []byte {
		return []byte(`{"v":1,"pair":"p","node":"` + node + `","role":"` + role + `","state":"passive","epoch":3,"later":"field"}`)
	}
	for _, c := range []struct {
		what string
		data []byte
		subj string
		want string
	}{
		{"the master's", hb("a", "master"), subject.Heartbeat("p", "a"), "a"},
		{"a standby's", hb("a", "standby"), subject.Heartbeat("p", "a"), ""},
		{"this node's own", hb("b", "master"), subject.Heartbeat("p", "b"), ""},
		{"naming another node than its subject", hb("a", "master"), subject.Heartbeat("p", "c"), ""},
		{"another pair's", []byte(`{"v":1,"pair":"q","node":"a","role":"master"}`), subject.Heartbeat("p", "a"), ""},
		{"another version", []byte(`{"v":2,"pair":"p","node":"a","role":"master"}`), subject.Heartbeat("p", "a"), ""},
		{"not JSON", []byte(`master a`), subject.Heartbeat("p", "a"), ""},
		{"an invalid name", hb("a b", "master"), subject.Heartbeat("p", "a b"), ""},
		{"oversized", append(hb("a", "master"), make([]byte, heartbeat.MaxSize)...), subject.Heartbeat("p", "a"), ""},
	} {
		got, ok := masterOf(c.data, c.subj, "p", "b")
		if got != c.want || ok != (c.want != "") {
			t.Errorf("%s: %q %v, want %q", c.what, got, ok, c.want)
		}
	}
}

func FuzzMasterOf(f *testing.F) {
	f.Add([]byte(`{"v":1,"pair":"p","node":"a","role":"master"}`), "a")
	f.Add([]byte(`{"v":1,"pair":"p","node":"b","role":"master"}`), "b")
	f.Fuzz(func(t *testing.T, data []byte, from string) {
		name, ok := masterOf(data, "tandem.p.hb."+from, "p", "b")
		if ok && (name == "b" || name != from || !subject.ValidName(name)) {
			t.Fatalf("masterOf(%q) = %q from %q", data, name, from)
		}
	})
}

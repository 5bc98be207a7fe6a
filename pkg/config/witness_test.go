package config

import (
	"strings"
	"testing"
)

// TestWitnessValidate: witness.url must be a nats:// or tls:// URL with a
// host and port, and creds or required need a URL.
func TestWitnessValidate(t *testing.T) {
	for _, c := range []struct {
		w    Witness
		want string // "" valid
	}{
		{Witness{}, ""},
		{Witness{URL: "nats://10.0.0.9:4250"}, ""},
		{Witness{URL: "tls://w.example:4250", Creds: "/x.creds", Required: true}, ""},
		{Witness{URL: "http://w:4250"}, "not a nats:// or tls:// URL"},
		{Witness{URL: "nats://w"}, "no host:port"},
		{Witness{URL: "nats://%zz"}, "witness.url"},
		{Witness{Required: true}, "without witness.url"},
		{Witness{Creds: "/x.creds"}, "without witness.url"},
	} {
		errs := c.w.validate()
		switch {
		case c.want == "" && len(errs) > 0:
			t.Errorf("%+v: %v", c.w, errs)
		case c.want != "" && (len(errs) == 0 || !strings.Contains(errs[0].Error(), c.want)):
			t.Errorf("%+v: %v, want %q", c.w, errs, c.want)
		}
	}
}

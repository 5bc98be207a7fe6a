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

// TestValidateWitness: `tandem witness`'s keys — protected mode without
// witness.pairs, the pairs' names and keys, TLS in pairs of files.
func TestValidateWitness(t *testing.T) {
	const key, key2 = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4", "UBGETQT5YWU4ZWXDKNX45FNB4AEXHBBIGDWWTM2O2ZRK3VBV6CXUGISW"
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string // "" valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"open on the network", func(c *Config) { c.Witness.Listen = "0.0.0.0:4250" }, "protected mode"},
		{"insecure", func(c *Config) { c.Witness.Listen, c.Insecure = "0.0.0.0:4250", true }, ""},
		{"secured", func(c *Config) { c.Witness.Listen, c.Witness.Pairs = "0.0.0.0:4250", map[string]string{"print": key} }, ""},
		{"bad address", func(c *Config) { c.Witness.Listen = "4250" }, "witness.listen"},
		{"bad pair", func(c *Config) { c.Witness.Pairs = map[string]string{"Print!": key} }, "pair name"},
		{"bad key", func(c *Config) { c.Witness.Pairs = map[string]string{"print": "SUABC"} }, "not a public user nkey"},
		{"shared key", func(c *Config) { c.Witness.Pairs = map[string]string{"a": key, "b": key} }, "same key"},
		{"two keys", func(c *Config) { c.Witness.Pairs = map[string]string{"a": key, "b": key2} }, ""},
		{"half TLS", func(c *Config) { c.NATS.TLS.Cert = "/c.pem" }, "set both"},
		{"no data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
	} {
		cfg := Default()
		c.edit(&cfg)
		err := cfg.ValidateWitness()
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}

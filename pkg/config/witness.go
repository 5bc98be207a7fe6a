package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nats-io/nkeys"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// The witness's keys (F14). A node reads witness.url, .creds, .ca and
// .required; `tandem witness` reads witness.listen, witness.pairs,
// data_dir, nats.tls.cert/.key, insecure and log.*, and nothing of a pair.

// LoadWitness builds the configuration of `tandem witness` as Load does a
// node's, and checks it with ValidateWitness.
func LoadWitness(file string, environ []string, flags map[string]string) (Config, error) {
	return load(file, environ, flags, Config.ValidateWitness)
}

// WitnessSecured reports whether the witness requires credentials
// (witness.pairs set).
func (c Config) WitnessSecured() bool { return len(c.Witness.Pairs) > 0 }

// ValidateWitness checks the keys `tandem witness` uses: its address
// (protected mode: without witness.pairs it listens on loopback only,
// unless insecure), the pairs' keys, TLS and logging.
func (c Config) ValidateWitness() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	w := c.Witness
	if c.DataDir == "" {
		add("data_dir (--data-dir): empty")
	}
	switch err := checkAddr(w.Listen, natsPort); {
	case err != nil:
		add("witness.listen (--listen): %w", err)
	case !c.Insecure && !c.WitnessSecured() && !Loopback(w.Listen):
		add("witness.listen (--listen): %q is not a loopback address and witness.pairs is not set (protected mode): "+
			"anyone on the network could take the pairs' leases. Make a key per pair with `tandem auth witness PAIR` and set "+
			"witness.pairs (pair=key), or listen on 127.0.0.1, or set insecure: true (--insecure) to let anyone in", w.Listen)
	}
	seen := map[string]string{}
	for _, pair := range slices.Sorted(maps.Keys(w.Pairs)) {
		key := w.Pairs[pair]
		switch {
		case subject.CheckName("pair", pair) != nil:
			add("witness.pairs: %w", subject.CheckName("pair", pair))
		case !nkeys.IsValidPublicUserKey(key):
			add("witness.pairs.%s: %q is not a public user nkey (U…, see tandem auth witness)", pair, key)
		case seen[key] != "":
			add("witness.pairs.%s: same key as pair %s; give each pair its own", pair, seen[key])
		default:
			seen[key] = pair
		}
	}
	if t := c.NATS.TLS; (t.Cert == "") != (t.Key == "") {
		add("nats.tls.cert and nats.tls.key: set both or neither")
	}
	return errors.Join(append(errs, c.Log.validate()...)...)
}

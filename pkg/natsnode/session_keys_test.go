package natsnode

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Per-client session keys (tandem auth session): each acknowledges only as
// its own session and reads only its own replies; a key removed from
// nats.sessions (revoked) cannot sign in, the others still can.
func TestSessionKeys(t *testing.T) {
	pki := newPKI(t)
	creds := filepath.Join(t.TempDir(), "nkeys")
	keys, err := WriteSeeds(creds, config.AuthRoles)
	if err != nil {
		t.Fatal(err)
	}
	desk1, pub1, err := WriteSessionSeed(creds, "desk-1")
	if err != nil {
		t.Fatal(err)
	}
	desk2, pub2, err := WriteSessionSeed(creds, "desk-2")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := WriteSessionSeed(creds, "desk-1"); err == nil {
		t.Fatal("a session key was overwritten")
	}
	c := secureConfig(t, "a", pki, keys, creds, "", "")
	c.NATS.Sessions = map[string]string{"desk-1": pub1}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := startSecure(t, c)
	connect := func(seed, name string) (*nats.Conn, <-chan error, error) {
		opt, err := CredsOption(seed)
		if err != nil {
			t.Fatal(err)
		}
		tlsOpt, err := TLSOption(pki.CA)
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 16)
		nc, err := nats.Connect(s.ClientURL(), opt, tlsOpt, nats.CustomInboxPrefix(SessionInboxPrefix(name)),
			nats.NoReconnect(), nats.Timeout(5*time.Second),
			nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
				select {
				case errs <- err:
				default:
				}
			}))
		if err == nil {
			t.Cleanup(nc.Close)
		}
		return nc, errs, err
	}
	nc, errs, err := connect(desk1, "desk-1")
	if err != nil {
		t.Fatalf("desk-1 signs in: %v", err)
	}
	for _, c := range []permission{
		{"desk-1", "pub", subject.Ack("t", "desk-1"), true},
		{"desk-1", "pub", subject.Ack("t", "desk-2"), false},
		{"desk-1", "sub", subject.Notify("t"), true},
		{"desk-1", "sub", SessionInboxPrefix("desk-1") + ".x", true},
		{"desk-1", "sub", SessionInboxPrefix("desk-2") + ".x", false},
		{"desk-1", "pub", "$JS.API.STREAM.DELETE.KV_tandem_state", false},
	} {
		t.Run(c.op+" "+c.subj, func(t *testing.T) { checkPermission(t, nc, errs, c) })
	}
	if _, _, err := connect(desk2, "desk-2"); err == nil {
		t.Fatal("desk-2, not (or no longer) in nats.sessions, signed in")
	}
	_ = pub2
}

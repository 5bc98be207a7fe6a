package witness

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/testpki"

	"github.com/tandem-ha/tandem/services/monitor/witness/lease"
)

// seed writes a new user key's seed into dir and returns the file and its
// public key.
func seed(t *testing.T, dir, name string) (string, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	s, _ := kp.Seed()
	path := filepath.Join(dir, name+".nk")
	if err := os.WriteFile(path, s, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, pub
}

// connectAs connects to the witness at url with the seed in creds ("" for
// none) as pair's nodes do, and collects its asynchronous errors.
func connectAs(url, creds, pair string, extra ...nats.Option) (*nats.Conn, chan error, error) {
	errs := make(chan error, 16)
	opts := append([]nats.Option{nats.CustomInboxPrefix(natsnode.WitnessInboxPrefix(pair)), nats.Timeout(5 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		})}, extra...)
	if creds != "" {
		o, err := natsnode.CredsOption(creds)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, o)
	}
	nc, err := nats.Connect(url, opts...)
	return nc, errs, err
}

// TestServerCredentials: with witness.pairs set, a client without
// credentials or with a key the witness does not know is refused; a pair's
// key asks for its own lease and nothing else: not another pair's lease,
// not another pair's replies, not the requests of every pair, not the
// lease bucket through JetStream.
func TestServerCredentials(t *testing.T) {
	dir := t.TempDir()
	printSeed, printPub := seed(t, dir, "print")
	otherSeed, otherPub := seed(t, dir, "other")
	strangerSeed, _ := seed(t, dir, "stranger")
	s, err := Start(context.Background(), ServerOptions{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Pairs: map[string]string{"print": printPub, "other": otherPub}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)

	for name, creds := range map[string]string{"no credentials": "", "an unknown key": strangerSeed} {
		if nc, _, err := connectAs(s.ClientURL(), creds, "print"); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			if nc != nil {
				nc.Close()
			}
			t.Errorf("%s: connected or failed otherwise: %v", name, err)
		}
	}

	nc, errs, err := connectAs(s.ClientURL(), printSeed, "print")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("print's own lease: %+v", rep)
	}

	short, cancelShort := context.WithTimeout(context.Background(), time.Second)
	defer cancelShort()
	if rep, err := Ask(short, nc, "other", lease.Request{Node: "a", Epoch: 9, TTLMS: 60_000, Renew: true}); err == nil {
		t.Errorf("print's key asked for other's lease: %+v", rep)
	}
	awaitPermission(t, errs, `"tandem.witness.other.lease"`)
	for _, subj := range []string{"tandem.witness.*.lease", natsnode.WitnessInboxPrefix("other") + ".>"} {
		if _, err := nc.SubscribeSync(subj); err != nil {
			t.Fatal(err)
		}
		awaitPermission(t, errs, subj)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	jctx, jcancel := context.WithTimeout(context.Background(), time.Second)
	defer jcancel()
	if _, err := js.KeyValue(jctx, Bucket); err == nil {
		t.Errorf("print's key reached the lease bucket through JetStream")
	}

	// other's lease is untouched: other's own key takes it.
	onc, _, err := connectAs(s.ClientURL(), otherSeed, "other")
	if err != nil {
		t.Fatal(err)
	}
	defer onc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if rep, err := Ask(ctx, onc, "other", lease.Request{Node: "x", Epoch: 2, TTLMS: 60_000, Renew: true}); err != nil || !rep.Granted || rep.Holder != "x" {
		t.Fatalf("other's own lease: %+v %v", rep, err)
	}
}

// awaitPermission waits for the permission violation on subj among a
// connection's asynchronous errors.
func awaitPermission(t *testing.T, errs chan error, subj string) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subj) {
				return
			}
		case <-deadline:
			t.Errorf("no permission violation for %s", subj)
			return
		}
	}
}

// TestServerTLS: with nats.tls.cert/key the witness speaks TLS; a node
// that trusts the CA asks for its lease, one that does not is refused.
func TestServerTLS(t *testing.T) {
	pki := testpki.New(t)
	dir := t.TempDir()
	creds, pub := seed(t, dir, "print")
	s, err := Start(context.Background(), ServerOptions{Listen: "127.0.0.1:0", DataDir: t.TempDir(),
		Pairs: map[string]string{"print": pub}, TLS: natsnode.TLSFiles{Cert: pki.Cert, Key: pki.Key}, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if !strings.HasPrefix(s.ClientURL(), "tls://") {
		t.Errorf("client URL %s is not tls://", s.ClientURL())
	}
	if nc, _, err := connectAs(s.ClientURL(), creds, "print"); err == nil {
		nc.Close()
		t.Errorf("connected without trusting the witness's certificate")
	}
	nc, _, err := connectAs(s.ClientURL(), creds, "print", nats.RootCAs(pki.CA))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if rep := ask(t, nc, lease.Request{Node: "a", Epoch: 2, TTLMS: 60_000, Renew: true}); !rep.Granted {
		t.Fatalf("lease over TLS: %+v", rep)
	}
}

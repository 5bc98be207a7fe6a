package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/testpki"
)

// A bad certificate, key or CA is named by its key; good files pass.
func TestCheckTLSFiles(t *testing.T) {
	pki, other := testpki.New(t), testpki.New(t)
	notPEM := filepath.Join(t.TempDir(), "ca.txt")
	if err := os.WriteFile(notPEM, []byte("not a certificate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkTLSFiles(config.TLS{Cert: pki.Cert, Key: pki.Key, CA: pki.CA}); err != nil {
		t.Fatalf("good files refused: %v", err)
	}
	for _, c := range []struct {
		tls  config.TLS
		want string
	}{
		{config.TLS{Cert: pki.Cert + ".missing", Key: pki.Key}, "nats.tls.cert"},
		{config.TLS{Cert: pki.Cert, Key: other.Key}, "nats.tls.key"}, // a key of another certificate
		{config.TLS{Cert: pki.Cert, Key: pki.Key, CA: pki.CA + ".missing"}, "nats.tls.ca: open"},
		{config.TLS{Cert: pki.Cert, Key: pki.Key, CA: notPEM}, "no PEM certificate"},
	} {
		err := checkTLSFiles(c.tls)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want an error with %q", c.tls, err, c.want)
		}
	}
}

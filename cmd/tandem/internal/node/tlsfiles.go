package node

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/tandem-ha/tandem/pkg/config"
)

// checkTLSFiles reads the embedded server's certificate, key and CA before
// the server does, so that a bad one is named by its configuration key:
// the server names only a line of the configuration it is given ("nats
// config: :32:3: error parsing X509 certificate/key pair").
func checkTLSFiles(t config.TLS) error {
	if t.Cert != "" {
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			return fmt.Errorf("nats.tls.cert %q and nats.tls.key %q: %w", t.Cert, t.Key, err)
		}
	}
	if t.CA != "" {
		b, err := os.ReadFile(t.CA)
		if err != nil {
			return fmt.Errorf("nats.tls.ca: %w", err)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b) {
			return fmt.Errorf("nats.tls.ca %q: no PEM certificate in it", t.CA)
		}
	}
	return nil
}

package natsnode

import (
	"testing"

	"github.com/tandem-ha/tandem/pkg/testpki"
)

// testPKI is a CA and a certificate it signed for loopback (testpki.PKI).
type testPKI = testpki.PKI

func newPKI(t testing.TB) testPKI { return testpki.New(t) }

package notifier_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/services/notifier"
)

func getActive(t *testing.T, client *http.Client, base, auth string) (int, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/v1/pairs/"+pairName+"/active", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", auth)
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// 2,000 idle connections are shed (the oldest idle one for each new
// connection beyond the limit, the rest by the header timeout) and the
// endpoint keeps answering at once; the auth scheme is read in any case
// (issue 12 §6).
func TestPushShedsIdleConnections(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", func(o *notifier.Options) { o.Config.Notifier.MaxConns = 500 })
	base := "http://" + a.svc.PushAddr()
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 2000 {
		c, err := net.Dial("tcp", a.svc.PushAddr())
		if err != nil {
			t.Fatalf("dial %d: %v", len(idle), err)
		}
		idle = append(idle, c)
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	// Without waiting for the idle ones to time out: a new connection takes
	// the place of the oldest idle one. (The first may wait for the
	// kernel's accept queue, full of the 2,000, to drain: seconds.)
	for i := range 20 {
		if code, err := getActive(t, client, base, "Bearer "+token); err != nil || code != http.StatusOK {
			t.Fatalf("request %d beside 2,000 idle connections: %d, %v", i, code, err)
		}
	}
	for _, c := range []struct {
		auth string
		want int
	}{{"bearer " + token, http.StatusOK}, {"BEARER " + token, http.StatusOK}, {"Basic " + token, http.StatusUnauthorized}} {
		waitFor(t, fmt.Sprintf("%q answered %d beside 2,000 idle connections", c.auth[:6], c.want), func() bool {
			code, err := getActive(t, client, base, c.auth)
			return err == nil && code == c.want
		})
	}
	if shed := metric(t, a, "tandem_notifier_push_refused_total"); shed < 1500 {
		t.Fatalf("%v connections shed or refused, want at least 1,500 of the 2,000 beyond the limit", shed)
	}
	// Every idle connection is closed by the server.
	buf := make([]byte, 1)
	for i, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(waitLimit))
		if _, err := c.Read(buf); err == nil {
			t.Fatalf("idle connection %d got data", i)
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("idle connection %d still open after %v", i, waitLimit)
		}
	}
}

// A request whose body stalls is cut off.
func TestPushStalledBodyCutOff(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	c, err := net.Dial("tcp", a.svc.PushAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/pairs/%s/sessions/s1/ack HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{\"v\":1", pairName, token)
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("a stalled body kept the connection open")
			}
			return
		}
	}
}

// With notifier.tls.* the endpoint speaks HTTPS only.
func TestPushTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	w := newWorld(t)
	a := w.start("a", func(o *notifier.Options) { o.Config.Notifier.TLS.Cert, o.Config.Notifier.TLS.Key = cert, key })
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, err := getActive(t, client, "https://"+a.svc.PushAddr(), "Bearer "+token); err != nil || code != http.StatusOK {
		t.Fatalf("https: %d %v", code, err)
	}
	if code, err := getActive(t, &http.Client{Timeout: 5 * time.Second}, "http://"+a.svc.PushAddr(), "Bearer "+token); err == nil && code == http.StatusOK {
		t.Fatal("plain HTTP served on a TLS endpoint")
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "push"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "push.crt"), filepath.Join(dir, "push.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return certFile, keyFile, pool
}

//go:build linux

package proctest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestNetnsLink: the link between a pair's namespaces carries TCP; a cut
// is silent (a connection attempt times out, it is not refused, and an open
// connection hears nothing and gets no error); a one-way cut drops only one
// direction; a heal restores the link; the namespaces are gone afterwards.
func TestNetnsLink(t *testing.T) {
	if err := NetnsAvailable(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	ns, err := setupNetns([2]string{"a", "b"}, false)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{ns.ns["a"], ns.ns["b"]}
	defer func() {
		if err := ns.remove(); err != nil {
			t.Error(err)
		}
		for _, n := range names {
			if _, err := os.Stat("/run/netns/" + n); err == nil {
				t.Errorf("namespace %s left behind", n)
			}
		}
	}()
	var l net.Listener
	if err := inNetns(ns.ns["b"], func() (err error) { l, err = net.Listen("tcp", ns.addr["b"]+":0"); return }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() { // echo server
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	addr := l.Addr().String()
	dial := func() (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		return dialIn(ctx, ns.ns["a"], "tcp", addr)
	}
	echo := func(c net.Conn) error {
		_ = c.SetDeadline(time.Now().Add(700 * time.Millisecond))
		if _, err := c.Write([]byte("x")); err != nil {
			return err
		}
		_, err := io.ReadFull(c, make([]byte, 1))
		return err
	}
	c, err := dial()
	if err != nil {
		t.Fatalf("dial over the link: %v", err)
	}
	defer c.Close()
	if err := echo(c); err != nil {
		t.Fatalf("echo over the link: %v", err)
	}
	for _, cut := range []struct {
		name string
		drop []string
	}{{"both ways", []string{"a", "b"}}, {"a→b", []string{"b"}}, {"b→a", []string{"a"}}} {
		for _, n := range cut.drop {
			if err := ns.drop(n, true); err != nil {
				t.Fatal(err)
			}
		}
		if c2, err := dial(); err == nil || !isTimeout(err) {
			if c2 != nil {
				c2.Close()
			}
			t.Errorf("cut %s: dial: %v, want a timeout (silence, not a refusal)", cut.name, err)
		}
		if err := echo(c); !isTimeout(err) {
			t.Errorf("cut %s: echo on the open connection: %v, want a timeout", cut.name, err)
		}
		for _, n := range cut.drop {
			if err := ns.drop(n, false); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
		if c, err = dial(); err != nil {
			t.Fatalf("healed after the cut %s: dial: %v", cut.name, err)
		}
		if err := echo(c); err != nil {
			t.Fatalf("healed after the cut %s: echo: %v", cut.name, err)
		}
	}
	c.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return err != nil && (errors.As(err, &ne) && ne.Timeout() || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "timeout"))
}

// TestNetnsWitnessLinks: with a witness, each node reaches the witness's
// namespace over a link of its own, which a cut of the pair's link does not
// touch, and the cleanup removes all three namespaces.
func TestNetnsWitnessLinks(t *testing.T) {
	if err := NetnsAvailable(); err != nil {
		t.Skipf("network namespaces: %v", err)
	}
	ns, err := setupNetns([2]string{"a", "b"}, true)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{ns.ns["a"], ns.ns["b"], ns.witness}
	defer func() {
		if err := ns.remove(); err != nil {
			t.Error(err)
		}
		for _, n := range names {
			if _, err := os.Stat("/run/netns/" + n); err == nil {
				t.Errorf("namespace %s left behind", n)
			}
		}
	}()
	var l net.Listener
	if err := inNetns(ns.witness, func() (err error) { l, err = net.Listen("tcp", "0.0.0.0:0"); return }); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	for _, n := range []string{"a", "b"} {
		if err := ns.drop(n, true); err != nil { // the pair's link cut both ways
			t.Fatal(err)
		}
	}
	for _, n := range []string{"a", "b"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := dialIn(ctx, ns.ns[n], "tcp", net.JoinHostPort(ns.witnessAddr[n], strconv.Itoa(port)))
		cancel()
		if err != nil {
			t.Errorf("%s cannot reach the witness during a cut: %v", n, err)
			continue
		}
		c.Close()
	}
}

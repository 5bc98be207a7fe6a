package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// A frozen server first in --server (it accepts the TCP connection and
// never says hello, as a SIGSTOPped node does) does not hold the command:
// it connects to the next one, however long the connect timeout.
func TestConnectPastAFrozenServer(t *testing.T) {
	frozen, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer frozen.Close()
	go func() { // accept and say nothing
		for {
			c, err := frozen.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	urls := splitServers("nats://" + frozen.Addr().String() + ", " + ns.ClientURL())
	done := make(chan error, 1)
	go func() {
		nc, err := connectFirst(urls, []nats.Option{nats.Timeout(time.Hour), nats.DontRandomize()})
		if err == nil {
			if nc.ConnectedUrl() != ns.ClientURL() {
				err = &net.AddrError{Err: "connected to " + nc.ConnectedUrl(), Addr: ns.ClientURL()}
			}
			nc.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("still connecting after a minute: the frozen server holds the connect")
	}
	// No server up: the error of a URL, on one line.
	if _, err := connectFirst([]string{"nats://127.0.0.1:1", "nats://127.0.0.1:2"}, []nats.Option{nats.Timeout(time.Second)}); err == nil {
		t.Fatal("connected to nothing")
	}
}

// An empty --server (or one of commas) is refused with a clear error: it
// never connects to nats.go's default URL, nats://127.0.0.1:4222.
func TestEmptyServerRefused(t *testing.T) {
	for _, server := range []string{"", ",", " , "} {
		for _, cmd := range [][]string{{"status", "--pair", "p"}, {"check", "--pair", "p"}, {"session", "--pair", "p", "--name", "s1", "--resource", `\\a\q`}} {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append(cmd, "--server", server, "--timeout", "200ms"), &out, &errOut)
			if code == 0 || !strings.Contains(errOut.String()+out.String(), "no server URL given") {
				t.Errorf("%v --server %q: exit %d, %q %q", cmd, server, code, out.String(), errOut.String())
			}
		}
	}
}

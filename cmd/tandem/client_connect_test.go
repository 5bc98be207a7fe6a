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

	"github.com/tandem-ha/tandem/pkg/session"
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
	urls, err := session.ServerURLs("nats://" + frozen.Addr().String() + ", " + ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
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
// never connects to nats.go's default URL, nats://127.0.0.1:4222. So is a
// URL that is not a NATS server's (it was tried, and "no node answers"
// followed), naming what is wrong with it.
func TestEmptyServerRefused(t *testing.T) {
	for _, c := range []struct{ server, want string }{
		{"", "no server URL given"}, {",", "no server URL given"}, {" , ", "no server URL given"},
		{"http://127.0.0.1:4222", `scheme "http" is not NATS's`},
		{"nats://127.0.0.1:4222,htp://127.0.0.1:4223", `"htp://127.0.0.1:4223": scheme "htp"`},
		{"nats://:4222", "no host"},
		{"nats://127.0.0.1:99999", `port "99999" is not a number from 1 to 65535`}, {"ftp://x", `--server: server URL "ftp://x"`},
	} {
		for _, cmd := range [][]string{{"status", "--pair", "p"}, {"check", "--pair", "p"}, {"session", "--pair", "p", "--name", "s1", "--resource", `\\a\q`}} {
			var out, errOut bytes.Buffer
			code := run(context.Background(), append(cmd, "--server", c.server, "--timeout", "200ms"), &out, &errOut)
			if code == 0 || !strings.Contains(errOut.String()+out.String(), c.want) {
				t.Errorf("%v --server %q: exit %d, %q %q; want %q", cmd, c.server, code, out.String(), errOut.String(), c.want)
			}
		}
	}
}

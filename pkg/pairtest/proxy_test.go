package pairtest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tandem-ha/tandem/pkg/natsnode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet is how long a test listens to be sure nothing arrives: a bound on a
// negative check, not a sleep before a positive one.
const quiet = 200 * time.Millisecond

func TestProxyForwards(t *testing.T) {
	p := startProxy(t, backend(t, echo))
	c := dial(t, p)
	send(t, c, "hello")
	expect(t, c, "hello")
}

func TestProxyCutHoldsThenHeals(t *testing.T) {
	p := startProxy(t, backend(t, echo))
	old := dial(t, p)
	send(t, old, "before")
	expect(t, old, "before")

	p.Cut()
	if !p.IsCut() {
		t.Fatal("not cut after Cut")
	}
	send(t, old, "held")
	expectSilence(t, old)
	fresh := dial(t, p) // accepted, but blackholed
	send(t, fresh, "new")
	expectSilence(t, fresh)

	p.Heal()
	expect(t, old, "held")
	expect(t, fresh, "new")
}

func TestProxyCutHidesClose(t *testing.T) {
	closeNow := make(chan struct{})
	p := startProxy(t, backend(t, func(c net.Conn) {
		<-closeNow
		c.Close()
	}))
	c := dial(t, p)
	waitConns(t, p, 2) // the client's and the backend's
	p.Cut()
	close(closeNow)
	expectSilence(t, c) // the backend's FIN is held
	p.Heal()
	if err := readErr(c, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Errorf("after heal: %v, want EOF", err)
	}
}

func TestProxyDeadBackend(t *testing.T) {
	p := startProxy(t, closedAddr(t))
	c := dial(t, p)
	if err := readErr(c, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Errorf("read through a proxy to a dead backend: %v, want EOF", err)
	}
}

func TestProxyProbe(t *testing.T) {
	ctx := context.Background()
	live := startProxy(t, backend(t, func(c net.Conn) { _, _ = c.Write([]byte("INFO {}\r\n")) }))
	dead := startProxy(t, closedAddr(t))
	check := func(p *Proxy, want natsnode.ProbeResult) {
		t.Helper()
		if got := natsnode.ProbePeer(ctx, p.URL(), 300*time.Millisecond); got != want {
			t.Errorf("probe through proxy (cut %v) = %v, want %v", p.IsCut(), got, want)
		}
	}
	check(live, natsnode.Alive)
	check(dead, natsnode.Gone)
	live.Cut()
	dead.Cut()
	check(live, natsnode.Unknown)
	check(dead, natsnode.Unknown)
	live.Heal()
	dead.Heal()
	check(live, natsnode.Alive)
	check(dead, natsnode.Gone)
}

func TestProxyCloseWhileCut(t *testing.T) {
	p := startProxy(t, backend(t, echo))
	c := dial(t, p)
	send(t, c, "x")
	expect(t, c, "x")
	p.Cut()
	dial(t, p)
	send(t, c, "held")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := readErr(c, 5*time.Second); err == nil || os.IsTimeout(err) {
		t.Errorf("client of a closed proxy: %v, want closed", err)
	}
}

func startProxy(t *testing.T, backend string) *Proxy {
	t.Helper()
	p, err := NewProxy(backend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func echo(c net.Conn) { _, _ = io.Copy(c, c) }

// backend listens on loopback and serves each connection with serve on its
// own goroutine until the test ends; it returns the address.
func backend(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex // guards conns
		conns []net.Conn
	)
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { serve(c) })
		}
	})
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return l.Addr().String()
}

func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func dial(t *testing.T, p *Proxy) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", p.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial proxy: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	_ = c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read %q: %v", want, err)
	}
	if string(buf) != want {
		t.Fatalf("read %q, want %q", buf, want)
	}
}

func expectSilence(t *testing.T, c net.Conn) {
	t.Helper()
	if err := readErr(c, quiet); !os.IsTimeout(err) {
		t.Fatalf("cut proxy let something through: %v", err)
	}
}

// readErr reads one byte within d and returns the error (nil if a byte came).
func readErr(c net.Conn, d time.Duration) error {
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	return err
}

// waitConns waits until the proxy tracks n connections.
func waitConns(t *testing.T, p *Proxy, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		p.mu.Lock()
		got := len(p.conns)
		p.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("proxy has %d connections, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

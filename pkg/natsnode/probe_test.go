package natsnode

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

const probeTimeout = 300 * time.Millisecond

func TestProbePeer(t *testing.T) {
	ctx := context.Background()
	s := startNode(t, "a", nil)
	stopped := startNode(t, "b", nil)
	stoppedURL := stopped.LeafURL()
	stopped.Shutdown()

	cases := []struct {
		name string
		url  string
		want ProbeResult
	}{
		{"running server", s.LeafURL(), Alive},
		{"running server, host:port", hostPort(s.LeafURL()), Alive},
		{"shut down server", stoppedURL, Gone},
		{"closed port", "nats-leaf://" + closedAddr(t), Gone},
		{"closes at once", "nats-leaf://" + fakePeer(t, func(c net.Conn) { c.Close() }), Gone},
		{"silent", "nats-leaf://" + fakePeer(t, nil), Unknown},
		{"not nats", "nats-leaf://" + fakePeer(t, func(c net.Conn) { _, _ = c.Write([]byte("HTTP/1.1 400\r\n")) }), Unknown},
		{"bad url", "nats-leaf://%zz", Unknown},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := ProbePeer(ctx, c.url, probeTimeout); got != c.want {
				t.Errorf("ProbePeer(%s) = %v, want %v", c.url, got, c.want)
			}
		})
	}
}

func TestProbePeerCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	addr := fakePeer(t, nil)
	time.AfterFunc(20*time.Millisecond, cancel)
	t0 := time.Now()
	if got := ProbePeer(ctx, addr, time.Minute); got != Unknown {
		t.Errorf("cancelled probe = %v, want unknown", got)
	}
	if d := time.Since(t0); d > 10*time.Second {
		t.Errorf("cancelled probe returned after %v", d)
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// fakePeer listens on loopback and runs serve on each connection (nil:
// hold it silently) until the test ends. It returns the address.
func fakePeer(t *testing.T, serve func(net.Conn)) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex // guards conns
		conns []net.Conn
		wg    sync.WaitGroup
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
			if serve != nil {
				serve(c)
			}
		}
	})
	t.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String()
}

// hostPort is the host:port of a URL.
func hostPort(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	return p.Host
}

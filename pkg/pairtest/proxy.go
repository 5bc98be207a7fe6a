package pairtest

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the proxy's dial to its backend.
const dialTimeout = 2 * time.Second

// Proxy forwards TCP connections to a backend and can partition silently.
//
// While forwarding, each accepted connection is joined to a new connection
// to the backend; when the backend refuses, the accepted connection is closed
// at once (a dead peer, as a probe sees it). While cut, nothing crosses: new
// connections are accepted but left unanswered, established ones stop
// forwarding, and an end that closes is not reported to the other end (no FIN
// or RST, as when a cable is pulled). Heal lets everything held continue, as
// TCP retransmission would: held connections dial the backend, held bytes and
// closes are delivered.
//
// One goroutine accepts; each connection has two copying goroutines.
// Close stops them all.
type Proxy struct {
	ln      net.Listener
	backend string
	done    chan struct{} // closed by Close
	wg      sync.WaitGroup

	mu     sync.Mutex // guards the fields below
	healed chan struct{}
	conns  map[net.Conn]struct{}
	closed bool
}

// NewProxy listens on a free loopback port and forwards to backend
// (host:port).
func NewProxy(backend string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	p := &Proxy{
		ln:      ln,
		backend: backend,
		done:    make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
	p.wg.Go(p.accept)
	return p, nil
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the proxy as a leafnode URL, nats-leaf://host:port.
func (p *Proxy) URL() string { return "nats-leaf://" + p.Addr() }

// Backend is the address the proxy forwards to.
func (p *Proxy) Backend() string { return p.backend }

// Cut stops forwarding silently. It is a no-op when already cut.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.healed == nil {
		p.healed = make(chan struct{})
	}
}

// Heal resumes forwarding. It is a no-op when not cut.
func (p *Proxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.healed != nil {
		close(p.healed)
		p.healed = nil
	}
}

// IsCut reports whether the proxy is cut.
func (p *Proxy) IsCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healed != nil
}

// Close stops listening, closes every connection and waits for the proxy's
// goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	close(p.done)
	err := p.ln.Close()
	for c := range conns {
		c.Close()
	}
	p.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close proxy: %w", err)
	}
	return nil
}

// pass waits while the proxy is cut. It reports false once the proxy is
// closed.
func (p *Proxy) pass() bool {
	p.mu.Lock()
	healed := p.healed
	p.mu.Unlock()
	if healed == nil {
		select {
		case <-p.done:
			return false
		default:
			return true
		}
	}
	select {
	case <-healed:
		return true
	case <-p.done:
		return false
	}
}

// track registers c for Close; it reports false (and closes c) once closed.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	c.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, c)
}

// accept runs until the listener closes.
func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			return
		}
		p.wg.Go(func() { p.serve(c) })
	}
}

// serve joins c to a new backend connection once the proxy lets it pass.
func (p *Proxy) serve(c net.Conn) {
	defer p.untrack(c)
	if !p.pass() {
		return
	}
	b, err := net.DialTimeout("tcp", p.backend, dialTimeout)
	if err != nil {
		return // backend dead: c closes at once
	}
	if !p.track(b) {
		return
	}
	defer p.untrack(b)
	var back sync.WaitGroup
	back.Go(func() { p.copy(c, b) })
	p.copy(b, c)
	back.Wait()
}

// copy forwards src to dst while the proxy lets it pass, then closes both.
// While cut, bytes read and the end of src are held back.
func (p *Proxy) copy(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			p.pass() // no FIN while cut
			return
		}
	}
}

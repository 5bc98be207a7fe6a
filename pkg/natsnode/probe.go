package natsnode

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ProbeResult is what a probe learned about the process behind a leaf URL.
type ProbeResult int

// Probe results.
const (
	// Unknown: silence until the deadline, an unreachable network, or
	// something that is not a NATS leaf port. Maybe the network, not the peer.
	Unknown ProbeResult = iota
	// Alive: the peer's server sent its INFO.
	Alive
	// Gone: the host answered that nothing listens (refused, reset, or closed
	// before a byte): the peer's process is dead.
	Gone
)

func (r ProbeResult) String() string {
	switch r {
	case Alive:
		return "alive"
	case Gone:
		return "gone"
	default:
		return "unknown"
	}
}

// ProbePeer tells whether the process behind leafURL (nats-leaf://host:port
// or host:port) is alive: it dials, reads the first bytes, and hangs up,
// within timeout and ctx. It sends nothing; the peer's server only notices a
// connection that closed before its CONNECT.
func ProbePeer(ctx context.Context, leafURL string, timeout time.Duration) ProbeResult {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", probeAddr(leafURL))
	if err != nil {
		return classify(err, 0)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl) // a failure shows as a read error
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 4)
	n, err := io.ReadFull(conn, buf)
	if n > 0 && strings.HasPrefix("INFO", string(buf[:n])) {
		return Alive
	}
	if n > 0 {
		return Unknown // someone answers, but not a NATS server
	}
	return classify(err, n)
}

// classify maps a dial or read error with n bytes read to a result.
func classify(err error, n int) ProbeResult {
	switch {
	case n == 0 && errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET):
		return Gone
	default:
		return Unknown
	}
}

// probeAddr is the host:port of a leaf URL.
func probeAddr(leafURL string) string {
	if !strings.Contains(leafURL, "://") {
		return leafURL
	}
	u, err := url.Parse(leafURL)
	if err != nil {
		return leafURL // the dial fails: Unknown
	}
	return u.Host
}

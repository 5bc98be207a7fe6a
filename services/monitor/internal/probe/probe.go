// Package probe runs one health check of the protected service (F15) once:
// an exec check runs its command the way the hooks run theirs (same shell,
// environment and time limit, internal/hooks), an http check wants a 2xx
// answer, a tcp check an accepted connection. What the outcome means — fall,
// rise, handover — is the failover machine's business; the monitor runs each
// check on its schedule and steps the results in.
package probe

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/services/monitor/internal/hooks"
)

// MaxOutput bounds the output line kept of a check: it travels in every
// heartbeat.
const MaxOutput = 200

// Env is what an exec check finds in its environment, as a hook does.
type Env struct {
	Pair, Node, Role, State string
	Epoch                   uint64
}

// Result is the outcome of one run.
type Result struct {
	OK     bool
	Output string // one line: the command's last line, the HTTP status, or the error
	Took   time.Duration
}

// Run runs c once, within c.Timeout.
func Run(ctx context.Context, c config.Check, env Env) Result {
	start := time.Now()
	var r Result
	switch c.Kind() {
	case "exec":
		r = runExec(ctx, c, env)
	case "http":
		r = runHTTP(ctx, c)
	case "tcp":
		r = runTCP(ctx, c)
	default:
		r = Result{Output: "no exec, http or tcp"}
	}
	r.Took = time.Since(start)
	r.Output = LastLine(r.Output)
	return r
}

func runExec(ctx context.Context, c config.Check, env Env) Result {
	h := hooks.Run(ctx, hooks.Spec{Command: c.Exec, Pair: env.Pair, Node: env.Node, Role: env.Role,
		State: env.State, Epoch: env.Epoch, Timeout: c.Timeout})
	if h.Err != nil {
		out := LastLine(h.Output)
		if out == "" || h.ExitCode <= 0 { // killed, or did not start
			return Result{Output: h.Err.Error()}
		}
		return Result{Output: fmt.Sprintf("exit %d: %s", h.ExitCode, out)}
	}
	return Result{OK: true, Output: h.Output}
}

// client makes a new connection for every request: a check must see a
// server that stopped accepting, not a kept-alive connection to it.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, Proxy: nil}}

func runHTTP(ctx context.Context, c config.Check) Result {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.HTTP, nil)
	if err != nil {
		return Result{Output: err.Error()}
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			return Result{Output: fmt.Sprintf("no answer within %v", c.Timeout)}
		}
		return Result{Output: err.Error()}
	}
	_ = resp.Body.Close()
	return Result{OK: resp.StatusCode >= 200 && resp.StatusCode < 300, Output: "HTTP " + resp.Status}
}

func runTCP(ctx context.Context, c config.Check) Result {
	d := net.Dialer{Timeout: c.Timeout}
	conn, err := d.DialContext(ctx, "tcp", c.TCP)
	if err != nil {
		return Result{Output: err.Error()}
	}
	_ = conn.Close()
	return Result{OK: true, Output: "connected to " + c.TCP}
}

// LastLine is the last non-empty line of s, at most MaxOutput bytes.
func LastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := strings.TrimSpace(lines[len(lines)-1])
	if len(l) > MaxOutput {
		l = l[:MaxOutput]
	}
	return strings.ToValidUTF8(l, "?")
}

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/agent/plan"
)

// CUPS is the driver of the local CUPS queues (Linux, macOS), through the
// CUPS command-line tools: `lpstat -v` lists each queue's device URI,
// `lpstat -d` the default destination, and `lpadmin -p QUEUE -v URI`
// repoints a queue in one CUPS-Add-Modify-Printer operation that keeps its
// name, options and defaults, description, location, sharing and the
// system's and users' default printer (deleting and adding it again would
// lose them). Queues are never added or deleted.
type CUPS struct {
	// Server is the CUPS server (CUPS_SERVER: a host[:port] or the path of
	// a unix socket); "" for the tools' default.
	Server string
	// LPStat and LPAdmin are the tools (default: found in PATH, then
	// /usr/sbin for lpadmin).
	LPStat, LPAdmin string
}

var _ Driver = (*CUPS)(nil)

// List returns every local queue with its device URI.
func (c *CUPS) List(ctx context.Context) ([]plan.Connection, error) {
	out, err := c.run(ctx, c.lpstat(), "-v")
	if err != nil {
		if strings.Contains(err.Error(), "No destinations added") {
			return nil, nil
		}
		return nil, err
	}
	conns, err := parseDevices(out)
	if err != nil {
		return nil, err
	}
	def, err := c.run(ctx, c.lpstat(), "-d")
	if err != nil {
		return nil, err
	}
	if name, ok := parseDefault(def); ok {
		for i := range conns {
			conns[i].Default = conns[i].ID == name
		}
	}
	return conns, nil
}

// Apply repoints one queue and checks that CUPS took the new URI.
func (c *CUPS) Apply(ctx context.Context, s Step) error {
	if err := checkArg(s.ID); err != nil {
		return fmt.Errorf("queue name: %w", err)
	}
	if err := checkArg(s.To); err != nil {
		return fmt.Errorf("device URI: %w", err)
	}
	if _, err := c.run(ctx, c.lpadmin(), "-p", s.ID, "-v", s.To); err != nil {
		return err
	}
	out, err := c.run(ctx, c.lpstat(), "-v", s.ID)
	if err != nil {
		return fmt.Errorf("check queue %s: %w", s.ID, err)
	}
	conns, err := parseDevices(out)
	if err != nil || len(conns) != 1 || conns[0].Address != s.To {
		return fmt.Errorf("queue %s: CUPS reports %q after the change", s.ID, strings.TrimSpace(string(out)))
	}
	return nil
}

// checkArg refuses what a tool could read as an option, or what is not one
// printable word.
func checkArg(s string) error {
	if s == "" || strings.HasPrefix(s, "-") || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("%q refused: empty, an option, or blanks", s)
	}
	return nil
}

func (c *CUPS) lpstat() string {
	if c.LPStat != "" {
		return c.LPStat
	}
	return "lpstat"
}

func (c *CUPS) lpadmin() string {
	if c.LPAdmin != "" {
		return c.LPAdmin
	}
	if p, err := exec.LookPath("lpadmin"); err == nil {
		return p
	}
	return "/usr/sbin/lpadmin"
}

// run runs a CUPS tool in the C locale (its output is parsed) against the
// configured server.
func (c *CUPS) run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, tool, args...)
	env := append(os.Environ(), "LANG=C", "LC_ALL=C")
	if c.Server != "" {
		env = append(env, "CUPS_SERVER="+c.Server)
	}
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = strings.TrimSpace(stdout.String())
		}
		return nil, fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, msg)
	}
	return stdout.Bytes(), nil
}

// parseDevices reads `lpstat -v`: "device for QUEUE: URI" per line.
func parseDevices(out []byte) ([]plan.Connection, error) {
	var conns []plan.Connection
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		rest, ok := strings.CutPrefix(line, "device for ")
		name, uri, ok2 := strings.Cut(rest, ": ")
		if !ok || !ok2 || name == "" {
			return nil, fmt.Errorf("lpstat -v: unexpected line %q", line)
		}
		conns = append(conns, plan.Connection{ID: name, Address: strings.TrimSpace(uri)})
	}
	return conns, nil
}

// parseDefault reads `lpstat -d`: "system default destination: QUEUE".
func parseDefault(out []byte) (string, bool) {
	s := strings.TrimSpace(string(out))
	if name, ok := strings.CutPrefix(s, "system default destination: "); ok {
		return name, true
	}
	return "", false
}

// errNoCUPS is returned when the CUPS tools are not installed.
var errNoCUPS = errors.New("the CUPS tools (lpstat, lpadmin) are not installed")

// Check says whether the CUPS tools are installed.
func (c *CUPS) Check() error {
	if _, err := exec.LookPath(c.lpstat()); err != nil {
		return fmt.Errorf("%w: %v", errNoCUPS, err)
	}
	if _, err := exec.LookPath(c.lpadmin()); err != nil {
		return fmt.Errorf("%w: %v", errNoCUPS, err)
	}
	return nil
}

package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/agent/plan"
)

// Exec is the driver for clients that are not printers (a NetPhone client
// re-registering with the active server): the session's resources are the
// addresses given at start, and switching one runs Command with
// TANDEM_RESOURCE (the resource's address at start, its name), TANDEM_FROM
// and TANDEM_TO (its old and new address), TANDEM_EPOCH, TANDEM_ACTIVE and
// TANDEM_FAILED (the nodes) in the environment. Exit status 0 means
// switched; anything else leaves the resource where it was, with the
// command's output as the reason. Command runs with /bin/sh -c (cmd /C on
// Windows).
type Exec struct {
	Command string

	mu    sync.Mutex // guards conns
	conns []plan.Connection
}

var _ Driver = (*Exec)(nil)

// NewExec returns the driver of the given resources (the first is the
// default when def is "").
func NewExec(command string, resources []string, def string) (*Exec, error) {
	if strings.TrimSpace(command) == "" {
		return nil, errors.New("--exec: a command is required")
	}
	if len(resources) == 0 {
		return nil, errors.New("at least one --resource is required")
	}
	e := &Exec{Command: command}
	for i, r := range resources {
		e.conns = append(e.conns, plan.Connection{ID: r, Address: r, Default: r == def || def == "" && i == 0})
	}
	return e, nil
}

// List returns the resources where the command last moved them.
func (e *Exec) List(context.Context) ([]plan.Connection, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]plan.Connection(nil), e.conns...), nil
}

// Apply runs the command for one resource and records the move when it
// succeeds.
func (e *Exec) Apply(ctx context.Context, s Step) error {
	var cmd *exec.Cmd
	if runtime.GOOS == "windows" {
		cmd = exec.CommandContext(ctx, "cmd", "/C", e.Command)
	} else {
		cmd = exec.CommandContext(ctx, "/bin/sh", "-c", e.Command)
	}
	cmd.Env = append(os.Environ(), "TANDEM_RESOURCE="+s.ID, "TANDEM_FROM="+s.From, "TANDEM_TO="+s.To,
		"TANDEM_EPOCH="+strconv.FormatUint(s.Epoch, 10), "TANDEM_ACTIVE="+s.Active, "TANDEM_FAILED="+s.Failed)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second // do not wait for grandchildren holding the pipes
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 160 {
			msg = msg[len(msg)-160:]
		}
		return fmt.Errorf("command for %s: %w: %s", s.ID, err, msg)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for i := range e.conns {
		if e.conns[i].ID == s.ID {
			e.conns[i].Address = s.To
		}
	}
	return nil
}

// Package hooks runs the commands configured for transitions (F11):
// hooks.on_active and hooks.on_passive, with TANDEM_PAIR, TANDEM_NODE,
// TANDEM_ROLE, TANDEM_STATE and TANDEM_EPOCH in their environment and a time
// limit. This is how the protected service is started and stopped.
//
// A command is run by /bin/sh -c when the machine has a shell; on a machine
// without one (a scratch container) it is split on white space and run
// directly.
package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Spec is what to run for one transition.
type Spec struct {
	Command string
	Pair    string
	Node    string
	Role    string
	State   string
	Epoch   uint64
	Timeout time.Duration
}

// Result is the outcome of one run.
type Result struct {
	Command  string
	ExitCode int // -1 when the command did not run to an exit
	Duration time.Duration
	Output   string // the last 2 KiB of stdout and stderr
	Err      error  // nil on exit code 0
}

const outputTail = 2 << 10

var shell = "/bin/sh"

// Run runs the command and waits for it, at most Timeout (then it is killed).
func Run(ctx context.Context, s Spec) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, s.Timeout)
	defer cancel()
	cmd, err := command(ctx, s.Command)
	if err != nil {
		return Result{Command: s.Command, ExitCode: -1, Err: err}
	}
	cmd.Env = append(os.Environ(),
		"TANDEM_PAIR="+s.Pair, "TANDEM_NODE="+s.Node, "TANDEM_ROLE="+s.Role,
		"TANDEM_STATE="+s.State, "TANDEM_EPOCH="+strconv.FormatUint(s.Epoch, 10))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second // do not wait for grandchildren holding the pipes
	err = cmd.Run()
	r := Result{Command: s.Command, Duration: time.Since(start), Output: tail(out.Bytes()), ExitCode: -1}
	if cmd.ProcessState != nil {
		r.ExitCode = cmd.ProcessState.ExitCode()
	}
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		r.Err = fmt.Errorf("hook %q killed after the time limit of %v", s.Command, s.Timeout)
	case err != nil:
		r.Err = fmt.Errorf("hook %q: %w", s.Command, err)
	}
	return r
}

func command(ctx context.Context, line string) (*exec.Cmd, error) {
	if strings.TrimSpace(line) == "" {
		return nil, errors.New("empty hook command")
	}
	if _, err := os.Stat(shell); err == nil {
		return exec.CommandContext(ctx, shell, "-c", line), nil
	}
	f := strings.Fields(line)
	return exec.CommandContext(ctx, f[0], f[1:]...), nil
}

func tail(b []byte) string {
	if len(b) > outputTail {
		b = b[len(b)-outputTail:]
	}
	return string(b)
}

//go:build linux

package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is one run of a node's process.
type proc struct {
	cmd       *exec.Cmd
	pid       int
	started   time.Time
	logOffset int64         // where this run's output starts in the node's log
	done      chan struct{} // closed once the process has exited and been reaped
	state     *os.ProcessState
	waitErr   error
}

// exited reports whether the process has exited.
func (pr *proc) exited() bool {
	select {
	case <-pr.done:
		return true
	default:
		return false
	}
}

// wait waits up to d for the process to exit.
func (pr *proc) wait(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-pr.done:
		return true
	case <-tm.C:
		return false
	}
}

// kill kills the process (SIGKILL also ends a stopped one) unless it has
// exited, and waits for it to be reaped.
func (pr *proc) kill(wait time.Duration) error {
	if pr.exited() {
		return nil
	}
	if err := pr.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill pid %d: %w", pr.pid, err)
	}
	if !pr.wait(wait) {
		return fmt.Errorf("pid %d did not exit within %v of SIGKILL", pr.pid, wait)
	}
	return nil
}

// dumpStacks asks a running process for its goroutines' stacks (SIGQUIT:
// the Go runtime writes them to stderr, the node's log, and exits), waiting
// up to d: after a failure, they show where a node was stuck.
func (pr *proc) dumpStacks(d time.Duration) {
	if pr.exited() {
		return
	}
	_ = pr.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot dump
	if pr.cmd.Process.Signal(syscall.SIGQUIT) == nil {
		pr.wait(d)
	}
}

// describe says how the process ended, or that it runs.
func (pr *proc) describe() string {
	if !pr.exited() {
		return fmt.Sprintf("pid %d running", pr.pid)
	}
	return fmt.Sprintf("pid %d exited: %v", pr.pid, pr.state)
}

// StartNode starts node's process and waits until its admin endpoint
// answers /healthz (its NATS server and services run). The node must not be
// running.
func (p *Pair) StartNode(node string) {
	p.t.Helper()
	if err := p.startNode(p.Node(node)); err != nil {
		p.t.Fatalf("proctest: %v", err)
	}
}

// errPortTaken says a node could not bind one of its ports.
var errPortTaken = errors.New("a port of the node is taken")

func (p *Pair) startNode(n *Node) error {
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("start %s: already running (%s)", n.Name, n.proc.describe())
	}
	pr, err := p.spawn(n)
	if err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	n.proc = pr
	if err := p.waitHealthy(n); err != nil {
		return fmt.Errorf("start %s: %w\n%s", n.Name, err, tailFile(n.LogPath, 30))
	}
	return nil
}

// portTaken reports whether this run of the node has logged that it could
// not bind a port (it then still waits for its NATS server a while before it
// exits).
func (pr *proc) portTaken(logPath string) bool {
	f, err := os.Open(logPath)
	if err != nil {
		return false
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, pr.logOffset, 1<<20))
	return err == nil && bytes.Contains(b, []byte("address already in use"))
}

// spawn starts n's process: its own process group, output appended to its
// log, the environment without TANDEM_* variables (the file is the whole
// configuration), and SIGKILL should the harness's process die.
func (p *Pair) spawn(n *Node) (*proc, error) {
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close() // the child has its own copy
	n.starts++
	fmt.Fprintf(f, "=== proctest: start %d of node %s at %s ===\n", n.starts, n.Name, time.Now().Format(time.RFC3339Nano))
	offset, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	argv := []string{p.bin, "node", "--config", n.Config}
	if p.ns != nil {
		argv = p.ns.command(n.Name, argv...) // ip netns exec execs tandem: the PID is tandem's
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = nodeEnv(os.Environ())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	pr := &proc{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), logOffset: offset, done: make(chan struct{})}
	track(pr)
	go func() {
		pr.waitErr = cmd.Wait()
		pr.state = cmd.ProcessState
		untrack(pr)
		close(pr.done)
	}()
	return pr, nil
}

func nodeEnv(environ []string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "TANDEM_") {
			out = append(out, kv)
		}
	}
	return out
}

// waitHealthy polls n's /healthz until it answers 200, the process exits, or
// the harness's wait bound passes.
func (p *Pair) waitHealthy(n *Node) error {
	client := p.httpClient(n.Name, time.Second)
	defer client.CloseIdleConnections()
	url := "http://" + n.AdminAddr + "/healthz"
	deadline := time.Now().Add(p.opts.Wait)
	for {
		if n.proc.portTaken(n.LogPath) {
			return fmt.Errorf("%w (%s)", errPortTaken, n.proc.describe())
		}
		if n.proc.exited() {
			return errors.New(n.proc.describe())
		}
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("/healthz did not answer within %v (last: %v)", p.opts.Wait, err)
		}
		if n.proc.wait(20 * time.Millisecond) {
			return errors.New(n.proc.describe())
		}
	}
}

// running returns node's process, failing the test when it does not run.
func (p *Pair) running(node string) *proc {
	p.t.Helper()
	n := p.Node(node)
	if n.proc == nil || n.proc.exited() {
		what := "never started"
		if n.proc != nil {
			what = n.proc.describe()
		}
		p.t.Fatalf("proctest: node %s does not run (%s)", node, what)
	}
	return n.proc
}

// Running reports whether node's process runs (or is stopped by Stop).
func (p *Pair) Running(node string) bool {
	n := p.Node(node)
	return n.proc != nil && !n.proc.exited()
}

// PID is the PID of node's running process.
func (p *Pair) PID(node string) int {
	p.t.Helper()
	return p.running(node).pid
}

// signal sends sig to node's process and returns the time just before the
// system call.
func (p *Pair) signal(node string, sig syscall.Signal) time.Time {
	p.t.Helper()
	pr := p.running(node)
	at := time.Now()
	if err := pr.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("proctest: %v to %s (pid %d): %v", sig, node, pr.pid, err)
	}
	return at
}

// Kill9 kills node's process with SIGKILL, as a crash, and waits until it
// is reaped. It returns the time just before the kill.
func (p *Pair) Kill9(node string) time.Time {
	p.t.Helper()
	pr := p.running(node)
	at := p.signal(node, syscall.SIGKILL)
	if !pr.wait(p.opts.Wait) {
		p.t.Fatalf("proctest: %s (pid %d) did not die within %v of SIGKILL", node, pr.pid, p.opts.Wait)
	}
	p.Nodes[node].endCutLine()
	return at
}

// endCutLine ends the log's last line if a SIGKILL cut it mid-write (the
// kernel stops a write to a file at a page boundary on a fatal signal), so
// that the next start's first line begins a line of its own, and remembers
// it: checkLogs accepts a line a kill cut, and only that one.
func (n *Node) endCutLine() {
	b, err := os.ReadFile(n.LogPath)
	if err != nil || len(b) == 0 || b[len(b)-1] == '\n' {
		return
	}
	f, err := os.OpenFile(n.LogPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Write([]byte("\n")); err != nil {
		return
	}
	if n.cut == nil {
		n.cut = map[string]bool{}
	}
	n.cut[string(bytes.TrimSpace(b[bytes.LastIndexByte(b, '\n')+1:]))] = true
}

// Stop freezes node's process with SIGSTOP, as a hung process or a paused
// VM looks to its peer, and waits until the kernel reports it stopped. It
// returns the time just before the signal.
func (p *Pair) Stop(node string) time.Time {
	p.t.Helper()
	pid := p.PID(node)
	at := p.signal(node, syscall.SIGSTOP)
	p.waitProcState(node, pid, func(s byte) bool { return s == 'T' }, "stopped")
	return at
}

// Cont resumes node's process after Stop and waits until the kernel reports
// it no longer stopped. It returns the time just before the signal.
func (p *Pair) Cont(node string) time.Time {
	p.t.Helper()
	pid := p.PID(node)
	at := p.signal(node, syscall.SIGCONT)
	p.waitProcState(node, pid, func(s byte) bool { return s != 'T' }, "resumed")
	return at
}

func (p *Pair) waitProcState(node string, pid int, ok func(byte) bool, what string) {
	p.t.Helper()
	deadline := time.Now().Add(p.opts.Wait)
	for {
		st, err := readProcState(pid)
		if err != nil {
			p.t.Fatalf("proctest: %s (pid %d): %v", node, pid, err)
		}
		if ok(st) {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("proctest: %s (pid %d) not %s within %v (state %c)", node, pid, what, p.opts.Wait, st)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
}

// Term sends SIGTERM to node's process and waits for it to exit; anything
// but a clean exit with status 0 within the harness's wait bound fails the
// test.
func (p *Pair) Term(node string) {
	p.t.Helper()
	n := p.Node(node)
	pr := p.running(node)
	p.signal(node, syscall.SIGTERM)
	if !pr.wait(p.opts.Wait) {
		_ = pr.kill(p.opts.Wait)
		p.t.Fatalf("proctest: %s (pid %d) did not exit within %v of SIGTERM\n%s", node, pr.pid, p.opts.Wait, tailFile(n.LogPath, 30))
	}
	if code := pr.state.ExitCode(); code != 0 {
		p.t.Fatalf("proctest: %s (pid %d) exited with %v after SIGTERM, want status 0\n%s", node, pr.pid, pr.state, tailFile(n.LogPath, 30))
	}
}

// Restart starts node again with the same configuration, ports and data
// directory; a node that still runs is first stopped with Term.
func (p *Pair) Restart(node string) {
	p.t.Helper()
	if p.Running(node) {
		p.Term(node)
	}
	p.StartNode(node)
}

// ExitState is how node's latest process ended (nil while it runs).
func (p *Pair) ExitState(node string) *os.ProcessState {
	n := p.Node(node)
	if n.proc == nil || !n.proc.exited() {
		return nil
	}
	return n.proc.state
}

// CLIResult is the outcome of one run of the tandem command.
type CLIResult struct {
	Stdout, Stderr string
	Code           int // -1 when it did not exit normally
	Err            error
}

// CLI runs the tandem binary with args (e.g. "status", "--pair", p.Name,
// "--json", "--server", p.Servers()) and waits for it, at most the harness's
// wait bound.
//
// With Options.Netns it runs in the master's namespace, as on the master's
// machine: it reaches the standby over the pair's link (see CLIIn).
func (p *Pair) CLI(args ...string) CLIResult {
	return p.CLIIn(p.Master, args...)
}

// CLIIn runs the tandem binary as CLI does, on node's machine: in node's
// namespace with Options.Netns (elsewhere node makes no difference).
func (p *Pair) CLIIn(node string, args ...string) CLIResult {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.Wait)
	defer cancel()
	argv := append([]string{p.bin}, args...)
	if p.ns != nil {
		argv = p.ns.command(node, argv...)
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = nodeEnv(os.Environ())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := CLIResult{Stdout: out.String(), Stderr: errOut.String(), Code: -1, Err: err}
	if cmd.ProcessState != nil {
		r.Code = cmd.ProcessState.ExitCode()
	}
	return r
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

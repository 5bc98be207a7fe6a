//go:build linux

package main

// The CUPS session agent against a real, private cupsd and a real pair of
// `tandem node` processes (SPEC N8).

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// privateCUPS is a cupsd of the test's own, on a unix socket in a
// temporary directory.
type privateCUPS struct {
	t    *testing.T
	sock string
}

// startCUPS starts a private cupsd, or skips the test when cupsd is not
// installed (make apt-deps installs it).
func startCUPS(t *testing.T) *privateCUPS {
	t.Helper()
	cupsd, err := exec.LookPath("cupsd")
	if err != nil {
		if cupsd, err = exec.LookPath("/usr/sbin/cupsd"); err != nil {
			t.Skip("cupsd is not installed (Debian: apt-get install cups-daemon cups-client, or make apt-deps as root)")
		}
	}
	for _, tool := range []string{"lpstat", "lpoptions"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: apt-get install cups-client, or make apt-deps as root)", tool)
		}
	}
	// A short directory: a unix socket path has a limit of 108 bytes.
	dir, err := os.MkdirTemp("", "tandem-cups-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, d := range []string{"spool", "cache", "state", "log", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sock := filepath.Join(dir, "cups.sock")
	conf := fmt.Sprintf(`Listen %s
WebInterface No
Browsing No
LogLevel warn
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  <Limit All>
    Order deny,allow
  </Limit>
</Policy>
`, sock)
	files := fmt.Sprintf(`ServerRoot %[1]s
RequestRoot %[1]s/spool
CacheDir %[1]s/cache
StateDir %[1]s/state
AccessLog %[1]s/log/access_log
ErrorLog %[1]s/log/error_log
PageLog %[1]s/log/page_log
TempDir %[1]s/tmp
SystemGroup root
`, dir)
	for name, text := range map[string]string{"cupsd.conf": conf, "cups-files.conf": files} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(cupsd, "-f", "-c", filepath.Join(dir, "cupsd.conf"), "-s", filepath.Join(dir, "cups-files.conf"))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start cupsd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	c := &privateCUPS{t: t, sock: sock}
	deadline := time.Now().Add(waitLimit)
	for {
		// lpstat -r exits 0 either way; it says "scheduler is running".
		if out, err := c.try("lpstat", "-r"); err == nil && strings.TrimSpace(out) == "scheduler is running" {
			return c
		}
		select {
		case <-exited:
			t.Fatalf("cupsd exited: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("cupsd does not answer on %s: %s", sock, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (c *privateCUPS) env() []string {
	return append(os.Environ(), "CUPS_SERVER="+c.sock, "LANG=C", "LC_ALL=C")
}

func (c *privateCUPS) try(tool string, args ...string) (string, error) {
	cmd := exec.Command(tool, args...)
	cmd.Env = c.env()
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *privateCUPS) run(tool string, args ...string) string {
	c.t.Helper()
	out, err := c.try(tool, args...)
	if err != nil {
		c.t.Fatalf("%s %s: %v: %s", tool, strings.Join(args, " "), err, out)
	}
	return out
}

// devices is `lpstat -v`: queue → device URI.
func (c *privateCUPS) devices() map[string]string {
	c.t.Helper()
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(c.run("lpstat", "-v")), "\n") {
		name, uri, ok := strings.Cut(strings.TrimPrefix(line, "device for "), ": ")
		if ok {
			m[name] = uri
		}
	}
	return m
}

// settings is everything CUPS reports of a queue but its device URI and
// the times of its last changes: options and defaults, description,
// location, sharing, state.
func (c *privateCUPS) settings(queue string) string {
	c.t.Helper()
	var keep []string
	for _, f := range splitOptions(c.run("lpoptions", "-p", queue)) {
		switch {
		case strings.HasPrefix(f, "device-uri="), strings.HasSuffix(strings.SplitN(f, "=", 2)[0], "-time"):
		default:
			keep = append(keep, f)
		}
	}
	sort.Strings(keep)
	return strings.Join(keep, " ")
}

// splitOptions splits lpoptions' output at blanks outside quotes.
func splitOptions(s string) []string {
	var out []string
	var cur strings.Builder
	quote := rune(0)
	for _, r := range strings.TrimSpace(s) {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote == 0 && (r == '\'' || r == '"'):
			quote = r
		case quote == 0 && r == ' ':
			out = append(out, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	return append(out, cur.String())
}

// sessionProc is a `tandem session` process.
type sessionProc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex // guards out
	out    bytes.Buffer
	stderr bytes.Buffer
	exited chan struct{}
}

func (s *sessionProc) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.Write(p)
}

func (s *sessionProc) lines() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.out.String()
}

// TestSessionCUPS: a workstation's CUPS queues on the master's print server
// (with colour and duplex defaults, a description, a location, and one of
// them the default printer) and a queue on an unrelated server; a
// `tandem session --driver cups` agent. The application's resources table
// names Floor4 differently on the standby and has no Plotter there. The
// master is killed: the queues point at the standby's host (Floor4 at its
// other name), every setting unchanged, the unrelated queue untouched, and
// Plotter stays, reported with the reason. The master comes back, the
// standby is killed: the queues point at the master's host again, every
// setting still unchanged.
func TestSessionCUPS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts cupsd and tandem processes")
	}
	cups := startCUPS(t)
	hosts := map[string]string{master: "print-alpha", standby: "print-bravo"}
	queues := map[string]string{
		"Floor3":  "ipp://print-alpha:631/printers/Floor3",
		"Floor4":  "ipps://PRINT-ALPHA/printers/Floor4?waitjob=false",
		"Plotter": "ipp://print-alpha:631/printers/Plotter",
		"Scan":    "ipp://files.example:631/printers/Scan",
	}
	cups.run("lpadmin", "-p", "Floor3", "-E", "-v", queues["Floor3"], "-m", "raw", "-D", "Floor 3, colour",
		"-L", "Building 1, floor 3", "-o", "print-color-mode-default=color", "-o", "sides-default=two-sided-long-edge")
	cups.run("lpadmin", "-p", "Floor4", "-E", "-v", queues["Floor4"], "-m", "raw", "-D", "Floor 4 mono",
		"-L", "Building 1, floor 4", "-o", "print-color-mode-default=monochrome", "-o", "sides-default=two-sided-short-edge")
	cups.run("lpadmin", "-p", "Plotter", "-E", "-v", queues["Plotter"], "-m", "raw", "-D", "A0 plotter")
	cups.run("lpadmin", "-p", "Scan", "-E", "-v", queues["Scan"], "-m", "raw", "-D", "Scanner", "-L", "Basement")
	cups.run("lpadmin", "-d", "Floor3")
	before := map[string]string{}
	for q := range queues {
		before[q] = cups.settings(q)
	}
	if !strings.Contains(before["Floor3"], "print-color-mode=color") || !strings.Contains(before["Floor3"], "sides=two-sided-long-edge") ||
		!strings.Contains(before["Floor3"], "printer-location='Building 1, floor 3'") {
		t.Fatalf("the queue was not set up as intended: %s", before["Floor3"])
	}

	p := proctest.New(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Failback: "manual", Wait: waitLimit, Hosts: hosts,
		Extra: func(string) map[string]any { return map[string]any{"notifier.config_refresh": "200ms"} },
	})
	writeResources(t, p)
	mark := p.Watch().Mark()
	p.StartNode(master)
	p.AwaitBeat(mark, waitLimit, proctest.Match{Node: master, State: "active", Via: master})
	p.StartNode(standby)
	st := p.WaitStable(master, waitLimit)
	waitResources(t, p)
	s := startSession(t, p, cups)

	// The master is active: nothing moves. The agent's hello shows in the
	// notifier's count; the queues stay as they were.
	waitSessions(t, p, 1)
	if got := cups.devices(); fmt.Sprint(got) != fmt.Sprint(queues) {
		t.Fatalf("queues changed while the master was active: %v", got)
	}

	// First failover: the master is killed.
	took := crashMaster(t, p, st)
	want := map[string]string{
		"Floor3":  "ipp://print-bravo:631/printers/Floor3",
		"Floor4":  "ipps://print-bravo/printers/Floor4-B",
		"Plotter": queues["Plotter"],
		"Scan":    queues["Scan"],
	}
	waitQueues(t, cups, s, want)
	checkSettings(t, cups, before)
	line := waitLine(t, s, took.Epoch, master, standby)
	if !strings.Contains(line, `"skipped":[{"address":"ipp://print-alpha:631/printers/Plotter","reason":"no resource of the same name on node bravo"}]`) {
		t.Errorf("the missing plotter is not reported: %s", line)
	}

	// Second failover, back: the master returns (passive), the standby is
	// killed.
	mark = p.Watch().Mark()
	p.Restart(master)
	p.AwaitBeat(mark, waitLimit, proctest.Match{Node: master, State: "passive"})
	p.WaitStable(standby, waitLimit)
	mark = p.Watch().Mark()
	p.Kill9(standby)
	back, _ := p.AwaitBeat(mark, waitLimit, proctest.Match{Node: master, State: "active", MinEpoch: took.Epoch + 1})
	want["Floor3"], want["Floor4"] = queues["Floor3"], queues["Floor4"]
	waitQueues(t, cups, s, want)
	checkSettings(t, cups, before)
	waitLine(t, s, back.Epoch, standby, master)

	stopSession(t, s)
}

// startSession starts `tandem session --driver cups` against the pair,
// with the private CUPS as its CUPS_SERVER; it is stopped (by its PID) at
// the test's end.
func startSession(t *testing.T, p *proctest.Pair, cups *privateCUPS) *sessionProc {
	t.Helper()
	cmd := exec.Command(p.Binary(), "session", "--server", p.Servers(), "--pair", p.Name, "--name", "ws1", "--driver", "cups")
	cmd.Env = cups.env()
	return runSession(t, cmd)
}

// runSession starts cmd, a `tandem session`, collecting its output; it is
// killed (by its PID) at the test's end.
func runSession(t *testing.T, cmd *exec.Cmd) *sessionProc {
	t.Helper()
	s := &sessionProc{cmd: cmd, exited: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s, &lockedWriter{mu: &s.mu, w: &s.stderr}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = s.cmd.Process.Kill()
			<-s.exited
		}
		if t.Failed() {
			s.mu.Lock()
			t.Logf("session stdout:\n%s\nsession stderr:\n%s", s.out.String(), s.stderr.String())
			s.mu.Unlock()
		}
	})
	return s
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func stopSession(t *testing.T, s *sessionProc) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(waitLimit):
		t.Fatal("tandem session did not exit on SIGTERM")
	}
	if code := s.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("tandem session exited %d", code)
	}
}

// waitSessions waits until the pair's notifier counts n sessions.
func waitSessions(t *testing.T, p *proctest.Pair, n int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		r := p.CLI("status", "--pair", p.Name, "--server", p.Servers(), "--json")
		if r.Code == 0 && strings.Contains(strings.ReplaceAll(r.Stdout, " ", ""), fmt.Sprintf(`"known":%d,`, n)) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the notifier does not count %d session(s): %s %s", n, r.Stdout, r.Stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitQueues(t *testing.T, cups *privateCUPS, s *sessionProc, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		got := cups.devices()
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("queues %v, want %v", got, want)
		}
		select {
		case <-s.exited:
			t.Fatalf("tandem session exited: %v", s.cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// checkSettings: every queue's options, description, location, sharing and
// state as before, and Floor3 still the default printer.
func checkSettings(t *testing.T, cups *privateCUPS, before map[string]string) {
	t.Helper()
	for q, want := range before {
		if got := cups.settings(q); got != want {
			t.Errorf("queue %s settings changed:\n got %s\nwant %s", q, got, want)
		}
	}
	if d := strings.TrimSpace(cups.run("lpstat", "-d")); d != "system default destination: Floor3" {
		t.Errorf("default printer: %q", d)
	}
}

// waitLine waits for the agent's JSON line of epoch and returns it.
func waitLine(t *testing.T, s *sessionProc, epoch uint64, from, to string) string {
	t.Helper()
	want := fmt.Sprintf(`{"session":"ws1","epoch":%d,"from":%q,"to":%q,"resources":[`, epoch, from, to)
	deadline := time.Now().Add(waitLimit)
	for {
		for _, line := range strings.Split(s.lines(), "\n") {
			if strings.HasPrefix(line, want) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no line %s… in %s", want, s.lines())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeResources creates the application's resources table, the same in
// both nodes' databases, before their first start.
func writeResources(t *testing.T, p *proctest.Pair) {
	t.Helper()
	sql := `CREATE TABLE resources(node TEXT NOT NULL, name TEXT NOT NULL, address TEXT NOT NULL, PRIMARY KEY (node, name));
INSERT INTO resources VALUES
 ('alpha', 'Floor3', 'ipp://print-alpha:631/printers/Floor3'), ('bravo', 'Floor3', 'ipp://print-bravo:631/printers/Floor3'),
 ('alpha', 'Floor4', 'ipps://PRINT-ALPHA/printers/Floor4?waitjob=false'), ('bravo', 'Floor4', 'ipps://print-bravo/printers/Floor4-B'),
 ('alpha', 'Plotter', 'ipp://print-alpha:631/printers/Plotter');`
	for _, node := range []string{master, standby} {
		dir := p.Node(node).DataDir
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		db := filepath.Join(dir, "tandem.db")
		if out, err := exec.Command("sqlite3", db, sql).CombinedOutput(); err != nil {
			t.Fatalf("sqlite3 %s: %v: %s", db, err, out)
		}
	}
}

// waitResources waits until both nodes' notifiers have read the resources
// table from their own database.
func waitResources(t *testing.T, p *proctest.Pair) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for _, node := range []string{master, standby} {
		for {
			log, _ := os.ReadFile(p.Node(node).LogPath)
			if bytes.Contains(log, []byte(`"resources":5,`)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the notifier of %s has not read the resources table", node)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestDemo runs the whole demo in line mode and reads its story from the
// output: a active first; after the kill, b active in a higher epoch; after
// the restart, a back and passive (failback manual). Once a is back the test
// stops the demo as Ctrl-C would; it must exit 0, with no temporary
// directory and no goroutine left behind.
func TestDemo(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &watchWriter{until: []string{"==> a is back", "==> sessions: all 20 switched", "failover.notified"}, then: cancel}
	var errOut bytes.Buffer
	code := run(ctx, []string{"demo", "--duration", "90s", "--kill-after", "3s", "--restart-after", "2s",
		"--heartbeat", "250ms", "--timeout", "1s"}, out, &errOut)
	t.Logf("output:\n%s", out.String())
	if code != 0 {
		t.Fatalf("exit status %d, stderr:\n%s", code, errOut.String())
	}
	checkStory(t, out.String())
	checkSessions(t, out.String(), 20)
	if !strings.Contains(out.String(), "==> interrupted: stopping the pair") {
		t.Errorf("the demo did not report the interruption")
	}
	checkCleanedUp(t, tmp, before)
}

// checkSessions reads the sessions' story: n sessions, all at the first
// epoch before the kill; after it every one switched exactly once, and the
// survivor's notifier reported its progress on the timeline.
func checkSessions(t *testing.T, out string, n int) {
	t.Helper()
	var last string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "  sessions  ") {
			last = line
		}
	}
	want := fmt.Sprintf("switched after the kill: %d/%d once, 0 more than once", n, n)
	if !strings.Contains(last, fmt.Sprintf("sessions  %d on 1 connection", n)) || !strings.Contains(last, want) {
		t.Errorf("last sessions line %q, want %q", last, want)
	}
	if !strings.Contains(out, fmt.Sprintf("==> sessions: all %d switched after the kill (%d exactly once)", n, n)) {
		t.Errorf("no note that every session switched exactly once")
	}
	// The timeline prints an event as tandem audit replay does
	// (audit.Summary): data without a reason as one line of JSON.
	notified := regexp.MustCompile(`b  failover\.notified\s+epoch \d+\s+.*"acknowledged":` + strconv.Itoa(n) + `[,}]`)
	if !notified.MatchString(out) {
		t.Errorf("no tandem.failover.notified of b with %d acknowledged on the timeline", n)
	}
}

// TestDemoDuration runs the demo without the scenario until --duration ends
// it.
func TestDemoDuration(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	before := runtime.NumGoroutine()
	var out, errOut bytes.Buffer
	code := run(context.Background(), []string{"demo", "--duration", "2s", "--kill-after", "0",
		"--heartbeat", "250ms", "--timeout", "1s"}, &out, &errOut)
	if code != 0 {
		t.Fatalf("exit status %d, stderr:\n%s\noutput:\n%s", code, errOut.String(), out.String())
	}
	for _, want := range []string{"scenario: none (--kill-after 0)", "==> 2s passed (--duration): stopping the pair", "stopped after "} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in the output:\n%s", want, out.String())
		}
	}
	checkCleanedUp(t, tmp, before)
}

// watchWriter calls then once the output contains until. The demo writes
// from one goroutine.
type watchWriter struct {
	bytes.Buffer
	until []string // all of them
	then  func()
}

func (w *watchWriter) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if w.then == nil {
		return n, err
	}
	for _, u := range w.until {
		if !strings.Contains(w.String(), u) {
			return n, err
		}
	}
	w.then()
	w.then = nil
	return n, err
}

func checkCleanedUp(t *testing.T, tmp string, goroutines int) {
	t.Helper()
	if ents, err := os.ReadDir(tmp); err != nil || len(ents) > 0 {
		t.Errorf("temporary directory not cleaned up: %v %v", ents, err)
	}
	checkGoroutines(t, goroutines)
}

var (
	statusRE = regexp.MustCompile(`^\s*[\d.]+s  status  epoch (\d+), active (\S+)`)
	nodeRE   = regexp.MustCompile(`\|  (\w+) (master|standby) (\S+), epoch (\d+)`)
)

// demoStatus is one status line of the demo's line mode.
type demoStatus struct {
	active string
	state  map[string]string
	epoch  map[string]uint64
}

func parseStatus(line string) (demoStatus, bool) {
	m := statusRE.FindStringSubmatch(line)
	if m == nil {
		return demoStatus{}, false
	}
	s := demoStatus{active: m[2], state: map[string]string{}, epoch: map[string]uint64{}}
	for _, n := range nodeRE.FindAllStringSubmatch(line, -1) {
		s.state[n[1]] = n[3]
		s.epoch[n[1]], _ = strconv.ParseUint(n[4], 10, 64)
	}
	return s, true
}

// checkStory walks the output through the scenario's stages in order.
func checkStory(t *testing.T, out string) {
	t.Helper()
	const (
		wantAActive = iota
		wantKill
		wantBActive
		wantRestart
		wantBack
		wantAPassive
		done
	)
	stage := wantAActive
	var aEpoch uint64
	for _, line := range strings.Split(out, "\n") {
		s, isStatus := parseStatus(line)
		switch {
		case stage == wantAActive && isStatus && s.active != "none":
			if s.active != "a" || s.state["a"] != "active" {
				t.Fatalf("first active node is not a: %q", line)
			}
			aEpoch = s.epoch["a"]
			stage++
		case stage == wantKill && strings.Contains(line, "==> killed a (the active node) at "):
			stage++
		case stage == wantBActive && isStatus && s.active == "b":
			if s.state["b"] != "active" || s.epoch["b"] <= aEpoch {
				t.Fatalf("b active, but not in an epoch above a's %d: %q", aEpoch, line)
			}
			stage++
		case stage == wantRestart && strings.Contains(line, "==> restarting a"):
			stage++
		case stage == wantBack && strings.Contains(line, "==> a is back: passive"):
			stage++
		case stage == wantAPassive && isStatus && s.state["a"] == "passive":
			if s.active != "b" || s.state["b"] != "active" {
				t.Fatalf("a is back but b is not the active node: %q", line)
			}
			stage++
		}
	}
	if stage != done {
		t.Fatalf("the output stops at stage %d of %d", stage, done)
	}
	if !strings.Contains(out, "stopped after ") {
		t.Errorf("no clean stop reported")
	}
}

// checkGoroutines waits for the goroutine count to fall back to before.
// nats-server leaves a goroutine of a stream mirror's consumer set-up waiting
// out its timer (5 s for a durable source) after the server is shut down.
func checkGoroutines(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("%d goroutines left, %d before:\n%s", runtime.NumGoroutine(), before, buf[:n])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

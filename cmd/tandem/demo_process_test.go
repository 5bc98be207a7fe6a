package main

// The demo as the binary a newcomer runs: it ends by itself with a summary,
// and whichever way it ends (its duration, SIGINT, SIGTERM, a reader that
// goes away) it removes its temporary directory.

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// The demo command catches SIGPIPE; os/signal then starts a goroutine that
// lives as long as the process. Start it before any test counts goroutines
// (checkGoroutines), so that it is not taken for a leak.
func init() {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGUSR2)
	signal.Stop(c)
}

// demoArgs are quick settings: short heartbeats, a kill soon.
var demoArgs = []string{"demo", "--plain", "--heartbeat", "250ms", "--timeout", "1s", "--kill-after", "1500ms", "--restart-after", "1s"}

func startDemo(t *testing.T, ctx context.Context, tmp string, args ...string) (*exec.Cmd, io.ReadCloser) {
	t.Helper()
	cmd := exec.CommandContext(ctx, proctest.Build(t), append(append([]string{}, demoArgs...), args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, out
}

func checkNoDemoDir(t *testing.T, tmp, how string) {
	t.Helper()
	ents, err := os.ReadDir(tmp)
	if err != nil || len(ents) > 0 {
		t.Errorf("%s: the demo left %v behind (%v)", how, ents, err)
	}
}

func TestDemoBinaryEndsByItself(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	if r := runBinary(t, nil, "demo", "-h"); !strings.Contains(r.stdout, "--duration duration") || !strings.Contains(r.stdout, "(default 20s)") {
		t.Errorf("the demo's default duration is not 20s:\n%s", r.stdout)
	}
	tmp := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second) // a bound, not a speed
	defer cancel()
	cmd, out := startDemo(t, ctx, tmp, "--duration", "8s", "--sessions", "5")
	b, _ := io.ReadAll(out)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo: %v\n%s", err, b)
	}
	for _, want := range []string{"==> 8s passed (--duration)", "\nsummary (", "took over: active in epoch", "note: here a node is stopped inside this one process", "stopped after "} {
		if !strings.Contains(string(b), want) {
			t.Errorf("no %q in the demo's output:\n%s", want, b)
		}
	}
	checkNoDemoDir(t, tmp, "after --duration")
}

func TestDemoBinaryCleansUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo")
	}
	for _, how := range []string{"SIGINT", "SIGTERM", "closed pipe"} {
		tmp := t.TempDir()
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		cmd, out := startDemo(t, ctx, tmp, "--duration", "5m", "--sessions", "0")
		sc := bufio.NewScanner(out)
		for sc.Scan() && !strings.Contains(sc.Text(), "from another terminal") {
		}
		switch how {
		case "SIGINT":
			_ = cmd.Process.Signal(syscall.SIGINT)
		case "SIGTERM":
			_ = cmd.Process.Signal(syscall.SIGTERM)
		default:
			out.Close() // the next line the demo writes (the kill) meets a closed pipe
		}
		if how != "closed pipe" {
			_, _ = io.Copy(io.Discard, out)
		}
		err := cmd.Wait()
		ended := ctx.Err() == nil
		cancel()
		if !ended {
			t.Fatalf("%s: the demo did not end", how)
		}
		if err != nil {
			t.Errorf("%s: the demo ended with %v", how, err)
		}
		checkNoDemoDir(t, tmp, how)
	}
}

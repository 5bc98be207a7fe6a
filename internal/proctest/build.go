//go:build linux

package proctest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// BinaryEnv names an environment variable holding the path of a tandem
// binary to use instead of building one.
const BinaryEnv = "TANDEM_PROCTEST_BIN"

// Package is the import path of the tandem command.
const Package = "github.com/tandem-ha/tandem/cmd/tandem"

var built struct {
	once sync.Once
	dir  string // the temporary directory of the binary, removed by Main
	path string
	err  error
}

// Build returns the path of a tandem binary: $TANDEM_PROCTEST_BIN if set,
// else one built once per process with `go build` into a temporary
// directory (removed by Main). It must run inside the Tandem workspace.
func Build(t T) string {
	t.Helper()
	if p := os.Getenv(BinaryEnv); p != "" {
		return p
	}
	built.once.Do(func() { built.path, built.err = build() })
	if built.err != nil {
		t.Fatalf("build tandem: %v", built.err)
	}
	return built.path
}

func build() (string, error) {
	dir, err := os.MkdirTemp("", "proctest-tandem-")
	if err != nil {
		return "", err
	}
	built.dir = dir
	out := filepath.Join(dir, "tandem")
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, Package)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-buildvcs=false")
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %v: %s", Package, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Main runs the tests of m, then removes the binary Build made and checks
// that no node process is left running and no goroutine of the harness or of
// its NATS connections is left behind. Use it as
//
//	func TestMain(m *testing.M) { proctest.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
	if code == 0 {
		if err := checkLeaks(10 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "proctest:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// live is every process the harness started and has not yet seen exit.
var live = struct {
	sync.Mutex
	procs map[*proc]struct{}
}{procs: map[*proc]struct{}{}}

func track(p *proc) {
	live.Lock()
	defer live.Unlock()
	live.procs[p] = struct{}{}
}

func untrack(p *proc) {
	live.Lock()
	defer live.Unlock()
	delete(live.procs, p)
}

// leakMarkers are the frames of goroutines the harness may leave behind.
var leakMarkers = []string{"/internal/proctest.", "nats-io/nats.go", "nats-io/nats%2ego", "os/exec."}

// checkLeaks waits up to wait for every process the harness started to have
// exited and every goroutine of the harness or its NATS connections to have
// ended, and describes what is left.
func checkLeaks(wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		procs, stacks := leftovers()
		if procs == 0 && len(stacks) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("leaked %d processes and %d goroutines:\n%s", procs, len(stacks), strings.Join(stacks, "\n\n"))
		}
		time.Sleep(20 * time.Millisecond) // polling with a deadline
	}
}

func leftovers() (int, []string) {
	live.Lock()
	procs := len(live.procs)
	live.Unlock()
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var stacks []string
	for i, g := range strings.Split(string(buf), "\n\n") {
		if i == 0 { // this goroutine
			continue
		}
		for _, m := range leakMarkers {
			if strings.Contains(g, m) {
				stacks = append(stacks, g)
				break
			}
		}
	}
	return procs, stacks
}

package scripttest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"
)

// counter is the world of these tests: "pair" sets it up, "add N" adds N
// and prints the sum; its invariant is that the sum stays below limit.
type counter struct {
	sum, limit int
	nodes      map[string]int
}

func (c *counter) Do(t testing.TB, d *datadriven.TestData) string {
	switch d.Cmd {
	case "pair":
		c.nodes = map[string]int{"a": 1, "b": 2}
		return "pair ready"
	case "add":
		c.sum += Int(t, d, d.CmdArgs[0].Key)
		out := fmt.Sprintf("sum %d", c.sum)
		if len(d.CmdArgs) > 1 {
			out += "\nwords " + strings.Join(Words(d, 0), " ")
		}
		return out
	case "node":
		return fmt.Sprintf("node %d, other %s", Pick(t, d, 0, c.nodes), Other(d.CmdArgs[0].Key))
	}
	d.Fatalf(t, "unknown command %q", d.Cmd)
	return ""
}

func (c *counter) Check() error {
	if c.limit > 0 && c.sum >= c.limit {
		return errors.New("invariant broken: sum at the limit")
	}
	return nil
}

func runner(limit int) Runner {
	return Runner{First: "pair", New: func(testing.TB) Commands { return &counter{limit: limit} }}
}

// The scripts of testdata pass, each in a subtest of its own.
func TestWalkRunsTheScripts(t *testing.T) {
	runner(0).Walk(t, "testdata")
}

// recorder is a testing.TB that records failures instead of failing the
// test that runs it; FailNow ends the goroutine, as testing's does.
type recorder struct {
	testing.TB
	mu     sync.Mutex
	failed bool
	said   []string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Logf(string, ...any)       {}
func (r *recorder) Log(...any)                {}
func (r *recorder) Fail()                     { r.mu.Lock(); r.failed = true; r.mu.Unlock() }
func (r *recorder) FailNow()                  { r.Fail(); runtime.Goexit() }
func (r *recorder) Error(args ...any)         { r.record(fmt.Sprint(args...)) }
func (r *recorder) Errorf(f string, a ...any) { r.record(fmt.Sprintf(f, a...)) }
func (r *recorder) Fatal(args ...any)         { r.Error(args...); r.FailNow() }
func (r *recorder) Fatalf(f string, a ...any) {
	r.Errorf(f, a...)
	r.FailNow()
}

func (r *recorder) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *recorder) record(s string) {
	r.mu.Lock()
	r.failed = true
	r.said = append(r.said, s)
	r.mu.Unlock()
}

// script writes text as a script file and runs it with a recorder.
func script(t *testing.T, r Runner, text string) *recorder {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.txt")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.RunFile(rec, path)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("the script did not end")
	}
	return rec
}

func TestRunFileReports(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		limit        int
		want         string // in what the failure says; "" for a pass
	}{
		{"a passing script", "pair\n----\npair ready\n\nadd 4\n----\nsum 4\n", 0, ""},
		{"a failing expectation", "pair\n----\npair ready\n\nadd 4\n----\nsum 5\n", 0, "expected:\n  sum 5\n\nfound:\n  sum 4"},
		{"a script that does not begin with its first command", "add 4\n----\nsum 4\n", 0, "pair first"},
		{"a broken invariant, at its command", "pair\n----\npair ready\n\nadd 4\n----\nsum 4\n\nadd 7\n----\nsum 11\n", 10,
			"script.txt:9: invariant broken: sum at the limit"},
		{"a bad number", "pair\n----\npair ready\n\nadd four\n----\nsum 4\n", 0, `add: strconv.Atoi: parsing "four"`},
		{"a node that is not there", "pair\n----\npair ready\n\nnode c\n----\n", 0, `no node "c"`},
		{"a node not named", "pair\n----\npair ready\n\nnode\n----\n", 0, "node: which node?"},
		{"the helpers", "pair\n----\npair ready\n\nnode b\n----\nnode 2, other a\n\nnode a\n----\nnode 1, other b\n", 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := script(t, runner(tc.limit), tc.script)
			said := strings.Join(rec.said, "\n")
			switch {
			case tc.want == "" && rec.Failed():
				t.Fatalf("failed: %s", said)
			case tc.want != "" && !rec.Failed():
				t.Fatalf("passed; want a failure saying %q", tc.want)
			case !strings.Contains(said, tc.want):
				t.Fatalf("the failure says:\n%s\nwant it to say %q", said, tc.want)
			}
		})
	}
}

// With -rewrite the script is written back with what each command
// printed.
func TestRunFileRewrites(t *testing.T) {
	f := flag.Lookup("rewrite")
	if f == nil {
		t.Fatal("no -rewrite flag")
	}
	if f.Value.String() == "true" {
		t.Skip("the whole run rewrites its scripts")
	}
	path := filepath.Join(t.TempDir(), "script.txt")
	stale := "# a comment stays\npair\n----\nold\n\nadd 2\n----\nsum 9\n\nadd 1\n----\n"
	if err := os.WriteFile(path, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := flag.Set("rewrite", "true"); err != nil {
		t.Fatal(err)
	}
	runner(0).RunFile(t, path)
	if err := flag.Set("rewrite", "false"); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := "# a comment stays\npair\n----\npair ready\n\nadd 2\n----\nsum 2\n\nadd 1\n----\nsum 3\n"
	if string(b) != want {
		t.Fatalf("rewritten:\n%s\nwant:\n%s", b, want)
	}
	// What was written passes as it is.
	if rec := script(t, runner(0), string(b)); rec.Failed() {
		t.Fatalf("the rewritten script fails: %v", rec.said)
	}
}

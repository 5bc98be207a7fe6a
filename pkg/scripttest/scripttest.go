// Package scripttest runs the script tests of the pure state machines
// (services/monitor/internal/failover, services/replicator/internal/lineage):
// text files under testdata, each a list of commands with the output each
// must print, in github.com/cockroachdb/datadriven's format:
//
//	# a comment
//	command arg key=value key=(v1,v2)
//	----
//	what the command printed
//
// Each script runs in a subtest of its own, against a world of its own
// (Commands) that a Runner makes for it. After every command the world's
// invariant is checked: a broken one fails the script at that command. A
// command whose output differs from the script's fails the script with both.
// Run with -rewrite, the scripts are written back with what each command
// printed (check the diff before committing it).
package scripttest

import (
	"strconv"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// Commands is the world one script drives.
type Commands interface {
	// Do runs one command and returns what it printed. It fails the
	// script (d.Fatalf) on a command it does not know or bad arguments.
	Do(t testing.TB, d *datadriven.TestData) string
	// Check is the invariant, checked after every command: an error fails
	// the script at that command.
	Check() error
}

// Runner runs scripts.
type Runner struct {
	// First is the command every script must begin with (the one that
	// sets its world up); "" lets a script begin with any.
	First string
	// New makes the world of one script.
	New func(t testing.TB) Commands
}

// Walk runs every script under dir (a file, or a directory walked in
// subtests named after its files).
func (r Runner) Walk(t *testing.T, dir string) {
	t.Helper()
	datadriven.Walk(t, dir, func(t *testing.T, path string) { r.RunFile(t, path) })
}

// RunFile runs the script in path against a new world.
func (r Runner) RunFile(t testing.TB, path string) {
	t.Helper()
	w := r.New(t)
	begun := false
	datadriven.RunTestAny(t, path, func(t testing.TB, d *datadriven.TestData) string {
		if !begun && r.First != "" && d.Cmd != r.First {
			d.Fatalf(t, "%s first", r.First)
		}
		begun = true
		out := w.Do(t, d)
		if err := w.Check(); err != nil {
			d.Fatalf(t, "%v", err)
		}
		return out
	})
}

// Int is s, a value of the command d, as a whole number; the script fails
// at d if it is not one.
func Int(t testing.TB, d *datadriven.TestData, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		d.Fatalf(t, "%s: %v", d.Cmd, err)
	}
	return n
}

// Pick is the value of m that the command's argument i names (a node of
// the pair, usually); the script fails at d if it names none.
func Pick[V any](t testing.TB, d *datadriven.TestData, i int, m map[string]V) V {
	t.Helper()
	if len(d.CmdArgs) <= i {
		d.Fatalf(t, "%s: which node?", d.Cmd)
	}
	v, ok := m[d.CmdArgs[i].Key]
	if !ok {
		d.Fatalf(t, "no node %q", d.CmdArgs[i].Key)
	}
	return v
}

// Words are the command's arguments from i on, each as written.
func Words(d *datadriven.TestData, i int) []string {
	var out []string
	for _, a := range d.CmdArgs[min(i, len(d.CmdArgs)):] {
		out = append(out, a.String())
	}
	return out
}

// Other is the other node of the pair a, b.
func Other(node string) string {
	if node == "a" {
		return "b"
	}
	return "a"
}

package agent

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/agent/plan"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata/")

// golden compares got with testdata/name (or writes it with -rewrite).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *rewrite {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -rewrite to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func yes() *bool { b := true; return &b }

// TestWindowsApplyScripts: the command plan of each kind of switch.
func TestWindowsApplyScripts(t *testing.T) {
	cases := map[string]struct {
		step  Step
		prefs Prefs
	}{
		"default.ps1": {Step{Change: plan.Change{ID: `\\print-a\Floor3`, From: `\\print-a\Floor3`, To: `\\print-b\Floor3`, Default: true}, Epoch: 2, Active: "b"},
			Prefs{Duplex: "TwoSidedLongEdge", Color: yes(), Paper: "A4"}},
		"plain-unknown-prefs.ps1": {Step{Change: plan.Change{ID: `\\print-a\Plotter`, From: `\\print-a\Plotter`, To: `\\print-b\Plotter`}, Epoch: 2, Active: "b"},
			Prefs{}},
		"already-connected.ps1": {Step{Change: plan.Change{ID: `\\print-b\F3-B`, From: `\\print-b\F3-B`, To: `\\print-a\Floor3`, Default: true, Exists: true}, Epoch: 3, Active: "a"},
			Prefs{Paper: "Letter"}},
		"quotes.ps1": {Step{Change: plan.Change{ID: `\\print-a\Bob's`, From: `\\print-a\Bob's`, To: "\\\\print-b\\Bob\u2019s"}, Epoch: 4, Active: "b"},
			Prefs{}},
	}
	for name, c := range cases {
		golden(t, filepath.Join("windows", name), ApplyScript(c.step, c.prefs))
	}
	golden(t, filepath.Join("windows", "list.ps1"), ListScript)
}

// fakePS answers List with canned JSON and records every script.
type fakePS struct {
	list    string
	fail    string // a script containing this fails
	scripts []string
}

func (f *fakePS) Run(_ context.Context, script string) ([]byte, error) {
	f.scripts = append(f.scripts, script)
	if f.fail != "" && strings.Contains(script, f.fail) {
		return nil, errors.New("Add-Printer : The printer name is invalid.")
	}
	if script == ListScript {
		return []byte(f.list), nil
	}
	return nil, nil
}

// The driver reads the connections and their preferences, and carries the
// preferences it read while the old server answered into the switch.
func TestWindowsDriver(t *testing.T) {
	ps := &fakePS{list: `[{"name":"\\\\print-a\\Floor3","default":true,"duplex":"TwoSidedShortEdge","color":false,"paper":"A3"},` +
		`{"name":"\\\\files\\Scan","default":false,"duplex":"","color":null,"paper":""}]`}
	w := &Windows{PS: ps}
	conns, err := w.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(conns) != 2 || conns[0].Address != `\\print-a\Floor3` || !conns[0].Default || conns[1].Default {
		t.Fatalf("%+v", conns)
	}
	s := Step{Change: plan.Change{ID: conns[0].ID, From: conns[0].Address, To: `\\print-b\Floor3`, Default: true}, Epoch: 2}
	if err := w.Apply(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	last := ps.scripts[len(ps.scripts)-1]
	if !strings.Contains(last, "$duplex = 'TwoSidedShortEdge'; $color = $false; $paper = 'A3'") {
		t.Fatalf("cached preferences not carried:\n%s", last)
	}
	ps.fail = "Add-Printer"
	if err := w.Apply(context.Background(), Step{Change: plan.Change{ID: "x", From: `\\print-a\X`, To: `\\print-b\X`}}); err == nil ||
		!strings.Contains(err.Error(), "printer name is invalid") {
		t.Fatalf("a refused switch: %v", err)
	}
	n := len(ps.scripts)
	for _, bad := range []string{`print-b\X`, `\\print-b`, "\\\\print-b\\X\nRemove-Printer"} {
		if err := w.Apply(context.Background(), Step{Change: plan.Change{ID: "x", From: `\\print-a\X`, To: bad}}); err == nil {
			t.Errorf("target %q accepted", bad)
		}
	}
	if len(ps.scripts) != n {
		t.Fatal("a refused target ran a script")
	}
	ps.list = "not json"
	if _, err := w.List(context.Background()); err == nil {
		t.Fatal("garbage accepted as the connection list")
	}
}

func TestEncodeCommand(t *testing.T) {
	if got := encodeCommand("a€"); got != "YQCsIA==" {
		t.Fatal(got)
	}
}

package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/agent/plan"
)

func TestParseDevices(t *testing.T) {
	out := "device for Floor3: ipp://print-a:631/printers/Floor3\ndevice for Scan: ipps://files/printers/Scan?waitjob=false\n"
	conns, err := parseDevices([]byte(out))
	if err != nil || len(conns) != 2 || conns[0].ID != "Floor3" || conns[1].Address != "ipps://files/printers/Scan?waitjob=false" {
		t.Fatalf("%+v %v", conns, err)
	}
	if _, err := parseDevices([]byte("Gerät für Floor3: ipp://x\n")); err == nil {
		t.Fatal("a line in another language accepted")
	}
	if name, ok := parseDefault([]byte("system default destination: Floor3\n")); !ok || name != "Floor3" {
		t.Fatal(name)
	}
	if _, ok := parseDefault([]byte("no system default destination\n")); ok {
		t.Fatal("no default read as one")
	}
}

// Apply refuses a queue name or URI that a tool would read as an option or
// that is not one word, before running anything.
func TestCUPSApplyRefusesArguments(t *testing.T) {
	c := &CUPS{LPAdmin: "/nonexistent/lpadmin", LPStat: "/nonexistent/lpstat"}
	for _, s := range []Step{
		{Change: changeOf("-E", "ipp://b/x")},
		{Change: changeOf("Q", "-v")},
		{Change: changeOf("Q", "ipp://b/x y")},
		{Change: changeOf("Q", "")},
	} {
		if err := c.Apply(context.Background(), s); err == nil || !strings.Contains(err.Error(), "refused") {
			t.Errorf("%+v accepted", s)
		}
	}
}

func changeOf(id, to string) plan.Change { return plan.Change{ID: id, From: "ipp://a/x", To: to} }

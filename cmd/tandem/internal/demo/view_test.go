package demo

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
)

func pairStatus(active string, a, b api.NodeStatus) api.PairStatus {
	a.Node, a.Role, b.Node, b.Role = "a", "master", "b", "standby"
	ps := api.PairStatus{Pair: "demo", Epoch: max(a.Epoch, b.Epoch), Nodes: []api.NodeStatus{a, b}}
	if active != "" {
		ps.Active = &active
	}
	return ps
}

func TestStatusLine(t *testing.T) {
	age := int64(1200)
	ps := pairStatus("b",
		api.NodeStatus{State: "", Epoch: 2, HeartbeatAgeMS: &age},
		api.NodeStatus{State: "active", Epoch: 3, Reachable: true, Maintenance: true})
	want := "status  epoch 3, active b  |  a master unreachable, epoch 2  |  b standby active, epoch 3, maintenance"
	if got := statusLine(ps); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// In line mode the timeline is printed in time order and the status only
// when it changes.
func TestLineMode(t *testing.T) {
	var out bytes.Buffer
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	v := newView(&out, false, t0, nil)
	up := pairStatus("a", api.NodeStatus{State: "active", Epoch: 2, Reachable: true},
		api.NodeStatus{State: "passive", Reachable: true})
	v.note(t0.Add(2*time.Second), "second")
	v.note(t0.Add(time.Second), "first")
	v.draw(t0.Add(3*time.Second), up, "", "")
	age := int64(5)
	up.Nodes[1].HeartbeatAgeMS = &age // ages are no change
	v.draw(t0.Add(4*time.Second), up, "", "")
	want := "   1.000s  first\n" +
		"   2.000s  second\n" +
		"   3.000s  status  epoch 2, active a  |  a master active, epoch 2  |  b standby passive, epoch 0\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

// Live, each frame is drawn over the previous one, and end restores the
// terminal.
func TestLiveFrames(t *testing.T) {
	var out bytes.Buffer
	t0 := time.Now()
	v := newView(&out, true, t0, func(w io.Writer, ps api.PairStatus) { fmt.Fprintln(w, "TABLE", ps.Epoch) })
	ps := pairStatus("a", api.NodeStatus{State: "active", Epoch: 2, Reachable: true},
		api.NodeStatus{State: "passive", Reachable: true})
	for i := range journalLines + 3 {
		v.note(t0, "line %d", i)
	}
	v.draw(t0, ps, "TITLE", "FOOTER")
	first := out.String()
	if !strings.HasPrefix(first, hideCursor+noWrap+"TITLE"+clearEOL+"\n") || !strings.HasSuffix(first, "FOOTER"+clearEOL+"\n"+clearEOS) {
		t.Fatalf("first frame:\n%q", first)
	}
	if strings.Contains(first, "line 2"+clearEOL) || !strings.Contains(first, "line 3"+clearEOL) {
		t.Errorf("the frame shows other than the last %d lines:\n%q", journalLines, first)
	}
	out.Reset()
	v.draw(t0, ps, "TITLE", "FOOTER")
	if up := fmt.Sprintf("\x1b[%dA\r", v.drawn); !strings.HasPrefix(out.String(), up+"TITLE") {
		t.Errorf("second frame does not start %q lines up: %q", up, out.String())
	}
	out.Reset()
	v.end()
	if out.String() != wrap+showCursor {
		t.Errorf("end wrote %q", out.String())
	}
}

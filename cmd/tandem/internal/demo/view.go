package demo

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/event"
)

// ANSI sequences of the live view.
const (
	hideCursor = "\x1b[?25l"
	showCursor = "\x1b[?25h"
	noWrap     = "\x1b[?7l" // long lines are cut, so a frame's height is its line count
	wrap       = "\x1b[?7h"
	clearEOL   = "\x1b[K"
	clearEOS   = "\x1b[J"
)

// journalLines is how many lines of the timeline the live view shows.
const journalLines = 10

// entry is one line of the timeline.
type entry struct {
	at   time.Time
	text string
}

// view prints the demo. Live, it redraws a frame in place: the pair's status
// table, the latest lines of the timeline, and a footer. Otherwise it prints
// the timeline line by line, and the pair's status as one line each time it
// changes (heartbeat ages aside), so that it reads well in a log. It is used
// by the loop goroutine only.
type view struct {
	out   io.Writer
	live  bool
	start time.Time
	table func(io.Writer, api.PairStatus)

	pending []entry // noted since the last draw
	journal []entry // live: the latest journalLines entries
	lastSig string  // line mode: the status line last printed
	sess    string  // the sessions' line, "" without sessions
	lastSes string  // line mode: the sessions' line last printed
	drawn   int     // live: lines of the last frame
	began   bool    // live: the terminal is set up
}

func newView(out io.Writer, live bool, start time.Time, table func(io.Writer, api.PairStatus)) *view {
	return &view{out: out, live: live, start: start, table: table}
}

// note adds a line to the timeline; it shows at the next draw.
func (v *view) note(at time.Time, format string, args ...any) {
	v.pending = append(v.pending, entry{at: at, text: fmt.Sprintf(format, args...)})
}

// noteEvent adds an event of a node to the timeline.
func (v *view) noteEvent(e event.Envelope) {
	v.note(e.Time, "%s  %-21s  epoch %-2d  %s", e.Node, strings.TrimPrefix(e.Type, "tandem."), e.Epoch, audit.Summary(e))
}

// printf prints text outside the live frame (before it begins or after it
// ends).
func (v *view) printf(format string, args ...any) {
	fmt.Fprintf(v.out, format, args...)
}

// draw shows what was noted since the last draw and the pair's status.
func (v *view) draw(now time.Time, ps api.PairStatus, title, footer string) {
	sort.SliceStable(v.pending, func(i, j int) bool { return v.pending[i].at.Before(v.pending[j].at) })
	if v.live {
		v.journal = append(v.journal, v.pending...)
		if n := len(v.journal); n > journalLines {
			v.journal = append([]entry(nil), v.journal[n-journalLines:]...)
		}
		v.pending = v.pending[:0]
		v.frame(ps, title, footer)
		return
	}
	for _, e := range v.pending {
		fmt.Fprintf(v.out, "%s  %s\n", v.stamp(e.at), e.text)
	}
	v.pending = v.pending[:0]
	if sig := statusLine(ps); sig != v.lastSig {
		v.lastSig = sig
		fmt.Fprintf(v.out, "%s  %s\n", v.stamp(now), sig)
	}
	if v.sess != v.lastSes {
		v.lastSes = v.sess
		fmt.Fprintf(v.out, "%s  %s\n", v.stamp(now), v.sess)
	}
}

// sessions sets the sessions' line shown from the next draw on.
func (v *view) sessions(line string) { v.sess = line }

// frame redraws the live frame over the previous one.
func (v *view) frame(ps api.PairStatus, title, footer string) {
	var b bytes.Buffer
	if !v.began {
		b.WriteString(hideCursor + noWrap)
		v.began = true
	}
	if v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA\r", v.drawn)
	}
	lines := v.frameLines(ps, title, footer)
	for _, l := range lines {
		b.WriteString(l + clearEOL + "\n")
	}
	b.WriteString(clearEOS)
	v.drawn = len(lines)
	_, _ = v.out.Write(b.Bytes())
}

func (v *view) frameLines(ps api.PairStatus, title, footer string) []string {
	lines := []string{title, ""}
	var t bytes.Buffer
	if v.table != nil {
		v.table(&t, ps)
	} else {
		t.WriteString(statusLine(ps) + "\n")
	}
	lines = append(lines, strings.Split(strings.TrimRight(t.String(), "\n"), "\n")...)
	if v.sess != "" {
		lines = append(lines, "", v.sess)
	}
	lines = append(lines, "", "timeline")
	for _, e := range v.journal {
		lines = append(lines, v.stamp(e.at)+"  "+e.text)
	}
	for range journalLines - len(v.journal) {
		lines = append(lines, "")
	}
	return append(lines, "", footer)
}

// end restores the terminal after the last frame.
func (v *view) end() {
	if v.began {
		v.printf(wrap + showCursor)
		v.began = false
	}
}

// stamp is the time since the demo started, as "  12.345s".
func (v *view) stamp(at time.Time) string {
	return fmt.Sprintf("%8.3fs", at.Sub(v.start).Seconds())
}

// statusLine is the pair's status in one line, heartbeat ages left out:
//
//	status  epoch 2, active a  |  a master active, epoch 2  |  b standby passive, epoch 0
func statusLine(ps api.PairStatus) string {
	active := "none"
	if ps.Active != nil {
		active = *ps.Active
	}
	var b strings.Builder
	fmt.Fprintf(&b, "status  epoch %d, active %s", ps.Epoch, active)
	for _, n := range ps.Nodes {
		state := n.State
		switch {
		case !n.Reachable:
			state = "unreachable"
		case state == "":
			state = "-"
		}
		fmt.Fprintf(&b, "  |  %s %s %s, epoch %d", n.Node, n.Role, state, n.Epoch)
		if n.Maintenance {
			b.WriteString(", maintenance")
		}
		if n.Switchover != "" {
			b.WriteString(", switchover " + n.Switchover)
		}
	}
	return b.String()
}

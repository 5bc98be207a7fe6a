//go:build linux

package proctest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/pairtest"
)

// CheckInvariants checks every heartbeat recorded (STYLE §15) and reports
// each violation as a test error:
//
//   - never two nodes active in the same epoch;
//   - a node's epoch never goes down, across restarts (F1: it is persisted);
//   - every message on the heartbeat subjects decodes.
//
// It returns the number of beats checked, so that a test can tell the check
// was not vacuous.
func (p *Pair) CheckInvariants() int {
	p.t.Helper()
	beats := p.watch.All()
	for _, v := range Violations(beats) {
		p.t.Errorf("proctest: invariant: %s", v)
	}
	for _, bad := range p.watch.Undecodable() {
		p.t.Errorf("proctest: undecodable heartbeat: %s", bad)
	}
	return len(beats)
}

// Violations returns what is wrong with a record of heartbeats (see
// CheckInvariants). Two actives in an epoch are found by
// pairtest.Actives, fed the active beats in the order they were sent; each
// epoch is reported once, with the first beat of each of its two nodes.
func Violations(beats []Beat) []string {
	sent := slices.Clone(beats)
	sort.SliceStable(sent, func(i, j int) bool { return sent[i].Sent.Before(sent[j].Sent) })
	var actives pairtest.Actives
	twice := map[uint64]*pairtest.TwoActives{} // epoch → its first violation
	for _, b := range sent {
		if b.State != "active" {
			continue
		}
		var two *pairtest.TwoActives
		if errors.As(actives.ActiveAt(b.Node, b.Epoch, b.Sent), &two) && twice[b.Epoch] == nil {
			twice[b.Epoch] = two
		}
	}
	var out []string
	for _, e := range slices.Sorted(maps.Keys(twice)) {
		who := []string{twice[e].First.String(), twice[e].Then.String()}
		sort.Strings(who)
		out = append(out, fmt.Sprintf("two nodes active in epoch %d: %s", e, strings.Join(who, ", ")))
	}
	return append(out, epochRegressions(beats)...)
}

// epochRegressions finds beats of a node whose epoch is below that of an
// earlier beat of the same node (by send time).
func epochRegressions(beats []Beat) []string {
	var out []string
	byNode := map[string][]Beat{}
	for _, b := range beats {
		byNode[b.Node] = append(byNode[b.Node], b)
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		bs := byNode[n]
		sort.SliceStable(bs, func(i, j int) bool { return bs[i].Sent.Before(bs[j].Sent) })
		var top Beat
		for i, b := range bs {
			if i > 0 && b.Epoch < top.Epoch {
				out = append(out, fmt.Sprintf("%s's epoch went down from %d (sent %s) to %d (sent %s)",
					n, top.Epoch, top.Sent.Format("15:04:05.000000"), b.Epoch, b.Sent.Format("15:04:05.000000")))
			}
			if i == 0 || b.Epoch > top.Epoch {
				top = b
			}
		}
	}
	return out
}

// Sample is how many nodes were active at one moment, and which.
type Sample struct {
	At     time.Time
	Active []string
}

// ActiveSamples samples the pair's state every step from from to to, from
// the nodes' own heartbeats (those received from the sender's own server):
// at each moment a node is in the state of its latest beat sent at or
// before it. A node beats at once when it activates or deactivates, so a
// sample is late by no more than the delivery of that beat.
func ActiveSamples(beats []Beat, from, to time.Time, step time.Duration) []Sample {
	own := map[string][]Beat{}
	for _, b := range beats {
		if b.Via == b.Node {
			own[b.Node] = append(own[b.Node], b)
		}
	}
	for _, bs := range own {
		sort.SliceStable(bs, func(i, j int) bool { return bs[i].Sent.Before(bs[j].Sent) })
	}
	var out []Sample
	for at := from; !at.After(to); at = at.Add(step) {
		s := Sample{At: at}
		for node, bs := range own {
			i := sort.Search(len(bs), func(i int) bool { return bs[i].Sent.After(at) })
			if i > 0 && bs[i-1].State == "active" {
				s.Active = append(s.Active, node)
			}
		}
		sort.Strings(s.Active)
		out = append(out, s)
	}
	return out
}

// Package fleet reads the fleet view from a hub (SPEC §11): every pair's
// status as its uplink last wrote it into the hub's fleet bucket, one row
// per pair, with pairs whose status is older than the stale limit marked.
package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// DefaultStale is how old a pair's status may be before it is marked stale:
// three of the uplinks' 10 s periods.
const DefaultStale = 30 * time.Second

// Pair is one pair's row (JSON: the `tandem status --json` object plus
// updated, age_ms, stale and the summary fields).
type Pair struct {
	api.PairStatus
	Updated time.Time `json:"updated"`
	AgeMS   int64     `json:"age_ms"`
	Stale   bool      `json:"stale"`
	// Replication, Sessions and License summarise the nodes' parts.
	Replication string   `json:"replication"`
	Acked       string   `json:"sessions_acknowledged"`
	Warnings    []string `json:"license_warnings,omitempty"`
}

// View is the fleet: {"pairs":[…]} sorted by pair.
type View struct {
	Pairs []Pair `json:"pairs"`
}

// Row makes a pair's row from its status, written at updated, seen at now.
func Row(ps api.PairStatus, updated, now time.Time, stale time.Duration) Pair {
	p := Pair{PairStatus: ps, Updated: updated, AgeMS: now.Sub(updated).Milliseconds()}
	p.Stale = now.Sub(updated) > stale
	var repl, acked []string
	for _, n := range ps.Nodes {
		if r := n.Replication; r != nil && r.State != "" {
			repl = append(repl, n.Node+":"+r.State)
		}
		if s := n.Sessions; s != nil && s.Known > 0 {
			acked = append(acked, fmt.Sprintf("%s:%d/%d", n.Node, s.Acknowledged, s.Known))
		}
		if l := n.License; l != nil && l.Status != "" && l.Status != "valid" {
			w := n.Node + ": " + l.Status
			if l.GraceLeft != "" {
				w += " (grace left " + l.GraceLeft + ")"
			}
			p.Warnings = append(p.Warnings, w)
		}
	}
	p.Replication, p.Acked = strings.Join(repl, " "), strings.Join(acked, " ")
	return p
}

// Read reads every pair's row from the hub's fleet bucket: with one batched
// direct get of every key's last value (no consumer to create, which on a
// clustered stream is a round of the cluster's meta group, seconds on a busy
// machine), or, when the bucket has more keys than one batch may return
// (1,024), with a watch.
func Read(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, now func() time.Time, stale time.Duration) (View, error) {
	v, err := readDirect(ctx, nc, now, stale)
	if errors.Is(err, errTooMany) {
		return readWatch(ctx, js, now, stale)
	}
	return v, err
}

var errTooMany = errors.New("too many keys for one batch")

// readDirect asks the bucket's stream for the last message of every key in
// one batch ($JS.API.DIRECT.GET with multi_last).
func readDirect(ctx context.Context, nc *nats.Conn, now func() time.Time, stale time.Duration) (View, error) {
	stream := "KV_" + subject.FleetBucket
	inbox := nc.NewRespInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return View{}, err
	}
	defer sub.Unsubscribe() //nolint:errcheck
	req, _ := json.Marshal(map[string]any{"multi_last": []string{"$KV." + subject.FleetBucket + ".>"}})
	if err := nc.PublishRequest("$JS.API.DIRECT.GET."+stream, inbox, req); err != nil {
		return View{}, err
	}
	v := View{Pairs: []Pair{}}
	t := now()
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return View{}, fmt.Errorf("read the fleet: %w", err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204", "404": // the end of the batch; no key at all
			Sort(&v)
			return v, nil
		case "413":
			return View{}, errTooMany
		case "503":
			return View{}, fmt.Errorf("read the fleet: no fleet bucket %s answers (%s)", subject.FleetBucket, m.Header.Get("Description"))
		default:
			return View{}, fmt.Errorf("read the fleet: status %s %s", status, m.Header.Get("Description"))
		}
		key := strings.TrimPrefix(m.Header.Get("Nats-Subject"), "$KV."+subject.FleetBucket+".")
		at, err := time.Parse(time.RFC3339Nano, m.Header.Get("Nats-Time-Stamp"))
		if err != nil || m.Header.Get("KV-Operation") != "" {
			continue // a deleted key, or not a value
		}
		if p, ok := decodeValue(key, m.Data, at, t, stale); ok {
			v.Pairs = append(v.Pairs, p)
		}
	}
}

// readWatch reads every key with a watch (an ordered consumer).
func readWatch(ctx context.Context, js jetstream.JetStream, now func() time.Time, stale time.Duration) (View, error) {
	kv, err := js.KeyValue(ctx, subject.FleetBucket)
	if err != nil {
		return View{}, fmt.Errorf("fleet bucket %s on the hub: %w", subject.FleetBucket, err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return View{}, fmt.Errorf("read the fleet: %w", err)
	}
	defer w.Stop() //nolint:errcheck
	v := View{Pairs: []Pair{}}
	for {
		select {
		case <-ctx.Done():
			return View{}, fmt.Errorf("read the fleet: %w", ctx.Err())
		case e := <-w.Updates():
			if e == nil {
				Sort(&v)
				return v, nil
			}
			if p, ok := decode(e, now(), stale); ok {
				v.Pairs = append(v.Pairs, p)
			}
		}
	}
}

// decode makes the row of a bucket entry; false for an entry that is not a
// pair's status.
func decode(e jetstream.KeyValueEntry, now time.Time, stale time.Duration) (Pair, bool) {
	return decodeValue(e.Key(), e.Value(), e.Created(), now, stale)
}

func decodeValue(key string, value []byte, at, now time.Time, stale time.Duration) (Pair, bool) {
	var ps api.PairStatus
	if json.Unmarshal(value, &ps) != nil || ps.Pair != key || !subject.ValidName(ps.Pair) {
		return Pair{}, false
	}
	return Row(ps, at, now, stale), true
}

// Sort orders the rows by pair.
func Sort(v *View) {
	slices.SortFunc(v.Pairs, func(a, b Pair) int { return strings.Compare(a.PairStatus.Pair, b.PairStatus.Pair) })
}

// Print writes the view as a table.
func Print(out io.Writer, v View) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PAIR\tACTIVE\tEPOCH\tNODES\tREPLICATION\tSESSIONS ACKED\tLICENSE\tUPDATED")
	for _, p := range v.Pairs {
		active := "none"
		if p.Active != nil {
			active = *p.Active
		}
		var nodes []string
		for _, n := range p.Nodes {
			nodes = append(nodes, nodeLabel(n))
		}
		lic := "ok"
		if len(p.Warnings) > 0 {
			lic = strings.Join(p.Warnings, "; ")
		}
		age := (time.Duration(p.AgeMS) * time.Millisecond).Round(time.Second).String() + " ago"
		if p.Stale {
			age += " STALE"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", p.PairStatus.Pair, active, p.Epoch, strings.Join(nodes, " "),
			dash(p.Replication), dash(p.Acked), lic, age)
	}
	tw.Flush()
	fmt.Fprintf(out, "%d pairs, %d stale\n", len(v.Pairs), countStale(v))
}

// nodeLabel is a node in the NODES column, told as tandem status tells it:
// "a:active" for a node that answered; for one that did not, only what its
// peer last heard, "b:unreachable(last active)" (an unreachable node is not
// claimed active); "?:never-heard" for a peer its node has not heard since
// it started (hosts does not name it).
func nodeLabel(n api.NodeStatus) string {
	switch {
	case n.Node == "":
		return "?:never-heard"
	case n.Reachable:
		return n.Node + ":" + n.State
	case n.State == "":
		return n.Node + ":unreachable"
	}
	return n.Node + ":unreachable(last " + n.State + ")"
}

func countStale(v View) int {
	n := 0
	for _, p := range v.Pairs {
		if p.Stale {
			n++
		}
	}
	return n
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

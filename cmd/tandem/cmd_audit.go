package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/audit"
)

func init() {
	commands["audit"] = command{"audit replay|export: the pair's events, from either node, by time, node and type", cmdAudit}
}

func cmdAudit(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 || (args[0] != "replay" && args[0] != "export") {
		fmt.Fprintln(errOut, "usage: tandem audit replay [--pair P] [--node N] [--type GLOB] [--since T] [--until T] [--follow] [--json]\n       tandem audit export [--pair P] [--node N] [--type GLOB] --since T [--until T] > events.jsonl")
		return errUsage
	}
	export := args[0] == "export"
	var g globals
	fs := flag.NewFlagSet("audit "+args[0], flag.ContinueOnError)
	g.register(fs)
	pair := fs.String("pair", "", "the pair (default: every pair on the server)")
	nodes := fs.String("node", "", "only events made on these nodes (comma separated)")
	typ := fs.String("type", "", "only events whose type matches this glob, e.g. 'tandem.node.*'")
	since := fs.String("since", "", "from this time: RFC 3339, or a duration back from now such as 24h")
	until := fs.String("until", "", "up to this time: RFC 3339, or a duration back from now")
	follow := false
	if !export {
		fs.BoolVar(&follow, "follow", false, "after the history, show new events until interrupted")
	}
	if err := parse(fs, args[1:], errOut); err != nil {
		return err
	}
	now := time.Now()
	q := audit.Query{Pair: *pair, Type: *typ, Follow: follow}
	var err error
	if q.Since, err = parseWhen(*since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if q.Until, err = parseWhen(*until, now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if export && q.Since.IsZero() {
		return errors.New("--since is required for export (use --since 87600h for everything)")
	}
	if *nodes != "" {
		q.Nodes = strings.Split(*nodes, ",")
	}
	if err := q.Validate(); err != nil {
		return err
	}
	return runReplay(ctx, &g, q, export || g.json, out, errOut)
}

// parseWhen reads an RFC 3339 time, or a duration back from now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration back from now must be positive", s)
		}
		return now.Add(-d), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 24h", s)
	}
	return t, nil
}

func runReplay(ctx context.Context, g *globals, q audit.Query, jsonLines bool, out, errOut io.Writer) error {
	nc, err := g.connect("audit")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc) // the JetStream of the node the client is connected to
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(out, 64<<10)
	defer w.Flush()
	print := tableRow
	if jsonLines {
		print = jsonLine
	} else {
		fmt.Fprintf(w, "%-30s  %-8s  %6s  %-28s  %s\n", "TIME", "NODE", "EPOCH", "TYPE", "WHAT")
	}
	st, err := audit.Replay(ctx, js, q, func(r audit.Record) error {
		if err := print(w, r); err != nil {
			return err
		}
		if q.Follow {
			return w.Flush() // a follower wants each event at once
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(st.Streams) == 0 {
		return fmt.Errorf("no event streams%s on %s", forPair(q.Pair), nc.ConnectedServerName())
	}
	if !jsonLines {
		w.Flush()
		fmt.Fprintf(errOut, "%d events from %s on %s", st.Matched, strings.Join(st.Streams, ", "), nc.ConnectedServerName())
		if st.Rejected > 0 {
			fmt.Fprintf(errOut, "; %d stored messages were not valid events and were skipped", st.Rejected)
		}
		fmt.Fprintln(errOut)
	}
	return nil
}

func forPair(p string) string {
	if p == "" {
		return ""
	}
	return " of pair " + p
}

// jsonLine prints the event exactly as it is stored.
func jsonLine(w io.Writer, r audit.Record) error {
	if _, err := w.Write(r.Raw); err != nil {
		return err
	}
	_, err := w.Write([]byte{'\n'})
	return err
}

func tableRow(w io.Writer, r audit.Record) error {
	e := r.Envelope
	_, err := fmt.Fprintf(w, "%-30s  %-8s  %6d  %-28s  %s\n", e.Time.UTC().Format(time.RFC3339Nano), e.Node, e.Epoch, e.Type, summary(e.Data))
	return err
}

// summary is the reason of an event, or its data in one line.
func summary(data json.RawMessage) string {
	var d map[string]any
	if json.Unmarshal(data, &d) != nil {
		return string(data)
	}
	if r, ok := d["reason"].(string); ok {
		return r
	}
	if h, ok := d["hook"].(string); ok {
		s := fmt.Sprintf("%s: exit %v in %vms", h, d["exit_code"], d["duration_ms"])
		if e, ok := d["error"].(string); ok {
			s += ": " + e
		}
		return s
	}
	return oneLine(string(data))
}

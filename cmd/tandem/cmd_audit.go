package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commandFactories = append(commandFactories, newAuditCmd)
}

// auditOptions are the flags of audit replay and export.
type auditOptions struct {
	globals
	pair, nodes, typ, since, until string
	follow, fleet                  bool
}

func newAuditCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "audit replay|export",
		Short: "audit replay|export: the pair's events, from either node, by time, node and type",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	for _, export := range []bool{false, true} {
		var o auditOptions
		sub := &cobra.Command{
			Use:   "replay [--pair P] [--node N] [--type GLOB] [--since T] [--until T] [--follow]",
			Short: "the events as a table or JSON lines, and with --follow the new ones as they come (A4)",
			RunE: func(c *cobra.Command, _ []string) error {
				return cmdAudit(c.Context(), o, export, c.OutOrStdout(), c.ErrOrStderr())
			},
		}
		if export {
			sub.Use, sub.Short = "export --since T [--pair P] [--node N] [--type GLOB] [--until T] > events.jsonl", "the events as JSON lines, exactly as stored"
		}
		f := sub.Flags()
		o.register(f, a, 3*time.Second)
		f.StringVar(&o.pair, "pair", a.client.Pair, "the pair (default: every pair on the server; $TANDEM_PAIR)")
		f.StringVar(&o.nodes, "node", "", "only events made on these nodes (comma separated)")
		f.StringVar(&o.typ, "type", "", "only events whose type matches this glob, e.g. 'tandem.node.*'")
		f.StringVar(&o.since, "since", "", "from this time: RFC 3339, or a duration back from now such as 24h")
		f.StringVar(&o.until, "until", "", "up to this time: RFC 3339, or a duration back from now")
		if !export {
			f.BoolVar(&o.follow, "follow", false, "after the history, show new events until interrupted")
		}
		f.BoolVar(&o.fleet, "fleet", false, "every pair's events from the fleet hub (--server = the hub); --pair is then a glob such as 'print-*'")
		c.AddCommand(sub)
	}
	return c
}

func cmdAudit(ctx context.Context, o auditOptions, export bool, out, errOut io.Writer) error {
	now := time.Now()
	q := audit.Query{Pair: o.pair, Type: o.typ, Follow: o.follow}
	if o.fleet {
		q.Pair, q.PairGlob, q.Streams = "", o.pair, []string{subject.FleetStream}
	}
	var err error
	if q.Since, err = parseWhen(o.since, now); err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	if q.Until, err = parseWhen(o.until, now); err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if export && q.Since.IsZero() {
		return errors.New("--since is required for export (use --since 87600h for everything)")
	}
	if o.nodes != "" {
		q.Nodes = strings.Split(o.nodes, ",")
	}
	if err := q.Validate(); err != nil {
		return err
	}
	return runReplay(ctx, &o.globals, q, export || o.json, out, errOut)
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

// replayGCPercent is the garbage collector's target while replaying: a
// replay holds little (bounded channels of events) but allocates per event,
// and at the default 100 it spent a sixth of its CPU collecting (issue 19:
// 1,000,000 events, 6.8 s → 5.5 s of user CPU, 1.1 s → 0.4 s of system,
// resident memory 40 → 69 MiB). GOGC in the environment overrides it.
const replayGCPercent = 400

func runReplay(ctx context.Context, g *globals, q audit.Query, jsonLines bool, out, errOut io.Writer) error {
	if os.Getenv("GOGC") == "" { // an operator's own setting stands
		defer debug.SetGCPercent(debug.SetGCPercent(replayGCPercent))
	}
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
	if len(q.Streams) > 0 {
		print = fleetRow
	}
	// The table's header comes with its first row, or once the streams are
	// known: a refusal or an unknown pair prints nothing on stdout.
	header := !jsonLines
	if jsonLines {
		print = jsonLine
	}
	writeHeader := func() {
		if header {
			fmt.Fprintf(w, "%-30s  %-8s  %6s  %-28s  %s\n", "TIME", "NODE", "EPOCH", "TYPE", "WHAT")
			header = false
		}
	}
	st, err := audit.Replay(ctx, js, q, func(r audit.Record) error {
		writeHeader()
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
		writeHeader()
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
	return row(w, r.Envelope, r.Node)
}

// fleetRow is a row of the fleet's events: the node as pair/node.
func fleetRow(w io.Writer, r audit.Record) error {
	return row(w, r.Envelope, r.Pair+"/"+r.Node)
}

func row(w io.Writer, e event.Envelope, node string) error {
	_, err := fmt.Fprintf(w, "%-30s  %-8s  %6d  %-28s  %s\n", e.Time.UTC().Format(time.RFC3339Nano), node, e.Epoch, e.Type, audit.Summary(e))
	return err
}

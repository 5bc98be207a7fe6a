package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commandFactories = append(commandFactories, newReplCmd)
}

func newReplCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "repl pause|resume|resync|verify --pair P",
		Short: "replication: pause|resume (R4), resync (R1), verify (R7)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	for _, v := range []struct{ name, verb, short string }{
		{"pause", api.VerbReplPause, "pause replication (both nodes, or --node); changes queue, nothing is lost (R4)"},
		{"resume", api.VerbReplResume, "resume replication; the queued changes catch up (R4)"},
	} {
		var p pairFlags
		var node string
		sub := &cobra.Command{
			Use:   v.name + " --pair P [--node N]",
			Short: v.short,
			RunE: func(c *cobra.Command, _ []string) error {
				return cmdReplVerb(c.Context(), p, v.verb, api.ReplRequest{Node: node}, p.timeout, c.OutOrStdout(), c.ErrOrStderr())
			},
		}
		p.register(sub.Flags(), a, 3*time.Second)
		sub.Flags().StringVar(&node, "node", "", "only this node (default: both)")
		c.AddCommand(sub)
	}
	c.AddCommand(newResyncCmd(a))
	var p pairFlags
	var attempts int
	verify := &cobra.Command{
		Use:   "verify --pair P",
		Short: "compare both nodes' tables by checksums and name the rows that differ (R7)",
		RunE: func(c *cobra.Command, _ []string) error {
			if err := bothAnswer(c.Context(), p, "verify compares both nodes"); err != nil {
				return err
			}
			nc, err := p.dial("repl")
			if err != nil {
				return err
			}
			defer nc.Close()
			return replVerify(c.Context(), nc, p, max(attempts, 1), c.OutOrStdout())
		},
	}
	p.register(verify.Flags(), a, 3*time.Second)
	verify.Flags().IntVar(&attempts, "attempts", 3, "how many times to compare before reporting a difference (changes in flight settle)")
	c.AddCommand(verify)
	return c
}

// discardWait is how long resync --discard waits for the target's answer
// by default (it answers when its data equals the source's).
const discardWait = 10 * time.Minute

func newResyncCmd(a *app) *cobra.Command {
	var p pairFlags
	var req api.ReplRequest
	c := &cobra.Command{
		Use:   "resync --pair P [--from NODE --discard [--node N]]",
		Short: "re-sync the standby with the master (R1, R10); with --from NODE --discard, make the other node equal to NODE",
		Long: `Without --discard, the standby takes a snapshot of the master and merges it row by row by
version: nothing is lost (rows the master lacks are kept and sent to it; concurrent changes go
the master's way, the loser kept in _tandem_conflict on both nodes). It also re-compares the
tables refused for an incompatible schema.

With --from NODE --discard, the other node (or --node) is made equal to NODE: the rows it holds
only itself, or with a change NODE lacks, are thrown away — and each one is recorded in
_tandem_conflict (kind "discard") on both nodes. NODE may be the master or the standby. The
output counts the discarded rows per table. To keep a bad writer's changes from reaching NODE
first, pause that node (repl pause --node N), resync --discard, then resume it.`,
		Example: `  tandem repl resync --pair p1
  tandem repl pause --pair p1 --node b
  tandem repl resync --pair p1 --from a --discard
  tandem repl resume --pair p1 --node b`,
		RunE: func(c *cobra.Command, _ []string) error {
			switch {
			case req.Discard && req.From == "":
				return errors.New("--discard needs --from NODE: the node whose data is kept")
			case req.Node != "" && req.Node == req.From:
				return fmt.Errorf("node %s cannot resync from itself: --from names the node whose data is kept", req.From)
			}
			wait := p.timeout
			if req.Discard && !c.Flags().Changed("timeout") {
				wait = discardWait
			}
			need := "a resync needs both nodes"
			if req.From != "" {
				need = "a resync --from needs both nodes"
			}
			if err := bothAnswer(c.Context(), p, need); err != nil {
				return err
			}
			return cmdReplVerb(c.Context(), p, api.VerbReplResync, req, wait, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	p.register(c.Flags(), a, 3*time.Second)
	c.Flags().StringVar(&req.From, "from", "", "the node whose data is kept (with --discard: the master or the standby; without: the master)")
	c.Flags().BoolVar(&req.Discard, "discard", false, "make the other node equal to --from, discarding what differs there (recorded in _tandem_conflict on both nodes)")
	c.Flags().StringVar(&req.Node, "node", "", "the node to re-sync (default: the one that is not --from)")
	return c
}

// bothAnswer checks, within --timeout, that both nodes' replicators
// answer: a resync or a verify needs both, and a node out of reach would
// otherwise keep the command waiting (a verify 11 s, a resync "started"
// and never done). need says why, in the refusal.
func bothAnswer(ctx context.Context, p pairFlags, need string) error {
	nc, err := p.dial("repl")
	if err != nil {
		return err
	}
	defer nc.Close()
	raw, err := replGather(ctx, nc, p.pair, api.VerbReplStatus, api.ReplRequest{}, p.timeout)
	if err != nil {
		return err
	}
	if len(raw) < 2 {
		var r api.ReplReply
		_ = reply.Decode(raw[0], &r)
		return &reply.Error{Code: reply.CodeUnavailable, Message: fmt.Sprintf(
			"only %s answered within %s: its peer is unreachable, and %s; nothing changed", orDash(r.Status.Node), p.timeout, need)}
	}
	return nil
}

// cmdReplVerb sends pause, resume or resync to both nodes and prints their
// answers; it fails if either refused.
func cmdReplVerb(ctx context.Context, p pairFlags, verb string, req api.ReplRequest, wait time.Duration, out, errOut io.Writer) error {
	nc, err := p.dial("repl")
	if err != nil {
		return err
	}
	defer nc.Close()
	replies, err := replGather(ctx, nc, p.pair, verb, req, wait)
	if err != nil {
		return err
	}
	var res []api.ReplReply
	for _, b := range replies {
		var r api.ReplReply
		if err := reply.Decode(b, &r); err != nil {
			return err
		}
		res = append(res, r)
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Status.Node < res[j].Status.Node })
	if p.json {
		return printJSON(out, res)
	}
	for _, r := range res {
		msg := r.Message
		if msg == "" {
			msg = r.Status.State
		}
		fmt.Fprintf(out, "%s (%s): %s\n", r.Status.Node, r.Status.Role, msg)
		for _, tbl := range slices.Sorted(maps.Keys(r.Discarded)) {
			fmt.Fprintf(out, "  %s: %d rows discarded\n", tbl, r.Discarded[tbl])
		}
		for _, tbl := range slices.Sorted(maps.Keys(r.Refused)) {
			fmt.Fprintf(out, "  %s: refused, not re-synced: %s\n", tbl, r.Refused[tbl])
		}
	}
	if len(res) < 2 {
		fmt.Fprintln(errOut, "warning: only one node answered; the other keeps its own state")
	}
	return nil
}

// replGather sends a replication verb to every node of the pair.
func replGather(ctx context.Context, nc *nats.Conn, pair, verb string, req api.ReplRequest, wait time.Duration) ([][]byte, error) {
	req.Request = api.Request{V: api.Version, Pair: pair}
	raw, err := reply.Gather(ctx, nc, subject.ReplAdmin(pair, verb), req, 2, wait)
	if err != nil {
		return nil, err
	}
	if len(raw) == 0 {
		return nil, &reply.Error{Code: reply.CodeUnavailable, Message: fmt.Sprintf("no replicator of pair %q answers through %s", pair, nc.ConnectedUrlRedacted())}
	}
	return raw, nil
}

type verifyResult struct {
	Pair   string             `json:"pair"`
	Equal  bool               `json:"equal"`
	Tables []api.ReplTableSum `json:"tables"`
	Diffs  []api.ReplRowDiff  `json:"diffs"`
	Nodes  map[string]uint64  `json:"applied"`
	// Refused lists the tables a node refuses (R11), by table and node:
	// they are not compared.
	Refused map[string]map[string]string `json:"refused,omitempty"`
}

func replVerify(ctx context.Context, nc *nats.Conn, p pairFlags, attempts int, out io.Writer) error {
	var res verifyResult
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		if res, err = verifyOnce(ctx, nc, p); err != nil || res.Equal {
			break
		}
	}
	if err != nil {
		return err
	}
	if p.json {
		if err := printJSON(out, res); err != nil {
			return err
		}
	} else {
		printVerify(out, res)
	}
	if !res.Equal {
		return fmt.Errorf("the nodes differ: %d rows", len(res.Diffs))
	}
	return nil
}

func verifyOnce(ctx context.Context, nc *nats.Conn, p pairFlags) (verifyResult, error) {
	res := verifyResult{Pair: p.pair, Nodes: map[string]uint64{}}
	sums, err := gatherVerify(ctx, nc, p, api.ReplRequest{})
	if err != nil {
		return res, err
	}
	for _, n := range sums {
		res.Nodes[n.Node] = n.Applied
		for tbl, why := range n.Refused {
			if res.Refused == nil {
				res.Refused = map[string]map[string]string{}
			}
			if res.Refused[tbl] == nil {
				res.Refused[tbl] = map[string]string{}
			}
			res.Refused[tbl][n.Node] = why
		}
	}
	compared := func(ts []api.ReplTableSum) []api.ReplTableSum {
		return slices.DeleteFunc(slices.Clone(ts), func(t api.ReplTableSum) bool { return res.Refused[t.Table] != nil })
	}
	a, b := sums[0], sums[1]
	a.Tables, b.Tables = compared(a.Tables), compared(b.Tables)
	res.Tables = a.Tables
	for table, buckets := range api.DifferingBuckets(a.Tables, b.Tables) {
		rows, err := gatherVerify(ctx, nc, p, api.ReplRequest{Table: table, Buckets: buckets})
		if err != nil {
			return res, err
		}
		res.Diffs = append(res.Diffs, api.DifferingRows(table, rows[0], rows[1])...)
	}
	sort.Slice(res.Diffs, func(i, j int) bool {
		if res.Diffs[i].Table != res.Diffs[j].Table {
			return res.Diffs[i].Table < res.Diffs[j].Table
		}
		return res.Diffs[i].PK < res.Diffs[j].PK
	})
	res.Equal = len(res.Diffs) == 0 && len(api.DifferingBuckets(a.Tables, b.Tables)) == 0
	return res, nil
}

// gatherVerify asks both nodes; verify needs both.
func gatherVerify(ctx context.Context, nc *nats.Conn, p pairFlags, req api.ReplRequest) ([]api.ReplVerifyReply, error) {
	raw, err := replGather(ctx, nc, p.pair, api.VerbReplVerify, req, p.timeout+10*time.Second)
	if err != nil {
		return nil, err
	}
	var out []api.ReplVerifyReply
	for _, b := range raw {
		var r api.ReplVerifyReply
		if err := reply.Decode(b, &r); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if len(out) < 2 {
		return nil, errors.New("verify compares both nodes, and only one answered")
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Node < out[j].Node })
	return out, nil
}

func printVerify(out io.Writer, res verifyResult) {
	for _, tbl := range slices.Sorted(maps.Keys(res.Refused)) {
		for _, node := range slices.Sorted(maps.Keys(res.Refused[tbl])) {
			fmt.Fprintf(out, "table %s is refused on %s, not compared: %s\n", tbl, node, res.Refused[tbl][node])
		}
	}
	if res.Equal {
		n := 0
		for _, t := range res.Tables {
			n += int(t.Rows)
		}
		fmt.Fprintf(out, "pair %s: %d tables, %d rows, identical on both nodes\n", res.Pair, len(res.Tables), n)
		return
	}
	fmt.Fprintf(out, "pair %s: the nodes differ\n", res.Pair)
	for _, d := range res.Diffs {
		switch d.On {
		case "":
			fmt.Fprintf(out, "  %s key %s: different contents\n", d.Table, d.PK)
		default:
			fmt.Fprintf(out, "  %s key %s: only on %s\n", d.Table, d.PK, d.On)
		}
	}
}

// replStatusLines prints the replication part of `tandem status`: state and
// the lag of each direction (as its receiving node sees it).
func replStatusLines(out io.Writer, ps api.PairStatus) {
	var rows []api.ReplStatus
	var silent []api.NodeStatus
	for _, n := range ps.Nodes {
		if n.Replication != nil {
			rows = append(rows, *n.Replication)
		} else {
			silent = append(silent, n)
		}
	}
	if len(rows) == 0 && !slices.ContainsFunc(silent, func(n api.NodeStatus) bool { return n.Reachable }) {
		return // no replicator anywhere (a node run without one)
	}
	slices.SortFunc(rows, func(a, b api.ReplStatus) int { return compareStrings(a.Node, b.Node) })
	fmt.Fprintln(out, "\nreplication")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tDIRECTION\tAPPLIED\tPENDING\tLAG\tUNSHIPPED LOG\tCONFLICTS")
	for _, n := range silent {
		fmt.Fprintf(tw, "%s\t%s\n", nodeName(n), noAnswer(n))
	}
	for _, r := range rows {
		state := r.State
		if r.Snapshot != nil {
			state = fmt.Sprintf("%s %.0f%%", state, *r.Snapshot*100)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s → %s\t%d\t%d\t%s\t%d\t%d\n", r.Node, state, orDash(r.In.From), r.In.To,
			r.In.Applied, r.In.Pending, (time.Duration(r.In.LagMS) * time.Millisecond).String(), r.Unacked, r.Conflicts)
	}
	tw.Flush()
	for _, r := range rows {
		for _, tbl := range slices.Sorted(maps.Keys(r.Refused)) {
			fmt.Fprintf(out, "refused on %s: table %s: %s\n", r.Node, tbl, r.Refused[tbl])
		}
	}
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/api"
)

func init() {
	commandFactories = append(commandFactories, newStatusCmd)
}

func newStatusCmd(a *app) *cobra.Command {
	var p pairFlags
	var watch bool
	c := &cobra.Command{
		Use:   "status --pair P [--watch]",
		Short: "the pair: epoch, active node, and each node's role, state, epoch, heartbeat age, maintenance",
		Long: "Shows the pair: epoch, active node, and each node's role, state, epoch,\n" +
			"heartbeat age, maintenance, replication, license and sessions. Every node and\n" +
			"service is asked at once, within one --timeout; a node that does not answer\n" +
			"is shown from its peer's last view (state, epoch, heartbeat age), marked\n" +
			"unreachable. --watch redraws the view on every change of the pair (its events\n" +
			"and state), until interrupted.",
		RunE: func(c *cobra.Command, _ []string) error {
			if watch {
				return watchStatus(c.Context(), p, c.OutOrStdout(), isTerminal(c.OutOrStdout()))
			}
			return cmdStatus(c.Context(), p, c.OutOrStdout())
		},
	}
	p.register(c.Flags(), a, time.Second)
	c.Flags().BoolVarP(&watch, "watch", "w", false, "a live view, redrawn on every change (--json: one object per line)")
	return c
}

func cmdStatus(ctx context.Context, p pairFlags, out io.Writer) error {
	nc, err := p.dialAny("status")
	if err != nil {
		return err
	}
	defer nc.Close()
	ps, _, err := askPair(ctx, nc, p.pair, p.timeout)
	if err != nil {
		return err
	}
	if p.json {
		return printJSON(out, ps)
	}
	printStatus(out, ps)
	return nil
}

// anyNode reports whether a node of ps satisfies f.
func anyNode(ps api.PairStatus, f func(api.NodeStatus) bool) bool {
	for _, n := range ps.Nodes {
		if f(n) {
			return true
		}
	}
	return false
}

// noAnswer is the row of a node whose service did not answer.
// nodeName is n's name, or "?" for a peer its node has not heard since
// it started (hosts does not name it).
func nodeName(n api.NodeStatus) string {
	if n.Node == "" {
		return "?"
	}
	return n.Node
}

func noAnswer(n api.NodeStatus) string {
	if !n.Reachable {
		return "no answer: the node is unreachable"
	}
	return "no answer"
}

// printChecks prints one line per node that has health checks (F15):
// "checks a: healthy — spooler ok" or "checks b: UNHEALTHY — spooler
// failing since 12:03:04 (HTTP 503)".
func printChecks(out io.Writer, ps api.PairStatus) {
	for _, n := range ps.Nodes {
		if len(n.Checks) == 0 {
			continue
		}
		parts := make([]string, len(n.Checks))
		for i, c := range n.Checks {
			parts[i] = c.Name + " ok"
			if !c.Healthy {
				parts[i] = fmt.Sprintf("%s failing since %s (%s)", c.Name, c.Since.Local().Format(time.TimeOnly), c.Output)
			}
		}
		health := "healthy"
		if !n.IsHealthy() {
			health = "UNHEALTHY"
		}
		fmt.Fprintf(out, "checks %s: %s — %s\n", n.Node, health, strings.Join(parts, ", "))
	}
}

// printUnanswered prints one line per node some of whose parts did not
// answer (api.NodeStatus.Unanswered): "no answer from a: sessions". An
// unreachable node none of whose parts answered is left to its row.
func printUnanswered(out io.Writer, ps api.PairStatus) {
	for _, n := range ps.Nodes {
		if len(n.Unanswered) == 0 || !n.Reachable && len(n.Unanswered) == len(statusParts) {
			continue
		}
		why := ""
		if !n.Reachable {
			why = " (the node is unreachable)"
		}
		fmt.Fprintf(out, "no answer from %s: %s%s\n", nodeName(n), strings.Join(n.Unanswered, ", "), why)
	}
}

func printStatus(out io.Writer, ps api.PairStatus) {
	active := "none"
	if ps.Active != nil {
		active = *ps.Active
	}
	fmt.Fprintf(out, "pair %s   epoch %d   active %s\n", ps.Pair, ps.Epoch, active)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tSTATE\tEPOCH\tREACHABLE\tHEARTBEAT AGE\tMAINTENANCE")
	for _, n := range ps.Nodes {
		age := "-"
		if n.HeartbeatAgeMS != nil {
			age = (time.Duration(*n.HeartbeatAgeMS) * time.Millisecond).String()
		}
		maint := "off"
		if n.Maintenance {
			maint = strings.TrimSpace("on " + n.MaintenanceLeft)
		}
		state := orDash(n.State)
		if !n.Reachable {
			// Its peer's last view of it: the state it was last heard in.
			state = "last " + state
		}
		if n.Node == "" {
			state = "never heard" // since its peer started; hosts does not name it
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", nodeName(n), n.Role, state, n.Epoch, yesNo(n.Reachable), age, maint)
	}
	tw.Flush()
	printUnanswered(out, ps)
	printChecks(out, ps)
	for _, lines := range statusLines {
		lines(out, ps)
	}
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
)

func init() {
	commands["status"] = command{"the pair: epoch, active node, and each node's role, state, epoch, heartbeat age, maintenance", cmdStatus}
}

func cmdStatus(ctx context.Context, args []string, out, errOut io.Writer) error {
	var p pairFlags
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	p.register(fs)
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	nc, replies, err := p.open(ctx, "status")
	if err != nil {
		return err
	}
	defer nc.Close()
	ps := api.Combine(p.pair, replies)
	for _, extra := range statusExtras {
		extra(ctx, nc, &ps)
	}
	if p.json {
		return printJSON(out, ps)
	}
	printStatus(out, ps)
	return nil
}

// statusExtras add what the other services know to a pair's status
// (replication lag, license state, sessions). Each service's command file
// appends its own in init(); an extra that gets no answer leaves the status
// as it is.
var statusExtras []func(ctx context.Context, nc *nats.Conn, ps *api.PairStatus)

// attach hands the status entry of node to set, if the pair has that node.
func attach(ps *api.PairStatus, node string, set func(*api.NodeStatus)) {
	for i := range ps.Nodes {
		if ps.Nodes[i].Node == node {
			set(&ps.Nodes[i])
		}
	}
}

// statusLines print the extras' part of the table view, after the nodes.
var statusLines []func(out io.Writer, ps api.PairStatus)

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
			maint = "on " + n.MaintenanceLeft
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.Node, n.Role, orDash(n.State), n.Epoch, yesNo(n.Reachable), age, maint)
	}
	tw.Flush()
	for _, lines := range statusLines {
		lines(out, ps)
	}
}

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
)

func init() {
	commands["status"] = command{"the pair: epoch, active node, and each node's role, state, epoch, heartbeat age, maintenance", cmdStatus}
}

func cmdStatus(ctx context.Context, args []string, out, errOut io.Writer) error {
	var g globals
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	g.register(fs)
	pair := fs.String("pair", "", "the pair")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if err := requirePair(*pair); err != nil {
		return err
	}
	nc, err := g.connect("status")
	if err != nil {
		return err
	}
	defer nc.Close()
	replies, err := gatherStatus(ctx, nc, *pair, g.timeout)
	if err != nil {
		return err
	}
	ps := api.Combine(*pair, replies)
	if g.json {
		return printJSON(out, ps)
	}
	printStatus(out, ps)
	return nil
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
			maint = "on " + n.MaintenanceLeft
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", n.Node, n.Role, orDash(n.State), n.Epoch, yesNo(n.Reachable), age, maint)
	}
	tw.Flush()
}

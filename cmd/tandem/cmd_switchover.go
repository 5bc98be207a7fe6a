package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commands["switchover"] = command{"hand the active role to the other node (only through the master)", cmdSwitchover}
	commands["maintenance"] = command{"maintenance on|off: no automatic failover while on (with a time limit)", cmdMaintenance}
}

func cmdSwitchover(ctx context.Context, args []string, out, errOut io.Writer) error {
	var p pairFlags
	fs := flag.NewFlagSet("switchover", flag.ContinueOnError)
	p.register(fs)
	to := fs.String("to", "", "the node to make active (default: the passive one)")
	wait := fs.Duration("wait", 15*time.Second, "how long to wait for the switchover to complete (0: do not wait)")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	nc, replies, err := p.open(ctx, "switchover")
	if err != nil {
		return err
	}
	defer nc.Close()
	node, err := localNode(nc, replies)
	if err != nil {
		return err
	}
	before := api.Combine(p.pair, replies)
	rctx, cancel := context.WithTimeout(ctx, p.timeout+5*time.Second)
	defer cancel()
	req := api.SwitchoverRequest{Request: api.Request{V: api.Version, Pair: p.pair}, To: *to}
	if err := reply.Request(rctx, nc, subject.Admin(p.pair, node, api.VerbSwitchover), req, nil); err != nil {
		return err
	}
	if *wait == 0 {
		fmt.Fprintf(out, "switchover accepted by %s\n", node)
		return nil
	}
	after, err := waitForNewActive(ctx, nc, p.pair, before, *wait)
	if err != nil {
		return err
	}
	if p.json {
		return printJSON(out, after)
	}
	fmt.Fprintf(out, "switchover complete: %s is active in epoch %d\n", *after.Active, after.Epoch)
	return nil
}

// waitForNewActive polls the pair's status until a node is active in an epoch
// above the one before.
func waitForNewActive(ctx context.Context, nc *nats.Conn, pair string, before api.PairStatus, wait time.Duration) (api.PairStatus, error) {
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		replies, err := gatherStatus(ctx, nc, pair, time.Second)
		if err == nil {
			ps := api.Combine(pair, replies)
			if ps.Active != nil && ps.Epoch > before.Epoch {
				return ps, nil
			}
		}
		select {
		case <-ctx.Done():
			return api.PairStatus{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return api.PairStatus{}, fmt.Errorf("the switchover did not complete within %v (the master may have rolled it back; see tandem status)", wait)
}

func cmdMaintenance(ctx context.Context, args []string, out, errOut io.Writer) error {
	if len(args) == 0 || (args[0] != "on" && args[0] != "off") {
		fmt.Fprintln(errOut, "usage: tandem maintenance on|off --pair P [--for D]")
		return errUsage
	}
	on := args[0] == "on"
	var p pairFlags
	fs := flag.NewFlagSet("maintenance", flag.ContinueOnError)
	p.register(fs)
	dur := fs.Duration("for", 0, "how long maintenance lasts (default: the node's maintenance.default, 1h)")
	if err := parse(fs, args[1:], errOut); err != nil {
		return err
	}
	nc, replies, err := p.open(ctx, "maintenance")
	if err != nil {
		return err
	}
	defer nc.Close()
	node, err := localNode(nc, replies)
	if err != nil {
		return err
	}
	req := api.MaintenanceRequest{Request: api.Request{V: api.Version, Pair: p.pair}, On: on}
	if *dur > 0 {
		req.For = dur.String()
	}
	var res map[string]any
	rctx, cancel := context.WithTimeout(ctx, p.timeout+5*time.Second)
	defer cancel()
	if err := reply.Request(rctx, nc, subject.Admin(p.pair, node, api.VerbMaintenance), req, &res); err != nil {
		return err
	}
	if p.json {
		return printJSON(out, res)
	}
	if on {
		fmt.Fprintf(out, "maintenance on for %v: no automatic failover until then\n", res["for"])
	} else {
		fmt.Fprintln(out, "maintenance off")
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commandFactories = append(commandFactories, newSwitchoverCmd, newMaintenanceCmd)
}

func newSwitchoverCmd(a *app) *cobra.Command {
	var p pairFlags
	var to string
	var wait time.Duration
	c := &cobra.Command{
		Use:   "switchover --pair P [--to NODE]",
		Short: "hand the active role to the other node (only through the master)",
		RunE: func(c *cobra.Command, _ []string) error {
			return cmdSwitchover(c.Context(), p, to, wait, c.OutOrStdout())
		},
	}
	p.register(c.Flags(), a, 3*time.Second)
	c.Flags().StringVar(&to, "to", "", "the node to make active (default: the passive one)")
	c.Flags().DurationVar(&wait, "wait", 15*time.Second, "how long to wait for the switchover to complete (0: do not wait)")
	return c
}

func cmdSwitchover(ctx context.Context, p pairFlags, to string, wait time.Duration, out io.Writer) error {
	nc, replies, node, err := p.openTarget(ctx, "switchover")
	if err != nil {
		return err
	}
	defer nc.Close()
	before := api.Combine(p.pair, replies)
	rctx, cancel := context.WithTimeout(ctx, p.timeout+5*time.Second)
	defer cancel()
	req := api.SwitchoverRequest{Request: api.Request{V: api.Version, Pair: p.pair}, To: to}
	if err := reply.Request(rctx, nc, subject.Admin(p.pair, node, api.VerbSwitchover), req, nil); err != nil {
		return err
	}
	if wait == 0 {
		fmt.Fprintf(out, "switchover accepted by %s\n", node)
		return nil
	}
	after, err := waitForNewActive(ctx, nc, p.pair, before, wait)
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

func newMaintenanceCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "maintenance on|off --pair P [--for D]",
		Short: "maintenance on|off: no automatic failover while on (with a time limit)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	for _, on := range []bool{true, false} {
		var p pairFlags
		var dur time.Duration
		sub := &cobra.Command{
			Use:   "off --pair P",
			Short: "end maintenance: automatic failover again",
			RunE: func(c *cobra.Command, _ []string) error {
				if c.Flags().Changed("for") && dur <= 0 {
					return fmt.Errorf("--for %v: maintenance lasts a positive duration (leave --for out for the node's maintenance.default)", dur)
				}
				return cmdMaintenance(c.Context(), p, on, dur, c.OutOrStdout())
			},
		}
		p.register(sub.Flags(), a, 3*time.Second)
		if on {
			sub.Use, sub.Short = "on --pair P [--for D]", "start maintenance: no automatic failover until it ends (F10)"
			sub.Flags().DurationVar(&dur, "for", 0, "how long maintenance lasts (default: the node's maintenance.default, 1h)")
		}
		c.AddCommand(sub)
	}
	return c
}

func cmdMaintenance(ctx context.Context, p pairFlags, on bool, dur time.Duration, out io.Writer) error {
	nc, _, node, err := p.openTarget(ctx, "maintenance")
	if err != nil {
		return err
	}
	defer nc.Close()
	req := api.MaintenanceRequest{Request: api.Request{V: api.Version, Pair: p.pair}, On: on}
	if dur > 0 {
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

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/fleet"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	commandFactories = append(commandFactories, newFleetCmd)
}

func newFleetCmd(a *app) *cobra.Command {
	c := &cobra.Command{
		Use:   "fleet status",
		Short: "fleet status: every pair reporting to the fleet hub (--server = the hub)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	var g globals
	var watch bool
	var stale time.Duration
	st := &cobra.Command{
		Use:   "status [--json] [--watch] [--stale D]",
		Short: "one row per pair: active node, epoch, nodes' states, replication, sessions acknowledged, license warnings",
		Long: "Shows every pair as its nodes last reported it to the fleet hub (--server =\n" +
			"the hub's client URLs): active node, epoch, the nodes' states, replication,\n" +
			"sessions acknowledged and license warnings. A pair whose report is older than\n" +
			"--stale is marked STALE (its nodes are down or cut off from the hub).\n" +
			"--watch redraws on every change (--json: one object per line).",
		RunE: func(c *cobra.Command, _ []string) error {
			return cmdFleetStatus(c.Context(), g, watch, stale, c.OutOrStdout())
		},
	}
	g.register(st.Flags(), a, 3*time.Second)
	st.Flags().BoolVarP(&watch, "watch", "w", false, "a live view, redrawn on every change")
	st.Flags().DurationVar(&stale, "stale", fleet.DefaultStale, "mark a pair whose last report is older than this")
	c.AddCommand(st)
	return c
}

func cmdFleetStatus(ctx context.Context, g globals, watch bool, stale time.Duration, out io.Writer) error {
	if stale <= 0 {
		return fmt.Errorf("--stale %v: must be positive", stale)
	}
	nc, err := g.connect("fleet")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	if watch {
		return watchFleet(ctx, nc, js, g.json, stale, out)
	}
	rctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	v, err := fleet.Read(rctx, nc, js, time.Now, stale)
	if err != nil {
		return fmt.Errorf("%w (is %s a fleet hub?)", err, nc.ConnectedUrlRedacted())
	}
	if g.json {
		return printJSON(out, v)
	}
	fleet.Print(out, v)
	return nil
}

// watchFleet prints the view, then again on every change of the fleet
// bucket and every second (ages, stale marks), until ctx ends.
func watchFleet(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, asJSON bool, stale time.Duration, out io.Writer) error {
	kv, err := js.KeyValue(ctx, subject.FleetBucket)
	if err != nil {
		return fmt.Errorf("fleet bucket: %w", err)
	}
	w, err := kv.WatchAll(ctx, jetstream.IgnoreDeletes(), jetstream.MetaOnly())
	if err != nil {
		return err
	}
	defer w.Stop() //nolint:errcheck
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.Updates():
			drain(w.Updates())
		case <-tk.C:
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		v, err := fleet.Read(rctx, nc, js, time.Now, stale)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		if asJSON {
			b, _ := json.Marshal(v)
			fmt.Fprintf(out, "%s\n", b)
			continue
		}
		fmt.Fprintf(out, "\x1b[H\x1b[2J%s\n", time.Now().Format(time.TimeOnly))
		fleet.Print(out, v)
	}
}

// drain empties ch of what is already there.
func drain(ch <-chan jetstream.KeyValueEntry) {
	for {
		select {
		case <-ch:
		default:
			return
		}
	}
}

package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/check"
)

func init() {
	commandFactories = append(commandFactories, newCheckCmd)
}

func newCheckCmd(a *app) *cobra.Command {
	var p pairFlags
	c := &cobra.Command{
		Use:   "check --pair P",
		Short: "monitoring plugin: one line TANDEM OK|WARNING|CRITICAL|UNKNOWN - … | perfdata; exit 0/1/2/3",
		Long: "Checks the pair for a monitoring system (Nagios, Icinga, Sensu, Zabbix agents),\n" +
			"following the monitoring-plugins convention: one line on stdout,\n\n" +
			"  TANDEM OK - pair p: a active in epoch 4, b passive | epoch=4 lag=0.012s sessions_acked=20\n\n" +
			"and the exit status 0 OK; 1 WARNING: a node unreachable, replication paused or\n" +
			"blocked, a license warning, maintenance on; 2 CRITICAL: no active node, two\n" +
			"active nodes, licenses invalid, a node's audit streams changed behind its\n" +
			"back; 3 UNKNOWN: the pair cannot be asked (and a command line that does not\n" +
			"parse).",
		RunE: func(c *cobra.Command, _ []string) error {
			return cmdCheck(c.Context(), p, c.OutOrStdout())
		},
	}
	p.register(c.Flags(), a, time.Second)
	return c
}

func cmdCheck(ctx context.Context, p pairFlags, out io.Writer) error {
	r := checkPair(ctx, p)
	if p.json {
		if err := printJSON(out, r); err != nil {
			return err
		}
	} else {
		fmt.Fprintln(out, r.Line())
	}
	if r.Code != check.OK {
		return &exitError{r.Code}
	}
	return nil
}

func checkPair(ctx context.Context, p pairFlags) check.Result {
	nc, err := p.dialAny("check")
	if err != nil {
		return check.UnknownResult(p.pair, p.access.explain(err))
	}
	defer nc.Close()
	ps, _, err := askPair(ctx, nc, p.pair, p.timeout)
	if err != nil {
		return check.UnknownResult(p.pair, p.access.explain(err))
	}
	return check.Evaluate(ps)
}

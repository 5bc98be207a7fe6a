package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/demo"
	"github.com/tandem-ha/tandem/pkg/logging"
)

func init() {
	commandFactories = append(commandFactories, newDemoCmd)
}

func newDemoCmd(*app) *cobra.Command {
	var o demo.Options
	var plain, verbose bool
	c := &cobra.Command{
		Use:   "demo [flags]",
		Short: "a whole pair on loopback in this process: live status, a failover and the node's return",
		Long: "Runs a pair — master a and standby b, each with its embedded NATS server — in this\n" +
			"process on loopback, shows the pair's status and what happens, kills the active\n" +
			"node, shows the standby taking over, and restarts the killed node, which comes\n" +
			"back passive. Other terminals can reach the pair with the --server URLs it prints.",
		RunE: func(c *cobra.Command, _ []string) error {
			// A reader that goes away (tandem demo | head) ends the demo
			// as Ctrl-C and SIGTERM do, so that it still shuts the pair
			// down and removes its directory: SIGPIPE is caught (else Go
			// dies of it on a write to stdout) and the failed write ends
			// the demo.
			ctx, cancel := context.WithCancel(c.Context())
			defer cancel()
			sigpipe := make(chan os.Signal, 1)
			signal.Notify(sigpipe, syscall.SIGPIPE)
			defer signal.Stop(sigpipe)
			o.Out, o.ErrOut, o.Table = &endOnError{w: c.OutOrStdout(), end: cancel}, c.ErrOrStderr(), printStatus
			if verbose {
				o.Logs, o.LogFormat = o.ErrOut, logging.FormatConsole
			}
			o.Live = !plain && !verbose && isTerminal(c.OutOrStdout())
			return demo.Run(ctx, o)
		},
	}
	f := c.Flags()
	f.DurationVar(&o.KillAfter, "kill-after", 5*time.Second, "kill the active node after this long (as in a crash); 0: no failover")
	f.DurationVar(&o.RestartAfter, "restart-after", 3*time.Second, "restart the killed node this long after the kill; 0: leave it down")
	f.DurationVar(&o.Duration, "duration", 20*time.Second, "end the demo after this long; 0: run until Ctrl-C")
	f.DurationVar(&o.Heartbeat, "heartbeat", time.Second, "heartbeat interval of both nodes")
	f.DurationVar(&o.Timeout, "timeout", 3*time.Second, "heartbeat timeout of both nodes (at least 2 × --heartbeat)")
	f.IntVar(&o.Sessions, "sessions", 20, "client sessions to run and show (pkg/session, on one connection to both nodes); 0: none")
	f.StringVar(&o.Pair, "pair", "demo", "name of the pair")
	f.BoolVar(&plain, "plain", false, "print one line per change even on a terminal")
	f.BoolVar(&verbose, "verbose", false, "write the nodes' logs to stderr (implies --plain)")
	return c
}

// isTerminal reports whether w is a terminal that understands cursor
// movement.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// endOnError passes writes to w; the first that fails (the reader went
// away) calls end.
type endOnError struct {
	w    io.Writer
	end  func()
	once sync.Once
}

func (e *endOnError) Write(p []byte) (int, error) {
	n, err := e.w.Write(p)
	if err != nil {
		e.once.Do(e.end)
	}
	return n, err
}

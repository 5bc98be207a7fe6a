package main

import (
	"context"
	"flag"
	"io"
	"os"
	"time"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/demo"
	"github.com/tandem-ha/tandem/pkg/logging"
)

func init() {
	commands["demo"] = command{"a whole pair on loopback in this process: live status, a failover and the node's return", cmdDemo}
}

func cmdDemo(ctx context.Context, args []string, out, errOut io.Writer) error {
	o := demo.Options{Out: out, ErrOut: errOut, Table: printStatus}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.Usage = func() {
		fs.Output().Write([]byte("usage: tandem demo [flags]\n\n" +
			"Runs a pair — master a and standby b, each with its embedded NATS server — in this\n" +
			"process on loopback, shows the pair's status and what happens, kills the active\n" +
			"node, shows the standby taking over, and restarts the killed node, which comes\n" +
			"back passive. Other terminals can reach the pair with the --server URLs it prints.\n\n"))
		fs.PrintDefaults()
	}
	fs.DurationVar(&o.KillAfter, "kill-after", 5*time.Second, "kill the active node after this long (as in a crash); 0: no failover")
	fs.DurationVar(&o.RestartAfter, "restart-after", 3*time.Second, "restart the killed node this long after the kill; 0: leave it down")
	fs.DurationVar(&o.Duration, "duration", 0, "end the demo after this long; 0: run until Ctrl-C")
	fs.DurationVar(&o.Heartbeat, "heartbeat", time.Second, "heartbeat interval of both nodes")
	fs.DurationVar(&o.Timeout, "timeout", 3*time.Second, "heartbeat timeout of both nodes (at least 2 × --heartbeat)")
	fs.IntVar(&o.Sessions, "sessions", 20, "client sessions to run and show (pkg/session, on one connection to both nodes); 0: none")
	fs.StringVar(&o.Pair, "pair", "demo", "name of the pair")
	plain := fs.Bool("plain", false, "print one line per change even on a terminal")
	verbose := fs.Bool("verbose", false, "write the nodes' logs to stderr (implies --plain)")
	if err := parse(fs, args, errOut); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return errUsage
	}
	if *verbose {
		o.Logs, o.LogFormat = errOut, logging.FormatConsole
	}
	o.Live = !*plain && !*verbose && isTerminal(out)
	return demo.Run(ctx, o)
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

// Command tandem runs a node of a Tandem pair, the demo, and the operator's
// commands (SPEC §8). main only maps signals and exit codes; each command is
// a function of (ctx, args, stdout, stderr).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, out, errOut io.Writer) error
}

var commands = map[string]command{}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run dispatches a command line and returns the exit status. Errors are
// printed as one line on errOut.
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(errOut)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(errOut, "tandem: unknown command %q (see tandem help)\n", args[0])
		return 2
	}
	if err := c.run(ctx, args[1:], out, errOut); err != nil {
		switch err {
		case errUsage:
			return 2
		case errHelp:
			return 0
		}
		fmt.Fprintf(errOut, "tandem %s: %s\n", args[0], oneLine(err.Error()))
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "tandem — keeps a service available on a master/standby pair\n\nusage: tandem COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun tandem COMMAND -h for the flags of a command.")
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

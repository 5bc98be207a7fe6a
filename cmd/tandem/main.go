// Command tandem runs a node of a Tandem pair, the demo, and the operator's
// commands (SPEC §8). main only maps signals and exit codes; run builds the
// command tree and executes one command line, so tests run whole commands
// in-process.
//
// # Why cobra
//
// The command line is built on github.com/spf13/cobra (with spf13/pflag), the
// library etcdctl, kubectl and the GitHub CLI use. One definition of each
// command gives: help on stdout for -h, --help and `tandem help CMD`; typed
// flags in that help (duration, int, strings, …); unknown commands refused
// with a "did you mean"; shell completion for bash, zsh and fish
// (`tandem completion SHELL`); man pages (`tandem man --dir D`, cobra/doc);
// and --version. kong would give most of that too, but its completion and man
// pages are third-party add-ons; the standard flag package gives none of it.
//
// # Exit status
//
// 0 on success and for help; 2 for a command line that does not parse
// (unknown command or flag, stray argument) with one line on stderr that
// names the help to read; 1 with a one-line error on stderr when the command
// fails. `tandem check` exits with the monitoring-plugin codes 0–3.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// commandFactories make the top-level commands; each cmd_*.go file adds its
// own in init(). They run once per command line (run), so the flag
// variables of one run never leak into the next.
var commandFactories []func(a *app) *cobra.Command

// app is what every command of one command line shares.
type app struct {
	// client holds the client defaults (environment, client file).
	client clientDefaults
	// access records what the NATS server refused the command's
	// credentials, and explains it (access.go).
	access *access
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a command line that does not parse: exit 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// exitError ends a command with a given exit status; its message, if any,
// was printed already.
type exitError struct{ code int }

func (e *exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run executes one command line and returns the exit status.
func run(ctx context.Context, args []string, out, errOut io.Writer) int {
	root := newRoot(out, errOut)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	path := "tandem"
	if cmd != nil {
		path = cmd.CommandPath()
	}
	var ue *usageError
	if errors.As(err, &ue) && cmd != nil && cmd.Name() == "check" && cmd.Parent() == root {
		// A monitoring plugin says UNKNOWN (3) for a bad command line too.
		fmt.Fprintf(out, "TANDEM UNKNOWN - %s (see %s --help)\n", oneLine(err.Error()), path)
		return 3
	}
	if errors.As(err, &ue) {
		fmt.Fprintf(errOut, "%s: %s (see %s --help)\n", path, oneLine(err.Error()), path)
		return 2
	}
	fmt.Fprintf(errOut, "%s: %s\n", path, oneLine(err.Error()))
	return 1
}

// newRoot builds the whole command tree writing to out and errOut.
func newRoot(out, errOut io.Writer) *cobra.Command {
	a := &app{client: loadClientDefaults(os.Getenv, userConfigDir()), access: &access{}}
	root := &cobra.Command{
		Use:   "tandem",
		Short: "keeps a service available on a master/standby pair",
		Long: "tandem keeps a service available on a master/standby pair: it runs a node\n" +
			"(tandem node), the demo (tandem demo), and the operator's commands.\n\n" +
			"Client commands read their defaults from TANDEM_SERVER, TANDEM_PAIR,\n" +
			"TANDEM_CREDS and TANDEM_TLS_CA, then from ~/.config/tandem/client.yaml\n" +
			"(keys server, pair, creds, tls_ca); flags override both.",
		Version:       versionLine(),
		SilenceErrors: true,
		SilenceUsage:  true,
		Args:          cobra.ArbitraryArgs,
		RunE:          groupRun,
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetFlagErrorFunc(flagError)
	root.SetHelpCommand(newHelpCmd())
	for _, f := range commandFactories {
		root.AddCommand(f(a))
	}
	strictArgs(root)
	explainRefusals(root, a.access)
	return root
}

// explainRefusals runs every command through acc.run: a refusal of the
// NATS server ends the command at once and is told plainly, whichever
// command met it.
func explainRefusals(c *cobra.Command, acc *access) {
	if run := c.RunE; run != nil {
		c.RunE = func(c *cobra.Command, args []string) error { return acc.run(c, args, run) }
	}
	for _, sub := range c.Commands() {
		explainRefusals(sub, acc)
	}
}

// newHelpCmd is `tandem help [COMMAND…]`: the command's help on stdout, or
// for a command that does not exist a usage error with a suggestion (cobra's
// own help command prints the general usage and exits 0).
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "help about any command",
		Args:  cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err == nil && len(rest) == 0 {
				return cmd.Help()
			}
			msg := fmt.Sprintf("unknown help topic %q", strings.Join(args, " "))
			if cmd != nil && len(rest) > 0 {
				if cmd.SuggestionsMinimumDistance <= 0 {
					cmd.SuggestionsMinimumDistance = 2
				}
				if s := cmd.SuggestionsFor(rest[0]); len(s) > 0 {
					msg += fmt.Sprintf("; did you mean %q?", s[0])
				}
			}
			return &usageError{errors.New(msg)}
		},
	}
}

// groupRun is the RunE of a command that only holds subcommands: without
// one it prints the usage (exit 2), with an unknown one it suggests the
// closest.
func groupRun(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		c.SetOut(c.ErrOrStderr())
		_ = c.Usage()
		return &exitError{2}
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %q?", s[0])
	}
	return &usageError{errors.New(msg)}
}

// strictArgs makes every argument check a usage error, and a command that
// declares none take no arguments (cobra would drop them silently).
func strictArgs(c *cobra.Command) {
	check := c.Args
	if check == nil {
		check = cobra.NoArgs
	}
	c.Args = func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
	if c.HasSubCommands() {
		// A mistyped command comes with the flags meant for it: let them
		// pass so that groupRun names the command and suggests one.
		c.FParseErrWhitelist.UnknownFlags = true
	}
	for _, sub := range c.Commands() {
		strictArgs(sub)
	}
}

// flagError makes a flag that does not parse a usage error, with the closest
// known flag as a suggestion.
func flagError(c *cobra.Command, err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		if s := closestFlag(c.Flags(), name); s != "" {
			msg += fmt.Sprintf("; did you mean --%s?", s)
		}
	}
	return &usageError{errors.New(msg)}
}

// closestFlag is the flag of fs nearest to name (closest), or "".
func closestFlag(fs *pflag.FlagSet, name string) string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
	sort.Strings(names)
	return closest(name, names)
}

// closest is the one of names nearest to name (edit distance at most 2, or
// a name that starts with it; the first of equals), or "".
func closest(name string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		d := levenshtein(name, n)
		if strings.HasPrefix(n, name) && d > 0 {
			d = min(d, 2)
		}
		if d < bestD {
			best, bestD = n, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// oneLine puts an error on one line: its lines (errors.Join's, one per
// problem) joined by "; ", the spaces of each collapsed.
func oneLine(s string) string {
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			parts = append(parts, strings.Join(f, " "))
		}
	}
	return strings.Join(parts, "; ")
}

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
)

func init() {
	commandFactories = append(commandFactories, newNodeCmd, newRunCmd)
}

func newNodeCmd(*app) *cobra.Command {
	return nodeCommand("node", "node --config FILE [flags]", "run one node: embedded NATS + monitor, replicator, notifier, license")
}

// newRunCmd runs one part of a node in this process: `tandem run nats` the
// node's NATS server, `tandem run monitor` (…) one service, `tandem run
// dashboard` the live dashboard, each of which connects to that server with
// nats.url.
func newRunCmd(*app) *cobra.Command {
	parts := append([]string{"nats"}, node.Parts...)
	c := &cobra.Command{
		Use:   "run " + strings.Join(parts, "|") + " --config FILE [flags]",
		Short: "run one part of a node: nats (its NATS server), " + strings.Join(node.Services, ", ") + " or " + node.Dashboard + " (the split layout of deploy/)",
		Args:  cobra.ArbitraryArgs,
		RunE:  groupRun,
	}
	for _, part := range parts {
		short := "run the node's NATS server alone"
		switch part {
		case "nats":
		case node.Dashboard:
			short = "run the node's live dashboard alone (at / of admin.listen), connected to the node's NATS server (nats.url) as the admin user"
		default:
			short = "run the node's " + part + " alone, connected to the node's NATS server (nats.url)"
		}
		c.AddCommand(nodeCommand(part, part+" --config FILE [flags]", short))
	}
	return c
}

// configFlag is one configuration key as a typed flag: its value is checked
// when it is parsed, and its type shows in the help.
type configFlag struct {
	spec  config.FlagSpec
	value string
}

func (f *configFlag) String() string { return f.value }
func (f *configFlag) Type() string   { return f.spec.Type }
func (f *configFlag) Set(v string) error {
	var c config.Config
	if err := config.ParseValue(f.spec.Key, v, &c); err != nil {
		return err
	}
	f.value = v
	return nil
}

// registerConfigFlags defines one flag per configuration key; the returned
// func gives the ones the user set, for config.Load.
func registerConfigFlags(fs *pflag.FlagSet) (set func() map[string]string) {
	for _, spec := range config.FlagSpecs() {
		fl := fs.VarPF(&configFlag{spec: spec, value: spec.Default}, spec.Key, "", spec.Help)
		if spec.Type == "bool" {
			fl.NoOptDefVal = "true"
		}
	}
	return func() map[string]string {
		m := map[string]string{}
		fs.Visit(func(fl *pflag.Flag) {
			if cf, ok := fl.Value.(*configFlag); ok {
				m[cf.spec.Key] = cf.value
			}
		})
		return m
	}
}

// serverFlags are the flags every command that runs a server shares
// (tandem node, run, hub, witness): --config FILE, --log-format, and a flag
// per configuration key.
type serverFlags struct {
	file, logFormat string
	set             func() map[string]string
}

// addServerFlags defines them on fs; what names the configuration file
// ("the node's").
func addServerFlags(fs *pflag.FlagSet, what string) *serverFlags {
	f := &serverFlags{}
	fs.StringVar(&f.file, "config", "", what+" YAML configuration file")
	fs.StringVar(&f.logFormat, "log-format", "", "json or console (same as --log.format)")
	f.set = registerConfigFlags(fs)
	return f
}

// keys are the configuration keys the user set by flag, --log-format
// among them, for config.Load.
func (f *serverFlags) keys() map[string]string {
	m := f.set()
	if f.logFormat != "" {
		m["log.format"] = f.logFormat
	}
	return m
}

// nodeCommand runs a whole node ("node"), its NATS server alone ("nats"), or
// one of its services alone: all read the node's configuration the same way.
func nodeCommand(part, use, short string) *cobra.Command {
	var f *serverFlags
	c := &cobra.Command{
		Use:   use,
		Short: short,
		Long: short + ".\n\nEvery configuration key is also a flag (--heartbeat.interval 500ms) and an\n" +
			"environment variable (TANDEM_HEARTBEAT_INTERVAL); flags override the variables,\n" +
			"which override the file.",
		RunE: func(c *cobra.Command, _ []string) error {
			return runNode(c.Context(), part, f.file, f.keys(), c.ErrOrStderr())
		},
	}
	f = addServerFlags(c.Flags(), "the node's")
	return c
}

func runNode(ctx context.Context, part, file string, flags map[string]string, errOut io.Writer) error {
	cfg, err := config.Load(file, os.Environ(), flags)
	if err != nil {
		return err
	}
	log, err := logging.New(errOut, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	// The services add their own "service" field; the node's own lines
	// say service=node.
	log = logging.For(log, "", cfg.Pair, cfg.Node, string(cfg.Role))
	warnUnknownEnv(log, os.Environ())
	n := node.New(cfg, log)
	n.PairStatus = uplinkStatus
	switch part {
	case "node":
		err = n.Run(ctx)
	case "nats":
		err = n.RunNATS(ctx)
	default:
		err = n.RunService(ctx, part)
	}
	if err != nil {
		return fmt.Errorf("node %s: %w", cfg.Node, err)
	}
	log.Info().Str("service", "node").Str("part", part).Msg("stopped")
	return nil
}

// warnUnknownEnv warns about TANDEM_* variables that name no configuration
// key (a typo would otherwise be ignored silently).
func warnUnknownEnv(log zerolog.Logger, environ []string) {
	if unknown := config.UnknownEnv(environ); len(unknown) > 0 {
		log.Warn().Str("service", "node").Strs("variables", unknown).Msg("unknown TANDEM_* environment variables ignored (no such key)")
	}
}

// uplinkStatusWait bounds the uplink's status query: at an activation the
// new active node may still count its dead peer as reachable and wait for
// its answer; what came by then is written, and the events that follow
// (failover.notified, …) write it again.
const uplinkStatusWait = 250 * time.Millisecond

// uplinkStatus is the pair's status as `tandem status --json` prints it, for
// the uplink to the fleet hub.
func uplinkStatus(ctx context.Context, nc *nats.Conn, pair string) (api.PairStatus, error) {
	ps, _, err := askPair(ctx, nc, pair, uplinkStatusWait)
	return ps, err
}

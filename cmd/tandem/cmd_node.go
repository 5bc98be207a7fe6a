package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
)

func init() {
	commands["node"] = command{"run one node: embedded NATS + monitor, replicator, notifier, license", nodeCommand("node")}
	commands["run"] = command{"run one part of a node: nats (its NATS server) or " + strings.Join(node.Services, ", ") + " (the split layout of deploy/)", cmdRun}
}

// cmdRun runs one part of a node in this process: `tandem run nats` the
// node's NATS server, `tandem run monitor` (…) one service, which connects to
// that server with nats.url.
func cmdRun(ctx context.Context, args []string, out, errOut io.Writer) error {
	parts := append([]string{"nats"}, node.Services...)
	if len(args) == 0 || !slices.Contains(parts, args[0]) {
		fmt.Fprintf(errOut, "usage: tandem run %s --config FILE [flags]\n", strings.Join(parts, "|"))
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return errHelp
		}
		return errUsage
	}
	return nodeCommand(args[0])(ctx, args[1:], out, errOut)
}

// nodeCommand runs a whole node ("node"), its NATS server alone ("nats"), or
// one of its services alone: all read the node's configuration the same way.
func nodeCommand(part string) func(ctx context.Context, args []string, out, errOut io.Writer) error {
	return func(ctx context.Context, args []string, out, errOut io.Writer) error {
		fs := flag.NewFlagSet(part, flag.ContinueOnError)
		file := fs.String("config", "", "the node's YAML configuration file")
		logFormat := fs.String("log-format", "", "json or console (same as --log.format)")
		set := config.RegisterFlags(fs)
		if err := parse(fs, args, errOut); err != nil {
			return err
		}
		flags := set()
		if *logFormat != "" {
			flags["log.format"] = *logFormat
		}
		cfg, err := config.Load(*file, os.Environ(), flags)
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
}

// warnUnknownEnv reports TANDEM_* variables that set no key (a typo).
func warnUnknownEnv(log zerolog.Logger, environ []string) {
	if unknown := config.UnknownEnv(environ); len(unknown) > 0 {
		log.Warn().Str("service", "node").Strs("variables", unknown).Msg("unknown TANDEM_* environment variables ignored (no such key)")
	}
}

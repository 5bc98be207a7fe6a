package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
)

func init() {
	commands["node"] = command{"run one node: embedded NATS + monitor, replicator, notifier, license", cmdNode}
}

func cmdNode(ctx context.Context, args []string, out, errOut io.Writer) error {
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
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
	// The services add their own "service" field; the node's own lines say
	// service=node.
	log = logging.For(log, "", cfg.Pair, cfg.Node, string(cfg.Role))
	if err := node.New(cfg, log).Run(ctx); err != nil {
		return fmt.Errorf("node %s: %w", cfg.Node, err)
	}
	log.Info().Str("service", "node").Msg("node stopped")
	return nil
}

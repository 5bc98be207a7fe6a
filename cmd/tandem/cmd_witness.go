package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/services/monitor/witness"
)

func init() {
	commandFactories = append(commandFactories, newWitnessCmd)
}

// newWitnessCmd runs the pair's witness (F14) on a third machine.
func newWitnessCmd(*app) *cobra.Command {
	var listen, dataDir string
	var f *serverFlags
	c := &cobra.Command{
		Use:   "witness --listen HOST:PORT --data-dir DIR",
		Short: "run a witness: the third party that holds the active node's lease (F14)",
		Long: "run a witness: the third party that holds the active node's lease (F14).\n\n" +
			"An embedded NATS server with a JetStream key-value bucket of leases, one per pair.\n" +
			"Point the nodes' witness.url at it. Every flag is also a configuration key\n" +
			"(--config FILE, YAML) and a TANDEM_ variable: witness.listen (--listen), data_dir\n" +
			"(--data-dir), witness.pairs (pair=public nkey, made by tandem auth witness PAIR:\n" +
			"every client must sign in, and a pair's nodes may ask only for their own lease),\n" +
			"nats.tls.cert and nats.tls.key (serve TLS), insecure, log.*. Without witness.pairs\n" +
			"it listens on loopback only, unless insecure: whoever reaches it can take a\n" +
			"pair's lease.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			flags := f.keys()
			if c.Flags().Changed("listen") {
				flags["witness.listen"] = listen
			}
			if c.Flags().Changed("data-dir") {
				flags["data_dir"] = dataDir
			} else if _, ok := flags["data_dir"]; !ok && f.file == "" && os.Getenv(config.EnvVar("data_dir")) == "" {
				return &usageError{errors.New("--data-dir is required (or data_dir in --config, or $" + config.EnvVar("data_dir") + ")")}
			}
			return runWitness(c.Context(), f.file, flags, c.OutOrStdout(), c.ErrOrStderr())
		},
	}
	c.Flags().StringVar(&listen, "listen", config.Default().Witness.Listen, "address of the witness's NATS server ($TANDEM_WITNESS_LISTEN)")
	c.Flags().StringVar(&dataDir, "data-dir", "", "directory of the witness's leases (JetStream; $TANDEM_DATA_DIR)")
	f = addServerFlags(c.Flags(), "the witness's")
	return c
}

func runWitness(ctx context.Context, file string, flags map[string]string, out, errOut io.Writer) error {
	cfg, err := config.LoadWitness(file, os.Environ(), flags)
	if err != nil {
		return err
	}
	log, err := logging.New(errOut, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	log = log.With().Str("service", "witness").Logger()
	if cfg.Insecure && !cfg.WitnessSecured() {
		log.Warn().Bool("insecure", true).Msg("protected mode is off (insecure: true): anyone who reaches the witness may take a pair's lease; set witness.pairs")
	}
	w, err := witness.Start(ctx, witness.ServerOptions{Listen: cfg.Witness.Listen, DataDir: cfg.DataDir, Insecure: cfg.Insecure,
		Pairs: cfg.Witness.Pairs, TLS: natsnode.TLSFiles{Cert: cfg.NATS.TLS.Cert, Key: cfg.NATS.TLS.Key}, Log: log})
	if err != nil {
		return err
	}
	defer w.Close()
	log.Info().Str("url", w.ClientURL()).Int("pairs", len(cfg.Witness.Pairs)).Msg("witness ready")
	fmt.Fprintf(out, "witness listening on %s\n", w.ClientURL())
	<-ctx.Done()
	return nil
}

package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/services/monitor/witness"
)

func init() {
	commandFactories = append(commandFactories, newWitnessCmd)
}

// newWitnessCmd runs the pair's witness (F14) on a third machine.
func newWitnessCmd(*app) *cobra.Command {
	var listen, dataDir, logFormat string
	var insecure bool
	c := &cobra.Command{
		Use:   "witness --listen HOST:PORT --data-dir DIR",
		Short: "run a witness: the third party that holds the active node's lease (F14)",
		Long: "run a witness: the third party that holds the active node's lease (F14).\n\n" +
			"An embedded NATS server with a JetStream key-value bucket of leases, one per pair.\n" +
			"Point the nodes' witness.url at it. It listens on loopback unless --insecure:\n" +
			"whoever reaches it can take a pair's lease.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if listen == "" || dataDir == "" {
				return &usageError{errors.New("--listen and --data-dir are required")}
			}
			log, err := logging.New(c.ErrOrStderr(), logFormat, "info")
			if err != nil {
				return &usageError{err}
			}
			w, err := witness.Start(c.Context(), witness.ServerOptions{Listen: listen, DataDir: dataDir, Insecure: insecure, Log: log})
			if err != nil {
				return err
			}
			defer w.Close()
			log.Info().Str("url", w.ClientURL()).Msg("witness ready")
			fmt.Fprintf(c.OutOrStdout(), "witness listening on %s\n", w.ClientURL())
			<-c.Context().Done()
			return nil
		},
	}
	c.Flags().StringVar(&listen, "listen", "127.0.0.1:4250", "address of the witness's NATS server")
	c.Flags().StringVar(&dataDir, "data-dir", "", "directory of the witness's leases (JetStream)")
	c.Flags().BoolVar(&insecure, "insecure", false, "allow a non-loopback --listen without credentials")
	c.Flags().StringVar(&logFormat, "log-format", "json", "json or console")
	return c
}

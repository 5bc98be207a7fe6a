package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/pkg/natsnode"
)

func init() {
	commandFactories = append(commandFactories, newHubCmd)
}

// hubFlags maps `tandem hub`'s own flags to configuration keys.
var hubFlags = []struct{ flag, key, help string }{
	{"name", "hub.name", "this hub server's name, stable across restarts ($TANDEM_HUB_NAME)"},
	{"listen", "hub.listen", "client address: fleet commands, sessions ($TANDEM_HUB_LISTEN)"},
	{"leaf-listen", "hub.leaf_listen", "leafnode address the pairs' nodes uplink to ($TANDEM_HUB_LEAF_LISTEN)"},
	{"cluster-listen", "hub.cluster_listen", "cluster route address ($TANDEM_HUB_CLUSTER_LISTEN)"},
	{"routes", "hub.routes", "the other hub servers' route URLs, comma separated ($TANDEM_HUB_ROUTES)"},
	{"data-dir", "data_dir", "directory of the hub's JetStream ($TANDEM_DATA_DIR)"},
}

// newHubCmd is `tandem hub`: one server of the fleet hub cluster (SPEC §11).
func newHubCmd(*app) *cobra.Command {
	var f *serverFlags
	values := map[string]*string{}
	c := &cobra.Command{
		Use:   "hub --name N [--listen A] [--leaf-listen A] [--cluster-listen A] [--routes URL,…] [--data-dir D]",
		Short: "run one server of a fleet hub cluster: every pair's status, events and notifications in one place",
		Long: "Runs one server of the fleet hub: an embedded NATS server with JetStream in\n" +
			"domain hub, routed to the other hub servers (--routes; three or more keep the\n" +
			"fleet's bucket and stream on three servers), a leafnode port the pairs' nodes\n" +
			"uplink to (their hub.url), and a client port for tandem fleet status, tandem\n" +
			"audit replay --fleet and sessions.\n\n" +
			"Every flag is also a configuration key (--config FILE, YAML) and a TANDEM_\n" +
			"variable: hub.name, hub.listen, hub.leaf_listen, hub.cluster_listen,\n" +
			"hub.routes, data_dir; hub.auth (admin, reader, session keys), hub.uplinks\n" +
			"(pair=key) and hub.sessions (pair=key of one pair's sessions) secure it,\n" +
			"hub.cluster_secret (a file shared by every hub server) authenticates the\n" +
			"routes, nats.tls.* serve TLS, audit.* set the fleet stream's retention.\n" +
			"Without credentials it listens on loopback only (protected mode); without\n" +
			"hub.cluster_secret the cluster address is loopback only. The fleet stream's\n" +
			"configuration is guarded: a change is restored and reported.",
		RunE: func(c *cobra.Command, _ []string) error {
			flags := f.keys()
			for _, h := range hubFlags {
				if c.Flags().Changed(h.flag) {
					flags[h.key] = *values[h.flag]
				}
			}
			return runHub(c.Context(), f.file, flags, c.ErrOrStderr())
		},
	}
	d := config.Default()
	defaults := map[string]string{"hub.listen": d.Hub.Listen, "hub.leaf_listen": d.Hub.LeafListen,
		"hub.cluster_listen": d.Hub.ClusterListen, "data_dir": d.DataDir}
	for _, h := range hubFlags {
		values[h.flag] = c.Flags().String(h.flag, defaults[h.key], h.help)
	}
	f = addServerFlags(c.Flags(), "the hub's")
	return c
}

func runHub(ctx context.Context, file string, flags map[string]string, errOut io.Writer) error {
	cfg, err := config.LoadHub(file, os.Environ(), flags)
	if err != nil {
		return err
	}
	log, err := logging.New(errOut, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	log = log.With().Str("service", "hub").Str("hub", cfg.Hub.Name).Logger()
	if cfg.Insecure && !cfg.HubSecured() {
		log.Warn().Bool("insecure", true).Msg("protected mode is off (insecure: true): anyone who reaches the hub's ports may connect; set hub.auth and hub.uplinks")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data_dir %s: %w", cfg.DataDir, err)
	}
	o, err := natsnode.HubFromConfig(cfg, log.With().Str("part", "nats").Logger())
	if err != nil {
		return err
	}
	h, err := natsnode.StartHub(o)
	if err != nil {
		return err
	}
	defer h.Shutdown()
	log.Info().Str("client", h.ClientURL()).Str("leaf", h.LeafURL()).Str("route", h.RouteURL()).
		Int("replicas", o.Replicas()).Msg("hub server ready")
	guarded := make(chan struct{})
	go func() {
		defer close(guarded)
		if err := h.EnsureFleet(ctx); err != nil {
			return
		}
		log.Info().Msg("fleet bucket and stream ready")
		if err := h.GuardFleet(ctx, natsnode.DefaultFleetGuardEvery); err != nil {
			log.Error().Err(err).Msg("the fleet stream is not guarded")
		}
	}()
	<-ctx.Done()
	<-guarded
	log.Info().Msg("stopped")
	return nil
}

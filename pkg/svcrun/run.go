package svcrun

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/admin"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/logging"
	"github.com/tandem-ha/tandem/pkg/natsnode"
)

// Main runs the service name, made by build, as a whole process: the
// node's configuration from --config, TANDEM_* variables and a flag per
// key, the log, and SIGINT/SIGTERM mapped to a clean stop. It exits 2 on
// bad flags, 1 when the service fails, 0 when it stopped on a signal.
func Main(name string, build Build) {
	fs := flag.NewFlagSet("tandem-"+name, flag.ContinueOnError)
	file := fs.String("config", "", "the node's YAML configuration file")
	logFormat := fs.String("log-format", "", "json or console (same as --log.format)")
	set := config.RegisterFlags(fs)
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	flags := set()
	if *logFormat != "" {
		flags["log.format"] = *logFormat
	}
	if err := run(name, *file, flags, build); err != nil {
		fmt.Fprintf(os.Stderr, "tandem-%s: %v\n", name, err)
		os.Exit(1)
	}
}

func run(name, file string, flags map[string]string, build Build) error {
	cfg, err := config.Load(file, os.Environ(), flags)
	if err != nil {
		return err
	}
	log, err := logging.New(os.Stderr, cfg.Log.Format, cfg.Log.Level)
	if err != nil {
		return err
	}
	log = logging.For(log, "", cfg.Pair, cfg.Node, string(cfg.Role))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, cfg, name, log, build); err != nil {
		return err
	}
	log.Info().Str("service", "node").Str("part", name).Msg("stopped")
	return nil
}

// Run runs the service name, made by build, beside its node's NATS server
// (nats.url, run by `tandem run nats`) until ctx ends or the service
// fails: the data directory's lock of name, the connection as the
// service's own user (waiting for the server), the wait for the node's
// event stream, an event publisher, and the admin endpoint (metrics,
// /healthz, /readyz).
func Run(ctx context.Context, cfg config.Config, name string, log zerolog.Logger, build Build) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Embedded() {
		return fmt.Errorf("tandem-%s runs beside the node's NATS server: set nats.url (the server `tandem run nats` runs)", name)
	}
	release, err := LockParts(cfg.DataDir, name)
	if err != nil {
		return err
	}
	defer release()
	nlog := log.With().Str("service", "node").Logger()
	nc, js, err := connect(ctx, cfg, name, nlog)
	if err != nil {
		return err
	}
	defer nc.Close()
	pub, err := bus.NewPublisher(js, bus.DefaultPublisherConfig(), log)
	if err != nil {
		return err
	}
	events := bus.NewEmitter(pub, log, 4096)
	defer closeEmitter(events, nlog)
	reg := admin.NewRegistry()
	svc, err := build(Deps{Config: cfg, Log: log, Conn: nc, JS: js, Events: events, Registry: reg})
	if err != nil {
		return err
	}
	adm, err := startAdmin(cfg, reg, svc.Ready, log)
	if err != nil {
		return err
	}
	defer closeAdmin(adm)
	return svc.Run(ctx)
}

// connect connects to nats.url as the service's user, waiting for the
// server, and waits for the node's event stream.
func connect(ctx context.Context, cfg config.Config, name string, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	opts, err := natsnode.ClientOptions(cfg, name)
	if err != nil {
		return nil, nil, err
	}
	opts = append(opts, nats.Name("tandem "+name+" "+cfg.Node), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	nc, err := Dial(ctx, cfg.NATS.URL, opts, log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err == nil {
		err = AwaitOrigin(ctx, js, cfg.Pair, cfg.Node, log)
	}
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

func startAdmin(cfg config.Config, reg *prometheus.Registry, ready func() error, log zerolog.Logger) (*admin.Server, error) {
	adm := admin.New(cfg.Admin.Listen, reg, ready, log)
	if cfg.Admin.TLS.Cert != "" {
		if err := adm.SetTLS(cfg.Admin.TLS.Cert, cfg.Admin.TLS.Key); err != nil {
			return nil, err
		}
	}
	if err := adm.Start(); err != nil {
		return nil, fmt.Errorf("admin endpoint: %w", err)
	}
	return adm, nil
}

func closeAdmin(adm *admin.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = adm.Close(ctx)
}

func closeEmitter(e *bus.Emitter, log zerolog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
		log.Warn().Err(err).Msg("events not flushed at shutdown")
	}
}

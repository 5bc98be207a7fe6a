package svcrun

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
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
// /healthz, /readyz). A service with a Handler (the dashboard) serves it
// at / of the admin endpoint.
func Run(ctx context.Context, cfg config.Config, name string, log zerolog.Logger, build Build) error {
	return RunPart(ctx, cfg, Part{Name: name, Build: build}, log)
}

// Part is one part of a node that runs alone: its name (of its lock, its
// log lines and its connection), the NATS user it connects as (its name
// when empty: each service has its own user), how it is made, and what to
// call once it runs (nil: nothing).
type Part struct {
	Name    string
	User    string
	Build   Build
	Started func()
}

// Handler is a service that also serves a page at / of its admin endpoint.
type Handler interface {
	Handler() http.Handler
}

// RunPart is Run with the part's NATS user named.
func RunPart(ctx context.Context, cfg config.Config, p Part, log zerolog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Embedded() {
		return fmt.Errorf("the %s runs beside the node's NATS server: set nats.url (the server `tandem run nats` runs)", p.Name)
	}
	WarnInsecure(cfg, log)
	release, err := LockParts(cfg.DataDir, p.Name)
	if err != nil {
		return err
	}
	defer release()
	nlog := log.With().Str("service", "node").Logger()
	user := cmp.Or(p.User, p.Name)
	nc, js, err := connect(ctx, cfg, p.Name, user, nlog)
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
	svc, err := p.Build(Deps{Config: cfg, Log: log, Conn: nc, JS: js, Events: events, Registry: reg})
	if err != nil {
		return err
	}
	adm, err := startAdmin(cfg, reg, svc, log)
	if err != nil {
		return err
	}
	defer closeAdmin(adm)
	if p.Started != nil {
		p.Started()
	}
	return svc.Run(ctx)
}

// WarnInsecure says, at every start, that protected mode is off
// (insecure: true) and which listeners anyone on the network can reach.
func WarnInsecure(cfg config.Config, log zerolog.Logger) {
	if !cfg.Insecure {
		return
	}
	ev := log.Warn().Str("service", "node").Bool("insecure", true).Strs("open_listeners", cfg.InsecureListeners())
	if cfg.Secured() {
		ev.Msg("insecure: true is set but has no effect: nats.auth requires credentials")
		return
	}
	ev.Msg("protected mode is off (insecure: true): no credentials are required; run `tandem auth init` and set nats.auth to secure this node")
}

// connect connects to nats.url as user, waiting for the
// server, and waits for the node's event stream.
func connect(ctx context.Context, cfg config.Config, name, user string, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	opts, err := natsnode.ClientOptions(cfg, user)
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

func startAdmin(cfg config.Config, reg *prometheus.Registry, svc Service, log zerolog.Logger) (*admin.Server, error) {
	adm := admin.New(cfg.Admin.Listen, reg, svc.Ready, log)
	if h, ok := svc.(Handler); ok {
		adm.Handle("/", h.Handler())
	}
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

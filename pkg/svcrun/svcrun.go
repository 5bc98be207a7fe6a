// Package svcrun is the run wiring of a Tandem service process: what
// `tandem node`, `tandem run <service>` and each service's own command
// (services/<name>/cmd/tandem-<name>, the split layout of deploy/) share —
// the data directory's locks, the connection to the node's NATS server
// with a wait for it, the wait for the node's event stream, the admin
// endpoint, and signals mapped to a clean stop.
//
// A service provides a Build function that makes it from Deps; Main runs
// one service as a whole process, Run inside a caller's process.
package svcrun

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Service is a running part of a node.
type Service interface {
	Run(ctx context.Context) error
	Ready() error
}

// Deps is what a service may use of its node.
type Deps struct {
	Config   config.Config
	Log      zerolog.Logger
	Conn     *nats.Conn
	JS       jetstream.JetStream // the node's own JetStream domain
	Events   *bus.Emitter
	Registry prometheus.Registerer
}

// Build makes a service from its node's parts.
type Build func(Deps) (Service, error)

// How often nats.url is dialled again while it does not answer, and how
// often the wait is logged.
const (
	DialRetry = 250 * time.Millisecond
	DialLog   = 10 * time.Second
)

// Dial connects to url, trying again every DialRetry until ctx ends: in the
// split layout a service may start before its node's NATS server. Any
// error but "no servers" ends it at once.
func Dial(ctx context.Context, url string, opts []nats.Option, log zerolog.Logger) (*nats.Conn, error) {
	var logged time.Time
	for {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if !errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("connect to %s: %w", url, err)
		}
		if time.Since(logged) >= DialLog {
			log.Warn().Err(err).Str("url", url).Msg("waiting for the node's NATS server")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s: %w", url, err)
		case <-time.After(DialRetry):
		}
	}
}

// AwaitOrigin waits, without touching it, until node's event stream
// exists: a service of a split node leaves making it to the node's server
// part (`tandem run nats`), for one process updating a stream while others
// create consumers on it races inside nats-server.
func AwaitOrigin(ctx context.Context, js jetstream.JetStream, pair, node string, log zerolog.Logger) error {
	name := subject.EventStream(pair, node)
	var logged time.Time
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := js.Stream(sctx, name)
		cancel()
		if err == nil {
			return nil
		}
		if time.Since(logged) >= DialLog {
			log.Warn().Err(err).Str("stream", name).Msg("waiting for the node's event stream (tandem run nats makes it)")
			logged = time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("event stream %s: %w", name, err)
		case <-time.After(DialRetry):
		}
	}
}

// LockParts takes the data directory's lock of each part a process runs
// (the embedded server "nats", and each service), so that a second process
// started on the same data directory — a duplicate unit, a mistyped
// --config — refuses to start instead of sharing the JetStream store, the
// epoch file and the database with the running one. release frees them.
func LockParts(dir string, parts ...string) (release func(), err error) {
	if err := CheckDataDir(dir); err != nil {
		return nil, err
	}
	var held []func()
	release = func() {
		for _, r := range held {
			r()
		}
	}
	for _, p := range parts {
		r, err := lockFile(filepath.Join(dir, ".tandem-"+p+".lock"))
		if err != nil {
			release()
			return nil, fmt.Errorf("data directory %s: %s: %w", dir, p, err)
		}
		held = append(held, r)
	}
	return release, nil
}

// CheckDataDir makes data_dir if needed and checks that this process may
// write in it, so that a wrong owner or mode is said plainly at start
// rather than by whichever part first fails to write.
func CheckDataDir(dir string) error {
	fail := func(err error) error {
		return fmt.Errorf("data_dir %s: %w (this process runs as uid %d: fix the directory's owner or mode, or set data_dir)", dir, err, os.Getuid())
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(err)
	}
	f, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return fail(err)
	}
	f.Close()
	return os.Remove(f.Name())
}

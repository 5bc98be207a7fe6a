// Package notifier is the notifier service: it tells every client session which node to use (SPEC §5, N1–N7).
//
// This module is the service's frame: a Service with Run(ctx) that runs until
// stopped, so that `tandem node` and the deployment already start it beside
// the monitor. Its issue fills in the behaviour.
package notifier

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/config"
)

// Service is one node's notifier.
type Service struct {
	cfg config.Config
	log zerolog.Logger
}

// New returns the service for the node configured by cfg.
func New(cfg config.Config, log zerolog.Logger) *Service {
	return &Service{cfg: cfg, log: log.With().Str("service", "notifier").Logger()}
}

// Run runs the service until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	s.log.Debug().Msg("notifier running")
	<-ctx.Done()
	return nil
}

// Ready reports whether the service is ready (for /readyz).
func (s *Service) Ready() error { return nil }

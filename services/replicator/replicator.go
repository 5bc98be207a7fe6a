// Package replicator is the replicator service: it keeps both nodes' databases in sync (SPEC §4, R1–R9).
//
// This module is the service's frame: a Service with Run(ctx) that runs until
// stopped, so that `tandem node` and the deployment already start it beside
// the monitor. Its issue fills in the behaviour.
package replicator

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/config"
)

// Service is one node's replicator.
type Service struct {
	cfg config.Config
	log zerolog.Logger
}

// New returns the service for the node configured by cfg.
func New(cfg config.Config, log zerolog.Logger) *Service {
	return &Service{cfg: cfg, log: log.With().Str("service", "replicator").Logger()}
}

// Run runs the service until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	s.log.Debug().Msg("replicator running")
	<-ctx.Done()
	return nil
}

// Ready reports whether the service is ready (for /readyz).
func (s *Service) Ready() error { return nil }

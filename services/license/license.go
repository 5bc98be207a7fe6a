// Package license is the license service: it holds the pair's signed licenses and the standby's grace clock (SPEC §6, L1–L5).
//
// This module is the service's frame: a Service with Run(ctx) that runs until
// stopped, so that `tandem node` and the deployment already start it beside
// the monitor. Its issue fills in the behaviour.
package license

import (
	"context"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/config"
)

// Service is one node's license.
type Service struct {
	cfg config.Config
	log zerolog.Logger
}

// New returns the service for the node configured by cfg.
func New(cfg config.Config, log zerolog.Logger) *Service {
	return &Service{cfg: cfg, log: log.With().Str("service", "license").Logger()}
}

// Run runs the service until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	s.log.Debug().Msg("license running")
	<-ctx.Done()
	return nil
}

// Ready reports whether the service is ready (for /readyz).
func (s *Service) Ready() error { return nil }

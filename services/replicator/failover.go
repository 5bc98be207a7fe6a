package replicator

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// FailoverConsumer is the durable consumer, on this node's event stream,
// through which the replicator learns of this node's activations (R8).
const FailoverConsumer = "tandem_replicator_failover"

// failoverRetry is how soon an activation that could not be written is
// delivered again (the database is down: written as soon as it is back).
const failoverRetry = time.Second

// runFailover is the failover-status goroutine: it consumes this node's
// activation events durably and acknowledges each once written into the
// database. The active node writes its own row; replication carries it to
// the peer. Events are read from the local stream only, so this works while
// the link is down.
func (s *Service) runFailover(ctx context.Context) {
	for ctx.Err() == nil {
		err := s.consumeFailover(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Debug().Err(err).Msg("failover events")
			clock.Sleep(ctx, time.Second)
		}
	}
}

func (s *Service) consumeFailover(ctx context.Context) error {
	p, n := s.cfg.Pair, s.cfg.Node
	stream, events := subject.EventStream(p, n), subject.EventsOf(p, n)
	cfg := bus.ConsumerConfig(FailoverConsumer, events)
	cfg.Description = "the replicator writes this node's activations into the database (R8)"
	cfg.MaxAckPending = 1
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := s.js.CreateOrUpdateConsumer(cctx, stream, cfg)
	cancel()
	if err != nil {
		return err
	}
	sub, err := bus.NewSubscriber(s.js, bus.SubscriberConfig{Stream: stream, Consumer: FailoverConsumer, NackDelay: failoverRetry}, s.log)
	if err != nil {
		return err
	}
	defer sub.Close() //nolint:errcheck // Close never fails
	rcfg := bus.RouterConfig{Log: s.log, Reject: s.reject, Registry: s.registry}
	return bus.RunConsumer(ctx, rcfg, "failover-event", events, sub, func(m *message.Message) error {
		return s.onActivation(ctx, m.Payload)
	})
}

// onActivation writes one activation (event.IsActivation); other events of
// the node are skipped. An error asks for the event again later (the
// database is down: R8 writes it as soon as it is back); bad input is
// poison.
func (s *Service) onActivation(ctx context.Context, data []byte) error {
	env, err := event.Decode(data)
	if err == nil && (env.Node != s.cfg.Node || env.Pair != s.cfg.Pair) {
		err = errors.New("not an event of this node")
	}
	if err != nil {
		return bus.Poison(err)
	}
	if !event.IsActivation(env.Type) {
		return nil
	}
	if _, _, err := event.ActivationOf(env); err != nil {
		return bus.Poison(err)
	}
	if env.Epoch > s.epoch.Load() {
		s.epoch.Store(env.Epoch)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = s.st.WriteFailover(wctx, s.cfg.Node, env.Epoch, env.Time)
	cancel()
	if err != nil {
		s.met.failoverFailures.Inc()
		s.log.Warn().Err(err).Uint64("epoch", env.Epoch).Msg("failover status not written yet (database unavailable); retrying")
		return err
	}
	s.log.Info().Uint64("epoch", env.Epoch).Msg("failover status written")
	s.emit(event.ReplStatusWritten, event.StatusWritten{Active: s.cfg.Node, Epoch: env.Epoch,
		Time: env.Time.UTC().Format(time.RFC3339Nano), Why: event.Because("R8: " + env.Type)})
	return nil
}

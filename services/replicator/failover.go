package replicator

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cons, err := s.js.CreateOrUpdateConsumer(cctx, subject.EventStream(p, n), jetstream.ConsumerConfig{
		Durable:        FailoverConsumer,
		Description:    "the replicator writes this node's activations into the database (R8)",
		FilterSubjects: activationSubjects(p, n),
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  1,
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	cancel()
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return nil
			}
			return err
		}
		s.onActivation(ctx, m)
	}
}

// activationSubjects are the subjects of the node's activation events
// (event.IsActivation).
func activationSubjects(pair, node string) []string {
	var out []string
	for _, typ := range event.ActivationTypes() {
		out = append(out, subject.Event(pair, node, typ))
	}
	return out
}

// onActivation writes one activation, or asks for it again later.
func (s *Service) onActivation(ctx context.Context, m jetstream.Msg) {
	env, err := event.Decode(m.Data())
	if err != nil || env.Node != s.cfg.Node || env.Pair != s.cfg.Pair {
		s.reject("failover-event", m.Subject(), errors.Join(err, errors.New("not an event of this node")))
		_ = m.Term()
		return
	}
	if _, ok, err := event.ActivationOf(env); err != nil || !ok {
		s.reject("failover-event", m.Subject(), errors.Join(err, errors.New("not an activation")))
		_ = m.Term()
		return
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
		_ = m.NakWithDelay(failoverRetry)
		return
	}
	if err := m.DoubleAck(ctx); err != nil {
		s.log.Debug().Err(err).Msg("ack failover event")
	}
	s.log.Info().Uint64("epoch", env.Epoch).Msg("failover status written")
	s.emit(event.ReplStatusWritten, event.StatusWritten{Active: s.cfg.Node, Epoch: env.Epoch,
		Time: env.Time.UTC().Format(time.RFC3339Nano), Why: event.Because("R8: " + env.Type)})
}

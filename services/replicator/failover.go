package replicator

import (
	"context"
	"errors"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/replicator/internal/store"
)

// FailoverConsumer is the durable consumer, on this node's event stream,
// through which the replicator learns of this node's activations (R8).
const FailoverConsumer = "tandem_replicator_failover"

// failoverRetry is how soon an activation that could not be written is
// delivered again (the database is down: written as soon as it is back).
const failoverRetry = time.Second

// failoverPull is how long one pull for the next event is parked on the
// server. An event is delivered to the parked pull at once; the length
// only sets how often an idle node renews it (at the default 5 s: a pull,
// its timeout and a reply subscription 0.2 times a second, each
// subscription also announced across the link — issue 19, as the
// notifier's followPull).
const failoverPull = 30 * time.Second

// failoverStatus writes this node's activations into the database (R8):
// the failover reactions of the replicator. It owns its consumer; the
// newest epoch it sees stamps the replicator's events (reporter.epoch).
type failoverStatus struct {
	pair, node string
	js         jetstream.JetStream
	st         store.Identity
	log        zerolog.Logger
	registry   prometheus.Registerer
	rep        *reporter
	failures   prometheus.Counter
}

// run is the failover-status goroutine: it consumes this node's
// activation events durably and acknowledges each once written into the
// database. The active node writes its own row; replication carries it to
// the peer. Events are read from the local stream only, so this works while
// the link is down.
func (f *failoverStatus) run(ctx context.Context) {
	for ctx.Err() == nil {
		err := f.consume(ctx)
		if err != nil && ctx.Err() == nil {
			f.log.Debug().Err(err).Msg("failover events")
			clock.Sleep(ctx, time.Second)
		}
	}
}

func (f *failoverStatus) consume(ctx context.Context) error {
	p, n := f.pair, f.node
	stream, events := subject.EventStream(p, n), subject.EventsOf(p, n)
	cfg := bus.ConsumerConfig(FailoverConsumer, events)
	cfg.Description = "the replicator writes this node's activations into the database (R8)"
	cfg.MaxAckPending = 1
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err := f.js.CreateOrUpdateConsumer(cctx, stream, cfg)
	cancel()
	if err != nil {
		return err
	}
	sub, err := bus.NewSubscriber(f.js, bus.SubscriberConfig{Stream: stream, Consumer: FailoverConsumer, NackDelay: failoverRetry,
		PullTimeout: failoverPull}, f.log)
	if err != nil {
		return err
	}
	defer sub.Close() //nolint:errcheck // Close never fails
	rcfg := bus.RouterConfig{Log: f.log, Reject: f.rep.reject, Registry: f.registry}
	return bus.RunConsumer(ctx, rcfg, "failover-event", events, sub, func(m *message.Message) error {
		return f.onActivation(ctx, m.Payload)
	})
}

// onActivation writes one activation (event.IsActivation); other events of
// the node are skipped. An error asks for the event again later (the
// database is down: R8 writes it as soon as it is back); bad input is
// poison.
func (f *failoverStatus) onActivation(ctx context.Context, data []byte) error {
	env, err := event.Decode(data)
	if err == nil && (env.Node != f.node || env.Pair != f.pair) {
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
	if env.Epoch > f.rep.epoch.Load() {
		f.rep.epoch.Store(env.Epoch)
	}
	wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	err = f.st.WriteFailover(wctx, f.node, env.Epoch, env.Time)
	cancel()
	if err != nil {
		f.failures.Inc()
		f.log.Warn().Err(err).Uint64("epoch", env.Epoch).Msg("failover status not written yet (database unavailable); retrying")
		return err
	}
	f.log.Info().Uint64("epoch", env.Epoch).Msg("failover status written")
	f.rep.emit(event.ReplStatusWritten, event.StatusWritten{Active: f.node, Epoch: env.Epoch,
		Time: env.Time.UTC().Format(time.RFC3339Nano), Why: event.Because("R8: " + env.Type)})
	return nil
}

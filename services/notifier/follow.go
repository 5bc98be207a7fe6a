package notifier

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/heartbeat"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/notifier/internal/plan"
)

// ConsumerName is the durable consumer the notifier of node self owns on
// each event stream it follows (its own, and its mirror of the peer's). The
// node is part of the name: both nodes have a stream of that name (the
// origin on one, the mirror on the other), and acknowledgements
// ($JS.ACK.<stream>.<consumer>.…) cross the leaf link, so two consumers
// of one name would take each other's acknowledgements for their own.
func ConsumerName(self string) string { return "tandem_notifier_" + self }

const (
	// followRetry is the pause before binding to a stream again.
	followRetry = 250 * time.Millisecond
	// followPull is how long one pull for the next activation is parked on
	// the server. An activation is delivered to the parked pull at once;
	// the length only sets how often an idle node renews it (at 5 s, two
	// followers made a pull, its timeout and a new reply subscription
	// 0.4 times a second, a share of the idle cost of issue 19).
	followPull = 30 * time.Second
)

// followOwn follows the activations made on this node.
func (s *Service) followOwn(ctx context.Context) { s.follow(ctx, s.self) }

// followPeer follows the peer's activations in this node's mirror of the
// peer's events, once the peer's name and the mirror are known.
func (s *Service) followPeer(ctx context.Context) {
	for ctx.Err() == nil {
		if peer := s.peerName(ctx); peer != "" {
			s.follow(ctx, peer)
			return
		}
		if !clock.Sleep(ctx, followRetry) {
			return
		}
	}
}

// peerName is the peer's name: configured, or the sender of the peer's
// heartbeats (heartbeat.Peer; "" when ctx ends first).
func (s *Service) peerName(ctx context.Context) string {
	s.mu.Lock()
	peer := s.peer
	s.mu.Unlock()
	peer, err := heartbeat.Peer(ctx, s.o.Conn, s.pair, s.self, peer)
	if err != nil {
		return ""
	}
	s.mu.Lock()
	s.peer = peer
	s.mu.Unlock()
	return peer
}

// follow consumes node's event stream on this node through the durable
// consumer until ctx ends, binding again whenever the binding breaks.
func (s *Service) follow(ctx context.Context, node string) {
	stream := subject.EventStream(s.pair, node)
	filter := subject.EventsOf(s.pair, node)
	warned := false
	for ctx.Err() == nil {
		err := s.consume(ctx, node, stream, filter)
		if ctx.Err() != nil {
			return
		}
		if err != nil && !warned {
			s.log.Debug().Err(err).Str("stream", stream).Msg("cannot follow the events yet")
			warned = true
		}
		if !clock.Sleep(ctx, followRetry) {
			return
		}
	}
}

func (s *Service) consume(ctx context.Context, node, stream, filter string) error {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	cfg := bus.ConsumerConfig(ConsumerName(s.self), filter)
	cfg.Description = "the notifier follows activations"
	_, err := s.o.JS.CreateOrUpdateConsumer(cctx, stream, cfg)
	cancel()
	if err != nil {
		return err
	}
	sub, err := bus.NewSubscriber(s.o.JS, bus.SubscriberConfig{Stream: stream, Consumer: ConsumerName(s.self), PullTimeout: followPull}, s.log)
	if err != nil {
		return err
	}
	defer sub.Close() //nolint:errcheck // Close never fails
	rcfg := bus.RouterConfig{Log: s.log, Reject: s.reject, Registry: s.o.Registry}
	return bus.RunConsumer(ctx, rcfg, "event", filter, sub, func(m *message.Message) error {
		return s.onEvent(ctx, node, m.Payload) // ctx, not m's: an activation outlives its message
	})
}

// onEvent handles one event stored in node's stream; anything but an
// activation is skipped. An activation counts only when it comes from the
// monitor of the node whose stream holds it (identity: the stream is
// node's, the source its monitor) in a plausible epoch; anything else is
// poison (reported as rejected input by the router).
func (s *Service) onEvent(ctx context.Context, node string, data []byte) error {
	e, err := event.DecodeStored(data)
	if err != nil {
		return bus.Poison(err)
	}
	if e.Pair != s.pair {
		return nil
	}
	a, ok, err := plan.FromEvent(e)
	if err == nil && ok {
		err = s.checkActivation(e, node)
	}
	if err != nil {
		return bus.Poison(err)
	}
	if ok {
		s.onActivation(ctx, a)
	}
	return nil
}

// onActivationMsg is the quick path of this node's activations: the
// monitor's event as it is published into the node's event stream, taken
// beside the durable consumer (follow), which hands it over only once
// JetStream stored it and answered the parked pull — 3 to 44 ms after the
// activation while a failover loads two cores (issue 19). Whichever path
// comes first notifies; the other finds the notification made
// (onActivation). What the quick path cannot take it leaves to the
// consumer, which reports poison as rejected input.
func (s *Service) onActivationMsg(ctx context.Context, m *nats.Msg) {
	e, err := event.Decode(m.Data)
	if err != nil || e.Pair != s.pair {
		return
	}
	if a, ok, err := plan.FromEvent(e); err == nil && ok && s.checkActivation(e, s.self) == nil {
		s.onActivation(ctx, a)
	}
}

// checkActivation refuses an activation not made by the monitor of node,
// or in an implausible epoch.
func (s *Service) checkActivation(e event.Envelope, node string) error {
	if e.Node != node || e.Source != event.Source(s.pair, node, "monitor") {
		return fmt.Errorf("%s from %s (node %s) in the stream of node %s: only that node's monitor announces activations", e.Type, e.Source, e.Node, node)
	}
	s.mu.Lock()
	var newest uint64
	if s.current != nil {
		newest = s.current.Epoch
	}
	s.mu.Unlock()
	return event.CheckEpoch(e.Epoch, newest)
}

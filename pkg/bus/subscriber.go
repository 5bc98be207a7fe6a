package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/tandem-ha/tandem/pkg/clock"
)

// ErrTopicMismatch is returned by Subscribe when the topic is not the bound
// consumer's filter subject.
var ErrTopicMismatch = errors.New("topic is not the consumer's filter subject")

// pullRetryPause is the pause after a failed pull before the next one.
const pullRetryPause = 500 * time.Millisecond

// ConsumerConfig is a durable pull consumer for a Subscriber: explicit acks,
// from the start of the stream, redelivered without limit, 30 s to ack (the
// Subscriber extends it while a handler works). Create it with
// js.CreateOrUpdateConsumer(ctx, stream, ConsumerConfig(durable, filter)).
func ConsumerConfig(durable, filter string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       durable,
		FilterSubject: filter,
		AckPolicy:     jetstream.AckExplicitPolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    -1,
	}
}

// SubscriberConfig names the durable consumer a Subscriber binds to.
type SubscriberConfig struct {
	Stream   string
	Consumer string // durable name; it must exist, with one filter subject
	// PullTimeout bounds one pull request (default 5 s). It only limits how
	// long a pull is parked on the server; Close does not wait for it.
	PullTimeout time.Duration
	// NackDelay is how long the server waits before redelivering a nacked
	// message; 0 redelivers at once.
	NackDelay time.Duration
}

// Validate checks the names and durations.
func (c SubscriberConfig) Validate() error {
	switch {
	case c.Stream == "" || c.Consumer == "":
		return fmt.Errorf("subscriber: stream %q and consumer %q must be named", c.Stream, c.Consumer)
	case c.PullTimeout < 0 || c.NackDelay < 0:
		return fmt.Errorf("subscriber: pull timeout %v and nack delay %v must not be negative", c.PullTimeout, c.NackDelay)
	}
	return nil
}

// Subscriber consumes a durable JetStream consumer as a watermill
// Subscriber. See the package doc for the mapping and the concurrency.
type Subscriber struct {
	js  jetstream.JetStream
	cfg SubscriberConfig
	log zerolog.Logger

	stop   context.Context // canceled by Close
	cancel context.CancelFunc

	mu     sync.Mutex // guards the fields below
	closed bool
	loops  sync.WaitGroup // one per Subscribe; Add only under mu while !closed
}

var _ message.Subscriber = (*Subscriber)(nil)

// NewSubscriber returns a Subscriber bound to cfg.Consumer on cfg.Stream.
// The consumer is looked up at each Subscribe.
func NewSubscriber(js jetstream.JetStream, cfg SubscriberConfig, log zerolog.Logger) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.PullTimeout == 0 {
		cfg.PullTimeout = 5 * time.Second
	}
	stop, cancel := context.WithCancel(context.Background())
	return &Subscriber{js: js, cfg: cfg, log: log, stop: stop, cancel: cancel}, nil
}

// Subscribe binds to the consumer, whose filter subject must equal topic,
// and returns its messages one at a time. The channel is closed when ctx
// ends, when Close is called, or when the connection is closed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	cons, err := s.js.Consumer(ctx, s.cfg.Stream, s.cfg.Consumer)
	if err != nil {
		return nil, fmt.Errorf("bind to consumer %s of stream %s: %w", s.cfg.Consumer, s.cfg.Stream, err)
	}
	info := cons.CachedInfo()
	if err := checkBinding(info.Config, topic); err != nil {
		return nil, fmt.Errorf("bind to consumer %s of stream %s: %w", s.cfg.Consumer, s.cfg.Stream, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, fmt.Errorf("subscribe to %s: %w", topic, ErrClosed)
	}
	out := make(chan *message.Message)
	run, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.stop, cancel) // Close cancels run too
	s.loops.Add(1)
	go func() {
		defer s.loops.Done()
		defer unhook()
		defer cancel()
		s.consume(run, cons, info.Config.AckWait, out)
	}()
	return out, nil
}

// Close stops every subscription, closes their channels and waits for them.
// The durable consumer stays on the server.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.loops.Wait()
	return nil
}

func checkBinding(cfg jetstream.ConsumerConfig, topic string) error {
	if cfg.Durable == "" {
		return errors.New("consumer is not durable")
	}
	filters := cfg.FilterSubjects
	if cfg.FilterSubject != "" {
		filters = []string{cfg.FilterSubject}
	}
	if len(filters) != 1 || filters[0] != topic {
		return fmt.Errorf("%w: filters %q, topic %q", ErrTopicMismatch, filters, topic)
	}
	return nil
}

// consume pulls one message at a time and hands it over until ctx ends or
// the connection is closed; it owns out and closes it.
func (s *Subscriber) consume(ctx context.Context, cons jetstream.Consumer, ackWait time.Duration, out chan<- *message.Message) {
	defer close(out)
	for ctx.Err() == nil {
		jm, err := s.pull(ctx, cons)
		switch {
		case errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, jetstream.ErrConnectionClosed):
			s.log.Warn().Err(err).Str("consumer", s.cfg.Consumer).Msg("subscription ends: connection closed")
			return
		case err != nil:
			s.log.Warn().Err(err).Str("consumer", s.cfg.Consumer).Msg("pull failed, retrying")
			clock.Sleep(ctx, pullRetryPause)
		case jm != nil:
			s.hand(ctx, jm, ackWait, out)
		}
	}
}

// pull waits at most PullTimeout for the next message; (nil, nil) means
// none came.
func (s *Subscriber) pull(ctx context.Context, cons jetstream.Consumer) (jetstream.Msg, error) {
	pctx, cancel := context.WithTimeout(ctx, s.cfg.PullTimeout)
	defer cancel()
	opts := []jetstream.FetchOpt{jetstream.FetchContext(pctx)}
	if s.cfg.PullTimeout >= 10*time.Second {
		// nats.go asks for an idle heartbeat every 5 s on a pull this long;
		// a third of the pull is enough to find a lost one (issue 19: an
		// idle node's messages).
		opts = append(opts, jetstream.FetchHeartbeat(s.cfg.PullTimeout/3))
	}
	jm, err := cons.Next(opts...)
	switch {
	case err == nil:
		return jm, nil
	case ctx.Err() != nil, errors.Is(err, nats.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return nil, nil
	}
	return nil, err
}

// hand gives jm to the handler and carries its Ack or Nack back to the
// server, marking jm in progress meanwhile so that it is not redelivered.
func (s *Subscriber) hand(ctx context.Context, jm jetstream.Msg, ackWait time.Duration, out chan<- *message.Message) {
	wm := toWatermill(jm)
	mctx, cancel := context.WithCancel(ctx)
	defer cancel() // watermill: the context ends once the message is acked or nacked
	wm.SetContext(mctx)
	select {
	case out <- wm:
	case <-ctx.Done():
		s.settle(jm, jm.Nak, "nak")
		return
	}
	var progress <-chan time.Time
	if ackWait > 0 {
		t := time.NewTicker(ackWait / 3)
		defer t.Stop()
		progress = t.C
	}
	for {
		select {
		case <-wm.Acked():
			s.settle(jm, jm.Ack, "ack")
			return
		case <-wm.Nacked():
			s.settle(jm, s.nak(jm), "nak")
			return
		case <-progress:
			s.settle(jm, jm.InProgress, "mark in progress")
		case <-ctx.Done():
			s.settle(jm, jm.Nak, "nak")
			return
		}
	}
}

func (s *Subscriber) nak(jm jetstream.Msg) func() error {
	if s.cfg.NackDelay > 0 {
		return func() error { return jm.NakWithDelay(s.cfg.NackDelay) }
	}
	return jm.Nak
}

// settle sends an acknowledgement; a lost one only means a redelivery, so
// failures are logged, not returned.
func (s *Subscriber) settle(jm jetstream.Msg, send func() error, what string) {
	if err := send(); err != nil {
		s.log.Warn().Err(err).Str("subject", jm.Subject()).Str("consumer", s.cfg.Consumer).Msgf("%s failed", what)
	}
}

// toWatermill converts jm: Nats-Msg-Id → UUID (stream:sequence when the
// publisher set none), other non-"Nats-" headers → metadata, the subject →
// metadata SubjectKey.
func toWatermill(jm jetstream.Msg) *message.Message {
	h := jm.Headers()
	id := h.Get(jetstream.MsgIDHeader)
	if id == "" {
		if md, err := jm.Metadata(); err == nil {
			id = md.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
	}
	wm := message.NewMessage(id, jm.Data())
	wm.Metadata.Set(SubjectKey, jm.Subject())
	for k, v := range h {
		if !reservedHeader(k) && len(v) > 0 {
			wm.Metadata.Set(k, v[0])
		}
	}
	return wm
}

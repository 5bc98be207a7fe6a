package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/logging"
)

// ErrPoison marks a handler's error for input that no retry can fix (bad,
// foreign or stale input): the Router reports the message through
// RouterConfig.Reject (tandem.input.rejected) and acknowledges it, so the
// consumer goes on with the next one.
var ErrPoison = errors.New("poison message")

// Poison marks err as poison (ErrPoison).
func Poison(err error) error { return fmt.Errorf("%w: %w", ErrPoison, err) }

// SubjectKey is the metadata key of the NATS subject a consumed message
// came on.
const SubjectKey = "Tandem-Subject"

// rejectedTopic is the poison queue's topic: a name only, nothing is
// published to NATS (see rejecter).
const rejectedTopic = "tandem.input.rejected"

// RouterConfig is what NewRouter needs. Zero durations take the defaults.
type RouterConfig struct {
	Log zerolog.Logger
	// Reject reports a poison message (a handler's ErrPoison, or a
	// recovered panic): kind is the handler's name, subj the subject it
	// came on. Services pass their reject function, which counts, logs and
	// emits tandem.input.rejected (SPEC §9). Required.
	Reject func(kind, subj string, err error)
	// Registry gets the router's metrics (watermill's handler execution
	// time, under tandem_router_*); nil: none.
	Registry prometheus.Registerer
	// Retries is how often a failing handler is run again, with backoff
	// from RetryInitial up to RetryMax (defaults 3, 100 ms, 2 s), before
	// its message is nacked (redelivered by the server).
	Retries      int
	RetryInitial time.Duration
	RetryMax     time.Duration
	// CloseTimeout bounds how long Close waits for running handlers
	// (default 10 s).
	CloseTimeout time.Duration
}

func (c *RouterConfig) defaults() {
	if c.Retries == 0 {
		c.Retries = 3
	}
	if c.RetryInitial == 0 {
		c.RetryInitial = 100 * time.Millisecond
	}
	if c.RetryMax == 0 {
		c.RetryMax = 2 * time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 10 * time.Second
	}
}

// NewRouter is a watermill Router with Tandem's middleware, outermost
// first: the event id as correlation id; poison messages reported and
// acknowledged; retry with exponential backoff (not for poison); recovery
// from a handler's panic (a panic is poison: the same input would panic
// again). It logs through the zerolog adapter (logging.Watermill).
func NewRouter(cfg RouterConfig) (*message.Router, error) {
	if cfg.Reject == nil {
		return nil, errors.New("router: Reject is required")
	}
	cfg.defaults()
	wlog := logging.Watermill(cfg.Log)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, wlog)
	if err != nil {
		return nil, err
	}
	poison, err := middleware.PoisonQueueWithFilter(rejecter{cfg.Reject}, rejectedTopic, isPoison)
	if err != nil {
		return nil, err
	}
	retry := middleware.Retry{
		MaxRetries: cfg.Retries, InitialInterval: cfg.RetryInitial, MaxInterval: cfg.RetryMax, Multiplier: 2,
		ShouldRetry: func(p middleware.RetryParams) bool { return !isPoison(p.Err) },
		Logger:      wlog,
	}
	r.AddMiddleware(correlateEventID, middleware.CorrelationID, poison, retry.Middleware, middleware.Recoverer)
	if cfg.Registry != nil {
		metrics.NewPrometheusMetricsBuilder(cfg.Registry, "tandem", "router").AddPrometheusRouterMetrics(r)
	}
	return r, nil
}

func isPoison(err error) bool {
	var panicked middleware.RecoveredPanicError
	return errors.Is(err, ErrPoison) || errors.As(err, &panicked)
}

// correlateEventID sets a message's correlation id to its UUID — the
// event id, which is also its Nats-Msg-Id — unless it has one.
func correlateEventID(h message.HandlerFunc) message.HandlerFunc {
	return func(m *message.Message) ([]*message.Message, error) {
		if middleware.MessageCorrelationID(m) == "" {
			middleware.SetCorrelationID(m.UUID, m)
		}
		return h(m)
	}
}

// rejecter is the poison queue's Publisher: it hands each poison message to
// the service's reject function instead of publishing it.
type rejecter struct {
	reject func(kind, subj string, err error)
}

var _ message.Publisher = rejecter{}

func (p rejecter) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		why := strings.TrimPrefix(m.Metadata.Get(middleware.ReasonForPoisonedKey), ErrPoison.Error()+": ")
		p.reject(m.Metadata.Get(middleware.PoisonedHandlerKey), m.Metadata.Get(SubjectKey), errors.New(why))
	}
	return nil
}

func (rejecter) Close() error { return nil }

// RunConsumer runs one handler on a Router made by NewRouter(cfg): h gets
// the messages sub delivers for topic, under the middleware. It returns
// when ctx ends or the subscription ends (the binding broke: the caller
// binds again), with the error of a subscription that could not start.
func RunConsumer(ctx context.Context, cfg RouterConfig, name, topic string, sub message.Subscriber, h message.NoPublishHandlerFunc) error {
	r, err := NewRouter(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribed here, not by the router: a router whose handler cannot
	// subscribe never releases that handler (watermill v1.5.1).
	msgs, err := sub.Subscribe(ctx, topic)
	if err != nil {
		return err
	}
	r.AddConsumerHandler(name, topic, subscribed{msgs}, h)
	stop := context.AfterFunc(ctx, func() { _ = r.Close() })
	defer stop()
	err = r.Run(ctx)
	_ = r.Close()
	return err
}

// subscribed is a subscription made already, as a watermill Subscriber.
type subscribed struct{ msgs <-chan *message.Message }

func (s subscribed) Subscribe(context.Context, string) (<-chan *message.Message, error) {
	return s.msgs, nil
}

func (subscribed) Close() error { return nil }

package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
	"github.com/tandem-ha/tandem/pkg/clock"
)

// DuplicateWindow is the Duplicates window of the streams this package
// makes. A message and all its retries must be sent inside it for the stream
// to store the message once; PublisherConfig.Validate checks that.
const DuplicateWindow = 2 * time.Minute

var (
	// ErrClosed is returned by a Publisher or Subscriber used after Close.
	ErrClosed = errors.New("closed")
	// ErrPermanent is wrapped by publish errors that retrying cannot fix
	// (an invalid message, a closed connection, a request the server refused).
	ErrPermanent = errors.New("permanent publish error")
	// ErrInvalidMessage is wrapped (with ErrPermanent) when a message cannot
	// be sent as is: no UUID, or metadata that cannot be a NATS header.
	ErrInvalidMessage = errors.New("invalid message")
)

// PublisherConfig tunes the Publisher's retries. Zero fields take the
// defaults of DefaultPublisherConfig.
type PublisherConfig struct {
	// AckTimeout bounds one attempt: sending and waiting for the PubAck.
	AckTimeout time.Duration
	// Attempts is how many times a message is sent before Publish gives up.
	Attempts int
	// MinBackoff is the pause after the first failed attempt; it doubles
	// after each further failure, up to MaxBackoff.
	MinBackoff time.Duration
	MaxBackoff time.Duration
}

// DefaultPublisherConfig is 5 attempts of 2 s each, 100 ms to 1 s apart: at
// most about 12 s per message, well inside DuplicateWindow.
func DefaultPublisherConfig() PublisherConfig {
	return PublisherConfig{
		AckTimeout: 2 * time.Second,
		Attempts:   5,
		MinBackoff: 100 * time.Millisecond,
		MaxBackoff: time.Second,
	}
}

func (c PublisherConfig) withDefaults() PublisherConfig {
	d := DefaultPublisherConfig()
	if c.AckTimeout == 0 {
		c.AckTimeout = d.AckTimeout
	}
	if c.Attempts == 0 {
		c.Attempts = d.Attempts
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(d.MaxBackoff, c.MinBackoff)
	}
	return c
}

// Validate checks the fields and that the longest run of retries fits in
// DuplicateWindow.
func (c PublisherConfig) Validate() error {
	switch {
	case c.AckTimeout <= 0:
		return fmt.Errorf("publisher ack timeout %v: must be positive", c.AckTimeout)
	case c.Attempts < 1:
		return fmt.Errorf("publisher attempts %d: must be at least 1", c.Attempts)
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("publisher backoff %v..%v: want 0 < min <= max", c.MinBackoff, c.MaxBackoff)
	}
	if span := c.longestSpan(); span >= DuplicateWindow {
		return fmt.Errorf("publisher retries may span %v: must be shorter than the %v duplicates window", span, DuplicateWindow)
	}
	return nil
}

// longestSpan is the time from the first send to the last ack wait's end
// when every attempt times out.
func (c PublisherConfig) longestSpan() time.Duration {
	span := time.Duration(c.Attempts) * c.AckTimeout
	for b, i := c.MinBackoff, 1; i < c.Attempts; i++ {
		span += b
		b = nextBackoff(b, c.MaxBackoff)
	}
	return span
}

// Publisher publishes watermill messages to JetStream and waits for each
// PubAck. See the package doc for the mapping and the retries.
type Publisher struct {
	js  jetstream.JetStream
	cfg PublisherConfig
	log zerolog.Logger

	retries atomic.Uint64
	closed  atomic.Bool
}

var _ message.Publisher = (*Publisher)(nil)

// NewPublisher returns a Publisher on js. It does not own js's connection.
func NewPublisher(js jetstream.JetStream, cfg PublisherConfig, log zerolog.Logger) (*Publisher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Publisher{js: js, cfg: cfg, log: log}, nil
}

// Publish sends msgs in order to subject topic, each with Nats-Msg-Id =
// UUID, and returns once each is acknowledged. It stops at the first message
// that fails. Each message's context bounds its retries.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	if p.closed.Load() {
		return fmt.Errorf("publish to %s: %w", topic, ErrClosed)
	}
	for _, m := range msgs {
		if err := p.publishOne(topic, m); err != nil {
			return fmt.Errorf("publish %s to %s: %w", m.UUID, topic, err)
		}
	}
	return nil
}

// Retries is how many attempts were repeated after a failure, for metrics.
func (p *Publisher) Retries() uint64 { return p.retries.Load() }

// Close makes later Publish calls fail. It does not close the connection.
func (p *Publisher) Close() error {
	p.closed.Store(true)
	return nil
}

func (p *Publisher) publishOne(topic string, m *message.Message) error {
	nm, err := natsMsg(topic, m)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPermanent, err)
	}
	ctx, backoff := m.Context(), p.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		err = p.attempt(ctx, nm)
		switch {
		case err == nil:
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("attempt %d: %w", attempt, err)
		case !retryable(err):
			return fmt.Errorf("%w: %w", ErrPermanent, err)
		case attempt == p.cfg.Attempts:
			return fmt.Errorf("no ack after %d attempts: %w", attempt, err)
		}
		p.retries.Add(1)
		p.log.Debug().Err(err).Str("subject", topic).Str("msg_id", m.UUID).
			Int("attempt", attempt).Dur("backoff", backoff).Msg("publish failed, retrying with the same id")
		if !clock.Sleep(ctx, backoff) {
			return fmt.Errorf("wait to retry: %w", ctx.Err())
		}
		backoff = nextBackoff(backoff, p.cfg.MaxBackoff)
	}
}

// attempt sends nm once and waits at most AckTimeout for its PubAck. The
// jetstream client's own no-responders retry is off: publishOne retries.
func (p *Publisher) attempt(ctx context.Context, nm *nats.Msg) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	defer cancel()
	ack, err := p.js.PublishMsg(ctx, nm, jetstream.WithRetryAttempts(0))
	if err != nil {
		return err
	}
	if ack.Duplicate {
		p.log.Debug().Str("subject", nm.Subject).Str("msg_id", nm.Header.Get(jetstream.MsgIDHeader)).
			Str("stream", ack.Stream).Msg("publish acknowledged as a duplicate")
	}
	return nil
}

// natsMsg converts m: UUID → Nats-Msg-Id, metadata → headers, key for key.
func natsMsg(topic string, m *message.Message) (*nats.Msg, error) {
	if m.UUID == "" {
		return nil, fmt.Errorf("%w: no UUID (it is the Nats-Msg-Id)", ErrInvalidMessage)
	}
	if err := checkHeaderValue(m.UUID); err != nil {
		return nil, fmt.Errorf("%w: UUID: %w", ErrInvalidMessage, err)
	}
	h := nats.Header{}
	for k, v := range m.Metadata {
		if err := checkMetadata(k, v); err != nil {
			return nil, fmt.Errorf("%w: metadata %q: %w", ErrInvalidMessage, k, err)
		}
		h[k] = []string{v} // not Set's canonical form: keys keep their case
	}
	h[jetstream.MsgIDHeader] = []string{m.UUID}
	return &nats.Msg{Subject: topic, Header: h, Data: m.Payload}, nil
}

func checkMetadata(k, v string) error {
	if reservedHeader(k) {
		return errors.New(`keys starting with "Nats-" are reserved for the server`)
	}
	if k == "" || strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == ':' || r > '~' }) {
		return errors.New("key must be printable ASCII without spaces or colons")
	}
	return checkHeaderValue(v)
}

func checkHeaderValue(v string) error {
	if strings.ContainsAny(v, "\r\n") {
		return errors.New("value must not contain CR or LF")
	}
	return nil
}

// reservedHeader reports whether a header key belongs to NATS (Nats-Msg-Id,
// Nats-Expected-…, Nats-Rollup, …).
func reservedHeader(k string) bool {
	return len(k) >= 5 && strings.EqualFold(k[:5], "nats-")
}

// retryable reports whether a failed attempt may succeed if repeated:
// timeouts (the message may even have been stored), no responders while
// JetStream starts, a connection being re-established, server errors 5xx.
func retryable(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.Code >= 500
	}
	for _, perm := range []error{
		nats.ErrConnectionClosed, jetstream.ErrConnectionClosed, nats.ErrBadSubject,
		nats.ErrMaxPayload, nats.ErrInvalidMsg, nats.ErrHeadersNotSupported, jetstream.ErrInvalidOption,
	} {
		if errors.Is(err, perm) {
			return false
		}
	}
	return true
}

func nextBackoff(cur, limit time.Duration) time.Duration { return min(2*cur, limit) }

package bus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
)

// Emitter defaults.
const (
	// DefaultQueue is the queue length when NewEmitter is given 0 or less.
	DefaultQueue = 256
	// DefaultEnqueueWait is the longest Emit waits for room in a full queue
	// before it drops the event.
	DefaultEnqueueWait = 50 * time.Millisecond
	// ContentType is the Content-Type header of emitted events (the
	// CloudEvents structured mode).
	ContentType = "application/cloudevents+json"
)

var (
	// ErrDropped is returned by Flush and Close when an event they waited
	// for was given up instead of acknowledged.
	ErrDropped = errors.New("event dropped")
	errFull    = errors.New("queue full")
)

// EmitterOption changes an Emitter default.
type EmitterOption func(*emitterConfig)

type emitterConfig struct {
	enqueueWait time.Duration
	minBackoff  time.Duration
	maxBackoff  time.Duration
}

// WithEnqueueWait sets the longest Emit waits for room in a full queue
// before it drops the event (default DefaultEnqueueWait; 0 drops at once).
func WithEnqueueWait(d time.Duration) EmitterOption {
	return func(c *emitterConfig) { c.enqueueWait = max(d, 0) }
}

// WithRetryBackoff sets the pause between the worker's attempts at one event:
// min after the first failure, doubling up to max (default 100 ms to 5 s).
func WithRetryBackoff(minWait, maxWait time.Duration) EmitterOption {
	return func(c *emitterConfig) {
		if minWait > 0 && maxWait >= minWait {
			c.minBackoff, c.maxBackoff = minWait, maxWait
		}
	}
}

// EmitterStats are the Emitter's counters, for metrics.
type EmitterStats struct {
	Published uint64 // events acknowledged by the stream (duplicates included)
	Retried   uint64 // publishes repeated, with the same id, after a failure
	Dropped   uint64 // events given up: queue full, emitted after Close, permanent error, unsent at Close
	Invalid   uint64 // events Encode refused (not in Dropped)
	Queued    int    // events waiting for the worker
}

// Emitter publishes events in order from one worker goroutine, so that
// emitting never blocks a state transition for long. See the package doc.
//
// The worker retries an event, always with its id, until it is acknowledged:
// an outage delays the events behind it (and, once the queue is full, drops
// new ones) but never reorders them. The stream stores a retried event once
// as long as the copy that was stored and the retry that is acknowledged lie
// within DuplicateWindow of each other; only a server unreachable for longer
// than that right after storing an event can make it stored twice, which
// readers can tell by the event id.
type Emitter struct {
	pub message.Publisher
	log zerolog.Logger
	cfg emitterConfig
	cap int

	ctx    context.Context // canceled by Close once it is done waiting; stops the worker
	cancel context.CancelFunc
	done   chan struct{} // closed when the worker returns
	wake   chan struct{} // size 1: a pending nudge for the worker is enough

	published, retried, dropped, invalid atomic.Uint64

	mu         sync.Mutex // guards the fields below
	queue      []item
	closed     bool
	enqueued   uint64        // events ever queued
	finished   uint64        // events the worker is done with, in order (acked or given up)
	unreported uint64        // queued events given up that no Flush has reported yet
	space      chan struct{} // closed and replaced when the worker takes an event
	progress   chan struct{} // closed and replaced when finished grows
}

type item struct {
	id      string
	topic   string
	payload []byte
}

// NewEmitter starts an Emitter publishing to pub with a queue of queue events
// (DefaultQueue when 0 or less). Close stops it.
func NewEmitter(pub message.Publisher, log zerolog.Logger, queue int, opts ...EmitterOption) *Emitter {
	cfg := emitterConfig{enqueueWait: DefaultEnqueueWait, minBackoff: 100 * time.Millisecond, maxBackoff: 5 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	if queue <= 0 {
		queue = DefaultQueue
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Emitter{
		pub: pub, log: log, cfg: cfg, cap: queue,
		ctx: ctx, cancel: cancel,
		done: make(chan struct{}), wake: make(chan struct{}, 1),
		space: make(chan struct{}), progress: make(chan struct{}),
	}
	go e.run()
	return e
}

// Emit validates ev and queues it for publishing on ev.Subject() with
// Nats-Msg-Id = ev.ID. It returns at once, or after at most the enqueue wait
// (WithEnqueueWait) when the queue is full; an invalid or dropped event is
// counted and logged. It is safe for concurrent use.
func (e *Emitter) Emit(ev event.Envelope) {
	b, err := ev.Encode()
	if err != nil {
		e.invalid.Add(1)
		e.log.Error().Err(err).Str("event_id", ev.ID).Str("type", ev.Type).Msg("invalid event not emitted")
		return
	}
	if err := e.enqueue(item{id: ev.ID, topic: ev.Subject(), payload: b}); err != nil {
		e.dropped.Add(1)
		e.log.Warn().Err(err).Str("event_id", ev.ID).Str("subject", ev.Subject()).Msg("event dropped")
	}
}

// Flush waits until every event queued before the call is acknowledged or
// given up. It returns ErrDropped if queued events were given up (permanent
// error, or Close) since the last Flush that reported some; they are also in
// Stats and the log. It returns ctx's error if ctx ends first.
func (e *Emitter) Flush(ctx context.Context) error {
	e.mu.Lock()
	target := e.enqueued
	e.mu.Unlock()
	for {
		e.mu.Lock()
		finished, progress := e.finished, e.progress
		lost := e.unreported
		if finished >= target {
			e.unreported = 0
		}
		e.mu.Unlock()
		switch {
		case finished >= target && lost > 0:
			return fmt.Errorf("flush: %d events: %w", lost, ErrDropped)
		case finished >= target:
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return fmt.Errorf("flush: %d events unacknowledged: %w", target-finished, ctx.Err())
		}
	}
}

// Close refuses new events, flushes within ctx, then stops the worker; what
// is still queued then is dropped and counted. It returns Flush's error.
func (e *Emitter) Close(ctx context.Context) error {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	e.mu.Unlock()
	if already {
		<-e.done
		return nil
	}
	err := e.Flush(ctx)
	e.cancel()
	<-e.done
	if n := e.discard(); n > 0 {
		e.log.Warn().Int("events", n).Msg("emitter closed with events unsent")
	}
	return err
}

// Stats returns the counters.
func (e *Emitter) Stats() EmitterStats {
	e.mu.Lock()
	queued := len(e.queue)
	e.mu.Unlock()
	return EmitterStats{
		Published: e.published.Load(),
		Retried:   e.retried.Load(),
		Dropped:   e.dropped.Load(),
		Invalid:   e.invalid.Load(),
		Queued:    queued,
	}
}

// enqueue appends it, waiting at most the enqueue wait for room.
func (e *Emitter) enqueue(it item) error {
	var timeout <-chan time.Time
	for {
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return fmt.Errorf("emitter %w", ErrClosed)
		}
		if len(e.queue) < e.cap {
			e.enqueued++
			e.queue = append(e.queue, it)
			e.mu.Unlock()
			e.nudge()
			return nil
		}
		space := e.space
		e.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(e.cfg.enqueueWait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-space:
		case <-timeout:
			return fmt.Errorf("%w after %v", errFull, e.cfg.enqueueWait)
		}
	}
}

func (e *Emitter) nudge() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// run is the worker: it publishes queued events in order until Close.
func (e *Emitter) run() {
	defer close(e.done)
	for {
		it, ok := e.take()
		if !ok {
			return
		}
		e.finish(e.deliver(it))
	}
}

// take waits for the next event; false once Close has stopped the worker.
func (e *Emitter) take() (item, bool) {
	for {
		if e.ctx.Err() != nil {
			return item{}, false
		}
		e.mu.Lock()
		if len(e.queue) > 0 {
			it := e.queue[0]
			e.queue[0] = item{}
			e.queue = e.queue[1:]
			close(e.space)
			e.space = make(chan struct{})
			e.mu.Unlock()
			return it, true
		}
		e.mu.Unlock()
		select {
		case <-e.wake:
		case <-e.ctx.Done():
		}
	}
}

// deliver publishes it, retrying with the same id until it is acknowledged
// (true), the error is permanent, or Close stops the worker (false).
func (e *Emitter) deliver(it item) bool {
	backoff := e.cfg.minBackoff
	for {
		err := e.pub.Publish(it.topic, it.message(e.ctx))
		switch {
		case err == nil:
			e.published.Add(1)
			return true
		case e.ctx.Err() != nil:
			return false
		case errors.Is(err, ErrPermanent):
			e.log.Error().Err(err).Str("event_id", it.id).Str("subject", it.topic).Msg("event dropped: cannot be published")
			return false
		}
		e.retried.Add(1)
		e.log.Warn().Err(err).Str("event_id", it.id).Str("subject", it.topic).Dur("backoff", backoff).
			Msg("event not acknowledged, retrying with the same id")
		if !clock.Sleep(e.ctx, backoff) {
			return false
		}
		backoff = nextBackoff(backoff, e.cfg.maxBackoff)
	}
}

// message is a fresh watermill message for each attempt (a publisher may
// modify the one it is given); the id stays the same.
func (it item) message(ctx context.Context) *message.Message {
	m := message.NewMessage(it.id, it.payload)
	m.Metadata.Set("Content-Type", ContentType)
	m.SetContext(ctx)
	return m
}

// finish records that the worker is done with the oldest event taken.
func (e *Emitter) finish(acked bool) {
	if !acked {
		e.dropped.Add(1)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.finished++
	if !acked {
		e.unreported++
	}
	e.notifyLocked()
}

// discard drops what is left in the queue once the worker has stopped.
func (e *Emitter) discard() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := len(e.queue)
	if n == 0 {
		return 0
	}
	e.queue = nil
	e.dropped.Add(uint64(n))
	e.finished += uint64(n)
	e.unreported += uint64(n)
	e.notifyLocked()
	return n
}

func (e *Emitter) notifyLocked() {
	close(e.progress)
	e.progress = make(chan struct{})
}

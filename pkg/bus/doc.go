// Package bus is how Tandem services publish and consume durable messages on
// JetStream: watermill's message.Publisher and message.Subscriber on the
// nats.go jetstream API, the node's own audit stream of events (SPEC §7), and
// the Emitter every service uses to publish its events without ever blocking
// a state transition for long.
//
// # Why not watermill-nats
//
// Watermill is the project's message library (its Router and middleware are
// worth using), but its NATS adapters do not fit a pair whose streams must
// outlive any one process:
//
//   - watermill-nats/v2 pkg/nats deletes durable consumers it created on
//     Close, so a restarted replicator would start over; it can bind to a
//     consumer made beforehand, but only with the subscribe subject equal to
//     the consumer's filter and the queue group equal to its DeliverGroup.
//   - its AutoProvision names a stream after the topic, and pkg/jetstream
//     uses the topic as stream name and subject, so dotted subjects such as
//     tandem.<pair>.events.<node>.node.activated cannot be topics;
//   - a poison message republished with TrackMsgId into the same stream is
//     dropped as a duplicate.
//
// Tandem needs exactly three things from the adapter: the topic is the
// subject; the message UUID is the Nats-Msg-Id, kept the same on every retry
// because a publish that timed out may still have been stored; and durable
// consumers are created by their owners and never deleted by a subscriber.
// That is a few hundred lines on nats.go/jetstream, so the adapter is ours.
//
// # Mapping
//
// Publisher: topic → subject; UUID → Nats-Msg-Id header (required);
// Metadata → headers, key for key (keys starting with "Nats-" are refused:
// they steer the server). Each message waits for its PubAck; a timeout or a
// transient error is retried with the same id, with bounded attempts and
// exponential backoff that together fit in DuplicateWindow, so the stream
// stores the message once. Errors that retrying cannot fix wrap ErrPermanent.
//
// Subscriber: bound to one durable pull consumer (ConsumerConfig makes a
// suitable one). Messages are handed over one at a time, as watermill
// expects: the next is pulled only after the previous is acked or nacked.
// Ack → JetStream ack; Nack → nak (redelivered at once, or after NackDelay).
// While the handler holds a message the subscriber tells the server it is in
// progress, so a slow handler does not get it redelivered behind its back.
// Close stops pulling and never deletes the consumer. Delivery is at least
// once: a message held when the subscriber closes is nakked and redelivered.
//
// # Consumers on the Router
//
// Every consumer of events (a durable JetStream consumer: the notifier
// following activations, the replicator writing the failover status) runs
// on a watermill Router made by NewRouter, with Tandem's middleware,
// outermost first: the event id (the message UUID, also its Nats-Msg-Id)
// as correlation id; the poison queue — a handler's error wrapping
// ErrPoison (Poison) or a recovered panic reports the message through the
// service's reject function (tandem.input.rejected with the reason, SPEC
// §9) and acknowledges it, so the consumer goes on; retry with exponential
// backoff for any other error, after which the message is nacked and the
// server redelivers it (after the Subscriber's NackDelay); the recoverer.
// The router's metrics (watermill's, prefixed tandem_router_) go to the
// service's registry, and it logs through logging.Watermill.
//
// # What stays on plain nats.go
//
//   - Request/reply: admin verbs, the notifier's configuration request,
//     snapshot and chunk transfers, the license challenge, the witness
//     lease. A reply is due to one waiting requester now; there is nothing
//     to redeliver, and a bad request gets an error reply, not a poison
//     queue.
//   - KV watches: the pair's state and the license bucket. A watch
//     delivers the last value of each key and then updates; it has no acks.
//   - Ordered consumers: replication's change batches (the replicator keeps
//     its own position, applies each batch exactly once in commit order and
//     must see a gap as a gap, R9) and audit replay/follow. An ordered
//     consumer is ephemeral and unacknowledged by design.
//   - Core subscriptions: heartbeats, switchover control, link reports,
//     session acknowledgements, and the license service's view of the
//     newest epoch (every event of the pair, read for its epoch only). They
//     are not stored; the next message replaces a lost one, and their
//     decoders reject bad input themselves.
//
// # Concurrency
//
// Publisher is safe for concurrent use; it keeps no state beside counters
// (atomics) and its closed flag. Each Publish call runs its retries in the
// caller's goroutine, bounded by the message's context.
//
// Subscriber: each Subscribe starts one goroutine that owns its consumer
// handle, its output channel (which it closes) and the message in flight.
// The Subscriber's mutex guards only its closed flag and the WaitGroup of
// those goroutines; Close cancels them all and waits.
//
// Emitter: Emit runs in the caller's goroutine, validates, and appends to a
// bounded queue; when the queue is full it waits at most the enqueue wait
// (WithEnqueueWait, default DefaultEnqueueWait) and then drops the event,
// counting and logging it. One worker goroutine, started by NewEmitter and
// stopped by Close, owns the publishing: it takes events in order and
// retries each with the same id until it is acknowledged, the error is
// permanent, or Close gives up. The Emitter's mutex guards the queue and the
// counters Flush waits on; the published/retried/dropped counters are
// atomics read by Stats.
package bus

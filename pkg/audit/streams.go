// Package audit makes the events of all services an audit trail on both
// nodes of a pair (SPEC §7, A1–A4).
//
// Each node keeps its own events in its own stream (OriginConfig: the
// origin, which the services' emitters publish into) and a durable mirror of the peer's stream under the peer stream's name, so
// both streams exist on both nodes and either node answers for the whole
// pair when the other is gone. The mirror is durable: the origin owns a push
// consumer (subject.MirrorConsumer, AckFlowControl, 1 s heartbeat) that
// remembers how far the peer's mirror got, so after a partition the mirror
// resumes where it stopped (NOTES.md: durable mirrors caught up in
// 0.2–0.35 s; ephemeral ones took up to 40 s). Mirrors keep the origin's
// sequence numbers and timestamps. Every stream and mirror denies delete and
// purge (A3); retention is by age and size from configuration.
//
// A node makes its origin at start (EnsureOrigin), and its mirror once it
// knows the peer's name (Guard: from hosts, or from the peer's heartbeats);
// Guard then checks both every few seconds and restores a configuration
// changed behind the node's back (Drift, Restore, Watch).
//
// Replay reads any set of these streams on one node, by time range, node
// and event type, merged by event time, and can follow them live (A4), and
// Summary says in one line what an event says (tandem audit replay and
// tandem demo print it).
package audit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/mirror"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Retention is how long and how much each stream and mirror keeps.
type Retention struct {
	MaxAge   time.Duration // 0: DefaultMaxAge
	MaxBytes int64         // 0: no limit
}

func (r Retention) maxBytes() int64 {
	if r.MaxBytes <= 0 {
		return -1
	}
	return r.MaxBytes
}

func (r Retention) maxAge() time.Duration {
	if r.MaxAge <= 0 {
		return DefaultMaxAge
	}
	return r.MaxAge
}

// DefaultMaxAge is how long events are kept when no age is configured.
const DefaultMaxAge = 90 * 24 * time.Hour

// OriginConfig is the configuration of node's own event stream, its origin
// (SPEC §7 A3): stream subject.EventStream(pair, node) on
// subject.EventsOf(pair, node), file storage, deletes and purges refused,
// duplicates detected over bus.DuplicateWindow (the publishers' ids),
// oldest events discarded past r's age or size.
func OriginConfig(pair, node string, r Retention) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        subject.EventStream(pair, node),
		Description: fmt.Sprintf("Tandem events made on node %s of pair %s", node, pair),
		Subjects:    []string{subject.EventsOf(pair, node)},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    1,
		MaxAge:      r.maxAge(),
		MaxBytes:    r.maxBytes(),
		Duplicates:  bus.DuplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// EnsureOriginStream creates node's own event stream, or updates it to
// OriginConfig if it exists (retention may change; the server refuses to
// lift DenyDelete or DenyPurge). EnsureOrigin also makes the consumer
// that feeds the peer's mirror; tests of a single service need only this.
func EnsureOriginStream(ctx context.Context, js jetstream.JetStream, pair, node string, r Retention) (jetstream.Stream, error) {
	if err := subject.CheckName("pair", pair); err != nil {
		return nil, err
	}
	if err := subject.CheckName("node", node); err != nil {
		return nil, err
	}
	cfg := OriginConfig(pair, node, r)
	st, err := js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		cfg.FirstSeq = FirstSeq(time.Now())
		st, err = js.CreateStream(ctx, cfg)
	case err == nil:
		cfg.FirstSeq = st.CachedInfo().Config.FirstSeq
		st, err = js.UpdateStream(ctx, cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("ensure event stream %s: %w", cfg.Name, err)
	}
	return st, nil
}

// FirstSeq is the first sequence of a node's event stream made at now: the
// microseconds since 1970. The peer's mirror of the stream keeps the
// sequences of the stream it copied; a stream made again (the node's data
// directory was lost, or the stream deleted) that started at 1 again would
// have its events taken for ones the mirror has (older sequences are
// ignored), and the peer would copy none until the new stream had caught up
// with the old one's count. Starting past any sequence a stream made
// earlier could have reached (it would have needed more than an event a
// microsecond), the mirror goes on after a gap.
func FirstSeq(now time.Time) uint64 { return uint64(now.UnixMicro()) }

// mirrorMaxAckPending bounds how far the origin runs ahead of the mirror's
// flow-control acknowledgements.
const mirrorMaxAckPending = 20000

// EnsureOrigin makes node's own event stream and the durable consumer that
// feeds the peer's mirror of it. It is idempotent.
func EnsureOrigin(ctx context.Context, js jetstream.JetStream, pair, node string, r Retention) error {
	st, err := EnsureOriginStream(ctx, js, pair, node, r)
	if err != nil {
		return err
	}
	_, err = st.CreateOrUpdatePushConsumer(ctx, jetstream.ConsumerConfig{
		Durable:        subject.MirrorConsumer,
		Description:    "feeds the peer's durable mirror of this node's events",
		DeliverSubject: subject.MirrorDeliver(pair, node),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckFlowControlPolicy,
		FlowControl:    true,
		IdleHeartbeat:  time.Second, // the server requires exactly 1 s for flow-control acks
		MaxAckPending:  mirrorMaxAckPending,
	})
	if err != nil {
		return fmt.Errorf("mirror consumer on %s: %w", subject.EventStream(pair, node), err)
	}
	return nil
}

// MirrorConfig is the configuration of self's durable mirror of peer's
// event stream, reached through peer's JetStream domain over the link.
func MirrorConfig(pair, peer string, r Retention) jetstream.StreamConfig {
	name := subject.EventStream(pair, peer)
	return jetstream.StreamConfig{
		Name:        name,
		Description: "durable mirror of the events made on " + peer,
		Storage:     jetstream.FileStorage,
		MaxAge:      r.maxAge(),
		MaxBytes:    r.maxBytes(),
		DenyDelete:  true,
		DenyPurge:   true,
		Mirror: &jetstream.StreamSource{
			Name:     name,
			External: &jetstream.ExternalStream{APIPrefix: "$JS." + subject.ServerName(pair, peer) + ".API"},
			Consumer: &jetstream.StreamConsumerSource{Name: subject.MirrorConsumer, DeliverSubject: subject.MirrorDeliver(pair, peer)},
		},
	}
}

// MakeMirror makes self's mirror of peer's event stream (EnsureMirror)
// once the peer's consumer that feeds it is ready (mirror.Ready): a mirror
// made anew, on a node whose data directory was lost, copies the peer's
// whole stream, not only what came after. While the peer does not answer
// it makes nothing and returns the error; nc is self's connection.
func MakeMirror(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, pair, self, peer string, r Retention) error {
	if err := subject.CheckName("node", peer); err != nil {
		return err
	}
	err := mirror.Ready(ctx, js, nc, subject.EventStream(pair, peer), subject.ServerName(pair, peer), subject.MirrorConsumer)
	if err != nil {
		return err
	}
	return EnsureMirror(ctx, js, pair, self, peer, r)
}

// EnsureMirror makes self's mirror of peer's event stream. It does not need
// the peer to be reachable: the mirror starts copying when it is. A mirror
// it makes anew starts where the peer's consumer stands (MakeMirror).
func EnsureMirror(ctx context.Context, js jetstream.JetStream, pair, self, peer string, r Retention) error {
	if self == peer {
		return errors.New("audit: a node does not mirror itself")
	}
	if err := subject.CheckName("node", peer); err != nil {
		return err
	}
	if _, err := js.CreateOrUpdateStream(ctx, MirrorConfig(pair, peer, r)); err != nil {
		return fmt.Errorf("mirror of %s: %w", subject.EventStream(pair, peer), err)
	}
	return nil
}

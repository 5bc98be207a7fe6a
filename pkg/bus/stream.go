package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// DefaultEventMaxAge is how long events are kept when no age is configured.
const DefaultEventMaxAge = 90 * 24 * time.Hour

// EventStreamConfig is the configuration of node's own audit stream
// (SPEC §7 A3): stream subject.EventStream(pair, node) on
// subject.EventsOf(pair, node), file storage, deletes and purges refused,
// duplicates detected over DuplicateWindow, oldest events discarded past
// maxAge (DefaultEventMaxAge when 0) or maxBytes (unlimited when 0 or -1).
func EventStreamConfig(pair, node string, maxAge time.Duration, maxBytes int64) jetstream.StreamConfig {
	if maxAge == 0 {
		maxAge = DefaultEventMaxAge
	}
	if maxBytes == 0 {
		maxBytes = -1
	}
	return jetstream.StreamConfig{
		Name:        subject.EventStream(pair, node),
		Description: fmt.Sprintf("Tandem events made on node %s of pair %s", node, pair),
		Subjects:    []string{subject.EventsOf(pair, node)},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		Storage:     jetstream.FileStorage,
		Replicas:    1,
		MaxAge:      maxAge,
		MaxBytes:    maxBytes,
		Duplicates:  DuplicateWindow,
		DenyDelete:  true,
		DenyPurge:   true,
	}
}

// EnsureEventStream creates node's audit stream, or updates it to
// EventStreamConfig if it exists (retention may change; the server refuses
// to lift DenyDelete or DenyPurge).
func EnsureEventStream(ctx context.Context, js jetstream.JetStream, pair, node string, maxAge time.Duration, maxBytes int64) (jetstream.Stream, error) {
	if err := checkEventStreamArgs(pair, node, maxAge, maxBytes); err != nil {
		return nil, err
	}
	cfg := EventStreamConfig(pair, node, maxAge, maxBytes)
	s, err := js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ensure event stream %s: %w", cfg.Name, err)
	}
	return s, nil
}

func checkEventStreamArgs(pair, node string, maxAge time.Duration, maxBytes int64) error {
	if err := subject.CheckName("pair", pair); err != nil {
		return err
	}
	if err := subject.CheckName("node", node); err != nil {
		return err
	}
	if maxAge < 0 {
		return fmt.Errorf("event stream max age %v: must not be negative", maxAge)
	}
	if maxBytes < -1 {
		return fmt.Errorf("event stream max bytes %d: want -1, 0 or more", maxBytes)
	}
	return nil
}

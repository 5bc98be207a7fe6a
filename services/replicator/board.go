package replicator

import (
	"sync"

	"github.com/rs/zerolog"
)

// board is the replication state that status shows: one state and its
// reason, set by the part whose decision is in force (the receiver's
// machine, the shipper's back-off, a pause, a discard). Each change is
// logged once. Safe for concurrent use.
type board struct {
	log zerolog.Logger

	mu            sync.Mutex // guards the fields below
	state, reason string
}

func (b *board) set(state, reason string) {
	b.mu.Lock()
	changed := b.state != state || b.reason != reason
	b.state, b.reason = state, reason
	b.mu.Unlock()
	if changed {
		b.log.Info().Str("state", state).Str("reason", reason).Msg("replication " + state)
	}
}

func (b *board) get() (string, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.reason
}

// explain sets the reason of state, if state is still the one in force (a
// change made meanwhile by another part is kept).
func (b *board) explain(state, reason string) {
	b.mu.Lock()
	changed := b.state == state && b.reason != reason
	if changed {
		b.reason = reason
	}
	b.mu.Unlock()
	if changed {
		b.log.Info().Str("state", state).Str("reason", reason).Msg("replication " + state)
	}
}

package event

// Sink takes the events a service emits: pkg/bus.Emitter in production,
// a recorder or Discard in tests. Emit must not block for long.
type Sink interface {
	Emit(e Envelope)
}

// Discard is a Sink that drops every event.
type Discard struct{}

var _ Sink = Discard{}

// Emit drops e.
func (Discard) Emit(Envelope) {}

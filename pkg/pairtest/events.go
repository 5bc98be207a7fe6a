package pairtest

import (
	"strings"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/event"
)

// Recorder keeps every event it is given: as a service's event.Sink
// (Emit), or as the handler of a NATS subscription to a node's events
// (Record). Tests read it while the services run; it is safe for
// concurrent use.
type Recorder struct {
	mu     sync.Mutex // guards events
	events []event.Envelope
}

var _ event.Sink = (*Recorder)(nil)

// Emit records e.
func (r *Recorder) Emit(e event.Envelope) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// Record records the event in m; a message that is not an event is
// dropped (the services' own tests check what they publish).
func (r *Recorder) Record(m *nats.Msg) {
	if e, err := event.Decode(m.Data); err == nil {
		r.Emit(e)
	}
}

// Reset forgets every event recorded so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

// Events is a copy of every event recorded, oldest first.
func (r *Recorder) Events() []event.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]event.Envelope(nil), r.events...)
}

// OfType is the events of type typ, oldest first.
func (r *Recorder) OfType(typ string) []event.Envelope {
	var out []event.Envelope
	for _, e := range r.Events() {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// Count is the number of events of type typ.
func (r *Recorder) Count(typ string) int { return len(r.OfType(typ)) }

// Find returns the first event of type typ whose data contains the text
// contains.
func (r *Recorder) Find(typ, contains string) (event.Envelope, bool) {
	for _, e := range r.OfType(typ) {
		if strings.Contains(string(e.Data), contains) {
			return e, true
		}
	}
	return event.Envelope{}, false
}

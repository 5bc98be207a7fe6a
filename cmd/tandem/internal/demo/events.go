package demo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// readTimeout bounds one read of a node's event stream.
const readTimeout = time.Second

// eventReader reads the events a node made from its own audit stream
// (SPEC §7), in stream order. Reading the stream rather than subscribing to
// the subjects means nothing is missed: not the events a node makes before
// the reader exists, not those of the peer while the link is down, and a
// restarted node is read on from where its previous life was left.
//
// The loop goroutine calls read between redraws; there are no goroutines and
// no callbacks, so closing the reader before a Kill leaves nothing behind.
type eventReader struct {
	nc     *nats.Conn
	stream jetstream.Stream
	next   *uint64 // the next stream sequence to read, kept across lives
}

// openEvents connects to srv in process and finds node's event stream. next
// is the sequence to read from; it is advanced by read.
func openEvents(ctx context.Context, srv *natsnode.Server, pair, node string, next *uint64) (*eventReader, error) {
	nc, err := srv.Connect("tandem demo timeline", nats.NoReconnect())
	if err != nil {
		return nil, err
	}
	js, err := jetstream.NewWithDomain(nc, srv.Domain())
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream of %s: %w", node, err)
	}
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	st, err := js.Stream(ctx, subject.EventStream(pair, node))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("event stream of %s: %w", node, err)
	}
	return &eventReader{nc: nc, stream: st, next: next}, nil
}

// read returns the events stored since the last read. Messages that are not
// valid events are skipped.
func (r *eventReader) read(ctx context.Context) ([]event.Envelope, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	info, err := r.stream.Info(ctx)
	if err != nil {
		return nil, err
	}
	var out []event.Envelope
	// A stream starts at a high sequence (audit.FirstSeq), a later one
	// higher still: read from where it starts.
	*r.next = max(*r.next, info.State.FirstSeq)
	for ; *r.next <= info.State.LastSeq; *r.next++ {
		m, err := r.stream.GetMsg(ctx, *r.next)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // aged out
		}
		if err != nil {
			return out, err
		}
		if e, err := event.Decode(m.Data); err == nil {
			out = append(out, e)
		}
	}
	return out, nil
}

func (r *eventReader) close() { r.nc.Close() }

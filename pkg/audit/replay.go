package audit

import (
	"context"
	"errors"
	"fmt"
	"path"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Query selects events to replay. Zero fields select everything.
type Query struct {
	Pair   string    // the pair; "" for every pair whose streams are on the node
	Nodes  []string  // the nodes whose events to show
	Type   string    // a glob on the type attribute, e.g. "tandem.node.*"
	Since  time.Time // events at or after
	Until  time.Time // events at or before
	Follow bool      // after the history, go on with new events until ctx ends

	// Streams, if set, are the streams to read instead of the node's
	// event streams (the fleet hub's one stream of every pair's events);
	// Nodes then select by the events' node attribute, and PairGlob by
	// their pair attribute.
	Streams  []string
	PairGlob string // a glob on the pair attribute, e.g. "print-*"
}

// Validate checks the query's names, glob and range.
func (q Query) Validate() error {
	if q.Pair != "" {
		if err := subject.CheckName("pair", q.Pair); err != nil {
			return err
		}
	}
	for _, n := range q.Nodes {
		if err := subject.CheckName("node", n); err != nil {
			return err
		}
	}
	if _, err := path.Match(q.Type, ""); err != nil {
		return fmt.Errorf("type glob %q: %w", q.Type, err)
	}
	if _, err := path.Match(q.PairGlob, ""); err != nil {
		return fmt.Errorf("pair glob %q: %w", q.PairGlob, err)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since) {
		return fmt.Errorf("--until %s is before --since %s", q.Until.UTC().Format(time.RFC3339), q.Since.UTC().Format(time.RFC3339))
	}
	if q.Follow && !q.Until.IsZero() {
		return errors.New("--follow and --until exclude each other")
	}
	return nil
}

func (q Query) match(e event.Envelope) bool {
	if !q.Since.IsZero() && e.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && e.Time.After(q.Until) {
		return false
	}
	if q.Type != "" {
		if ok, _ := path.Match(q.Type, e.Type); !ok {
			return false
		}
	}
	if q.PairGlob != "" {
		if ok, _ := path.Match(q.PairGlob, e.Pair); !ok {
			return false
		}
	}
	if len(q.Streams) > 0 && (len(q.Nodes) > 0 && !contains(q.Nodes, e.Node) || q.Pair != "" && e.Pair != q.Pair) {
		return false
	}
	return true
}

// Stats counts what a replay read.
type Stats struct {
	Streams  []string // the streams read
	Read     int      // messages read from the streams
	Matched  int      // events passed to the callback
	Rejected int      // messages that are not valid events (skipped)
}

// clockSkew is how far an event's time may run ahead of the time its stream
// stored it (the producer's clock ahead of its server's); a replay with
// --since starts reading the streams this much earlier.
const clockSkew = time.Minute

// Record is one replayed event: the envelope, and the bytes exactly as the
// stream stored them.
type Record struct {
	event.Envelope
	Raw []byte
}

// Replay calls fn with every event that matches q, from every event stream
// (own and mirrored) on the node js talks to: the history merged by event
// time, then, with Follow, new events as they arrive until ctx ends. An
// error from fn stops the replay and is returned.
func Replay(ctx context.Context, js jetstream.JetStream, q Query, fn func(Record) error) (Stats, error) {
	var st Stats
	if err := q.Validate(); err != nil {
		return st, err
	}
	names := q.Streams
	if len(names) == 0 {
		var err error
		if names, err = Streams(ctx, js, q.Pair, q.Nodes); err != nil {
			return st, err
		}
	}
	st.Streams = names
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var err error
	readers := make([]*reader, len(names))
	var wg sync.WaitGroup
	for i, name := range names {
		readers[i] = &reader{name: name, out: make(chan item, 1024)}
		wg.Add(1)
		go func(r *reader) {
			defer wg.Done()
			r.err = r.run(ctx, js, q)
		}(readers[i])
	}
	err = merge(ctx, readers, q, fn, &st)
	cancel()
	wg.Wait()
	if err != nil {
		return st, err
	}
	for _, r := range readers {
		if r.err != nil && !errors.Is(r.err, context.Canceled) {
			return st, fmt.Errorf("read %s: %w", r.name, r.err)
		}
	}
	return st, nil
}

// Streams lists the event streams on the node, of pair ("" for all) and of
// nodes (none for all), sorted.
func Streams(ctx context.Context, js jetstream.JetStream, pair string, nodes []string) ([]string, error) {
	lister := js.StreamNames(ctx)
	var names []string
	for name := range lister.Name() {
		p, n, ok := parseStreamName(name)
		if !ok || (pair != "" && p != pair) || (len(nodes) > 0 && !contains(nodes, n)) {
			continue
		}
		names = append(names, name)
	}
	if err := lister.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	sort.Strings(names)
	return names, nil
}

const streamPrefix = "tandem_events_"

// parseStreamName splits tandem_events_<pair>_<node>; names have no '_'.
func parseStreamName(name string) (pair, node string, ok bool) {
	rest, found := strings.CutPrefix(name, streamPrefix)
	if !found {
		return "", "", false
	}
	pair, node, ok = strings.Cut(rest, "_")
	return pair, node, ok && subject.ValidName(pair) && subject.ValidName(node)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// item is what a reader sends: an event, or the mark that the reader has
// read the history (caughtUp).
type item struct {
	e        Record
	caughtUp bool
	rejected bool
}

// reader reads one stream with an ordered consumer. It owns out and closes
// it when it stops.
type reader struct {
	name string
	out  chan item
	err  error
}

func (r *reader) run(ctx context.Context, js jetstream.JetStream, q Query) error {
	defer close(r.out)
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if !q.Since.IsZero() {
		start := q.Since.Add(-clockSkew)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := js.OrderedConsumer(ctx, r.name, cfg)
	if err != nil {
		return err
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return err
	}
	caughtUp := info.NumPending == 0
	if caughtUp {
		if !r.send(ctx, item{caughtUp: true}) || !q.Follow {
			return nil
		}
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2048))
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	return r.decodeInOrder(ctx, it, caughtUp, q.Follow)
}

// batch is a run of consecutive messages of one stream, decoded by a worker.
type batch struct {
	msgs     []jetstream.Msg
	items    []item
	caughtUp bool          // the stream had nothing more pending after the last message
	done     chan struct{} // closed when items are ready
}

const batchSize = 256

// decodeInOrder reads the stream, decodes batches of messages on every core
// and sends the events in stream order. A batch is cut when it is full or
// when the stream has nothing more pending, so a live event is never held
// back.
func (r *reader) decodeInOrder(ctx context.Context, it jetstream.MessagesContext, caughtUp, follow bool) error {
	workers := max(runtime.GOMAXPROCS(0), 1)
	todo := make(chan *batch, workers)
	ordered := make(chan *batch, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range todo {
				b.decode()
			}
		}()
	}
	sent := make(chan error, 1)
	go func() { sent <- r.sendInOrder(ctx, ordered, caughtUp, follow) }()
	err := r.readBatches(ctx, it, todo, ordered)
	close(todo)
	close(ordered)
	wg.Wait()
	if serr := <-sent; serr != nil && err == nil {
		err = serr
	}
	if errors.Is(err, errHistoryRead) {
		return nil
	}
	return err
}

var errHistoryRead = errors.New("history read")

// readBatches cuts the stream into batches and hands each to a worker and,
// in the same order, to sendInOrder.
func (r *reader) readBatches(ctx context.Context, it jetstream.MessagesContext, todo, ordered chan<- *batch) error {
	b := &batch{done: make(chan struct{})}
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				return ctx.Err()
			}
			return err
		}
		meta, err := msg.Metadata()
		if err != nil {
			return err
		}
		b.msgs = append(b.msgs, msg)
		if meta.NumPending > 0 && len(b.msgs) < batchSize {
			continue
		}
		b.caughtUp = meta.NumPending == 0
		for _, ch := range []chan<- *batch{ordered, todo} {
			select {
			case ch <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		b = &batch{done: make(chan struct{})}
	}
}

func (b *batch) decode() {
	b.items = make([]item, len(b.msgs))
	for i, m := range b.msgs {
		e, err := event.DecodeStored(m.Data())
		b.items[i] = item{e: Record{Envelope: e, Raw: m.Data()}, rejected: err != nil}
	}
	close(b.done)
}

// sendInOrder sends the decoded batches in stream order, and the caught-up
// mark once the history has been read; without follow it then ends the
// replay of this stream (errHistoryRead).
func (r *reader) sendInOrder(ctx context.Context, ordered <-chan *batch, caughtUp, follow bool) error {
	for b := range ordered {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		for _, it := range b.items {
			if !r.send(ctx, it) {
				return ctx.Err()
			}
		}
		// The history ends where the stream ended when the replay began.
		// Stored times cannot end it early: an event is stored after it
		// was made, sometimes long after (the emitter retries through an
		// outage), so a late-stored event may still be in the range.
		if !caughtUp && b.caughtUp {
			caughtUp = true
			if !r.send(ctx, item{caughtUp: true}) {
				return ctx.Err()
			}
			if !follow {
				return errHistoryRead
			}
		}
	}
	return nil
}

func (r *reader) send(ctx context.Context, it item) bool {
	select {
	case r.out <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

// merge emits the readers' histories in event-time order: it holds one
// event from every reader that has not caught up and emits the earliest.
// Then, with Follow, it emits new events as they come.
func merge(ctx context.Context, readers []*reader, q Query, fn func(Record) error, st *Stats) error {
	heads := make([]*Record, len(readers))
	live := make([]bool, len(readers)) // still reading its history
	for i := range readers {
		live[i] = true
	}
	emit := func(e Record) error {
		if !q.match(e.Envelope) {
			return nil
		}
		st.Matched++
		return fn(e)
	}
	for {
		// Fill every head of a reader still in its history.
		for i, r := range readers {
			for live[i] && heads[i] == nil {
				it, ok := <-r.out
				switch {
				case !ok || it.caughtUp:
					live[i] = false
				case it.rejected:
					st.Read++
					st.Rejected++
				default:
					st.Read++
					e := it.e
					heads[i] = &e
				}
			}
		}
		i := earliest(heads)
		if i < 0 {
			break
		}
		e := *heads[i]
		heads[i] = nil
		if err := emit(e); err != nil {
			return err
		}
	}
	if !q.Follow {
		return nil
	}
	return follow(ctx, readers, emit, st)
}

func earliest(heads []*Record) int {
	best := -1
	for i, h := range heads {
		if h != nil && (best < 0 || h.Time.Before(heads[best].Time)) {
			best = i
		}
	}
	return best
}

// follow emits new events from every reader as they arrive.
func follow(ctx context.Context, readers []*reader, emit func(Record) error, st *Stats) error {
	merged := make(chan item)
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func(r *reader) {
			defer wg.Done()
			for it := range r.out {
				select {
				case merged <- it:
				case <-ctx.Done():
					return
				}
			}
		}(r)
	}
	go func() {
		wg.Wait()
		close(merged)
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case it, ok := <-merged:
			if !ok {
				return nil
			}
			if it.caughtUp {
				continue
			}
			st.Read++
			if it.rejected {
				st.Rejected++
				continue
			}
			if err := emit(it.e); err != nil {
				return err
			}
		}
	}
}

package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// source gathers an Input over NATS: the admin verbs every node of the pair
// answers (the same requests as `tandem status`), and the newest events of
// the event streams on the serving node's own server (its own and its
// mirror of the peer's), so that it keeps working when the peer is dead.
type source struct {
	pair, self string
	nc         *nats.Conn
	js         jetstream.JetStream
	wait       time.Duration // how long to wait for both nodes' answers

	mu     sync.Mutex // guards cache
	cache  map[string]streamCache
	events []event.Envelope // of the last gather, for the export
}

// streamCache is the newest events of one stream, read up to last.
type streamCache struct {
	last   uint64
	events []event.Envelope
}

func newSource(pair, self string, nc *nats.Conn, js jetstream.JetStream, wait time.Duration) *source {
	return &source{pair: pair, self: self, nc: nc, js: js, wait: wait, cache: map[string]streamCache{}}
}

// gather asks everything at once and returns what came back. What did not
// come back is named in Problems; it never fails as a whole.
func (s *source) gather(ctx context.Context) Input {
	in := Input{Pair: s.pair, Self: s.self}
	var mu sync.Mutex
	problem := func(what string, err error) {
		mu.Lock()
		in.Problems = append(in.Problems, fmt.Sprintf("%s: %v", what, err))
		mu.Unlock()
	}
	req := api.Request{V: api.Version, Pair: s.pair}
	var wg sync.WaitGroup
	wg.Go(func() {
		raws, err := s.ask(ctx, subject.Admin(s.pair, subject.PairScope, api.VerbStatus), api.StatusRequest{Request: req})
		if err != nil {
			problem("status", err)
			return
		}
		in.Status, in.Health = decodeStatus(raws)
	})
	wg.Go(func() {
		rs, err := askAll[api.ReplReply](ctx, s, subject.ReplAdmin(s.pair, api.VerbReplStatus), api.ReplRequest{Request: req})
		for _, r := range rs {
			in.Repl = append(in.Repl, r.Status)
		}
		if err != nil {
			problem("replication", err)
		}
	})
	wg.Go(func() {
		rs, err := askAll[api.LicenseStatusReply](ctx, s, subject.License(s.pair, subject.PairScope, api.VerbLicenseStatus),
			api.LicenseStatusRequest{Request: req})
		for _, r := range rs {
			in.License = append(in.License, r.State)
		}
		if err != nil {
			problem("licenses", err)
		}
	})
	wg.Go(func() {
		rs, err := askAll[api.AuditStatusReply](ctx, s, subject.Admin(s.pair, subject.PairScope, api.VerbAuditStatus),
			api.AuditStatusRequest{Request: req})
		for _, r := range rs {
			in.Audit = append(in.Audit, r.State)
		}
		if err != nil {
			problem("audit", err)
		}
	})
	wg.Go(func() {
		rs, err := askAll[api.NotifierStatusReply](ctx, s, subject.NotifierStatus(s.pair), api.NotifierStatusRequest{Request: req})
		for _, r := range rs {
			in.Sessions = append(in.Sessions, r.Status)
		}
		if err != nil {
			problem("sessions", err)
		}
	})
	wg.Go(func() {
		evs, err := s.readEvents(ctx)
		in.Events = evs
		if err != nil {
			problem("events", err)
		}
	})
	wg.Wait()
	return in
}

// ask sends req to subj, answered by every node of the pair, and returns
// the raw replies that came within the wait.
func (s *source) ask(ctx context.Context, subj string, req any) ([][]byte, error) {
	raws, err := reply.Gather(ctx, s.nc, subj, req, 2, s.wait)
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, errors.New("no node answers")
	}
	return raws, nil
}

func askAll[T any](ctx context.Context, s *source, subj string, req any) ([]T, error) {
	raws, err := s.ask(ctx, subj, req)
	if err != nil {
		return nil, err
	}
	var out []T
	var errs []error
	for _, b := range raws {
		var r T
		if err := reply.Decode(b, &r); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

// decodeStatus decodes the monitors' status replies, and the health checks
// that a status may carry beside the fields of api.NodeStatus (F15).
func decodeStatus(raws [][]byte) ([]api.StatusReply, map[string]Health) {
	var out []api.StatusReply
	health := map[string]Health{}
	for _, b := range raws {
		var r api.StatusReply
		if reply.Decode(b, &r) != nil {
			continue
		}
		out = append(out, r)
		var h struct {
			Self struct {
				Node string `json:"node"`
				Health
			} `json:"self"`
		}
		if json.Unmarshal(b, &h) == nil && (h.Self.Healthy != nil || len(h.Self.Checks) > 0) {
			health[h.Self.Node] = h.Self.Health
		}
	}
	return out, health
}

// readEvents reads the newest MaxEvents events of every event stream of the
// pair on the node's server; a stream that has not grown since the last
// read is not read again.
func (s *source) readEvents(ctx context.Context) ([]event.Envelope, error) {
	names, err := audit.Streams(ctx, s.js, s.pair, nil)
	if err != nil {
		return s.lastEvents(), err
	}
	var all []event.Envelope
	var errs []error
	for _, name := range names {
		evs, err := s.readStream(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
		all = append(all, evs...)
	}
	s.mu.Lock()
	s.events = all
	s.mu.Unlock()
	return all, errors.Join(errs...)
}

func (s *source) lastEvents() []event.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

// consumerIdle is how long the server keeps one of readStream's consumers
// after its fetch: a page refresh makes at most one a stream each Interval.
const consumerIdle = 5 * time.Second

func (s *source) readStream(ctx context.Context, name string) ([]event.Envelope, error) {
	st, err := s.js.Stream(ctx, name)
	if err != nil {
		return s.cached(name), err
	}
	state := st.CachedInfo().State
	if c, ok := s.cachedAt(name, state.LastSeq); ok {
		return c, nil
	}
	if state.Msgs == 0 {
		return nil, nil
	}
	start := max(state.FirstSeq, state.LastSeq-min(state.LastSeq, MaxEvents-1))
	// An ephemeral consumer the server removes once idle: the dashboard
	// connects as an admin, whose role may create consumers but not delete
	// them (an ordered consumer deletes its consumer when it resets, a
	// permission violation logged on every page).
	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start,
		AckPolicy: jetstream.AckNonePolicy, MemoryStorage: true, InactiveThreshold: consumerIdle})
	if err != nil {
		return s.cached(name), err
	}
	batch, err := cons.Fetch(int(state.LastSeq-start+1), jetstream.FetchMaxWait(s.wait+time.Second))
	if err != nil {
		return s.cached(name), err
	}
	var evs []event.Envelope
	for m := range batch.Messages() {
		if e, err := event.DecodeStored(m.Data()); err == nil {
			evs = append(evs, e)
		}
	}
	if err := batch.Error(); err != nil {
		return s.cached(name), err
	}
	s.mu.Lock()
	s.cache[name] = streamCache{last: state.LastSeq, events: evs}
	s.mu.Unlock()
	return evs, nil
}

func (s *source) cached(name string) []event.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cache[name].events
}

func (s *source) cachedAt(name string, last uint64) ([]event.Envelope, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[name]
	return c.events, ok && c.last == last
}

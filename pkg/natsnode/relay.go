package natsnode

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// A node whose services run in their own processes (tandem nats, tandem
// monitor, …; the Compose and systemd layouts) has no in-process view of its
// leaf link: only the process that embeds the server sees it. That process
// relays the link's state on subject.Link(pair, node) — at each change, and
// every RelayEvery so that a monitor started later learns it — and the
// monitor follows it with FollowLink. A down state is relayed after the
// peer's leaf port has been probed, so the monitor receives "down, and the
// peer's process is gone" as one fact.

// LinkStateVersion is the schema version of LinkState.
const LinkStateVersion = 1

// Relay timing and limits.
const (
	RelayEvery    = time.Second
	relayProbe    = 250 * time.Millisecond // as the in-process monitor probes
	maxLinkState  = 256                    // bytes of one encoded LinkState
	followBacklog = 64                     // as LinkEvents
)

// LinkState is one relayed state of a node's leaf link.
type LinkState struct {
	V  int  `json:"v"`
	Up bool `json:"up"`
	// Gone, when the link is down, says the probe of the peer's leaf port
	// proved its process dead (refused or reset).
	Gone bool      `json:"gone,omitempty"`
	At   time.Time `json:"at"` // when the relaying process saw the change
}

// DecodeLinkState decodes a relayed state strictly: size-limited, known
// fields only, the current version, a time.
func DecodeLinkState(b []byte) (LinkState, error) {
	var ls LinkState
	if len(b) > maxLinkState {
		return ls, fmt.Errorf("link state: %d bytes, limit %d", len(b), maxLinkState)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ls); err != nil {
		return LinkState{}, fmt.Errorf("link state: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return LinkState{}, errors.New("link state: data after the object")
	}
	switch {
	case ls.V != LinkStateVersion:
		return LinkState{}, fmt.Errorf("link state: version %d, want %d", ls.V, LinkStateVersion)
	case ls.At.IsZero():
		return LinkState{}, errors.New("link state: no time")
	case ls.Up && ls.Gone:
		return LinkState{}, errors.New("link state: up and gone")
	}
	return ls, nil
}

// Relay publishes the server's link state on subject.Link(pair, node) with
// nc until ctx ends or the server shuts down. peerLeafURL (nats.peer) is
// probed when the link goes down; without it a down link is never "gone".
func (s *Server) Relay(ctx context.Context, nc *nats.Conn, peerLeafURL string) {
	subj := subject.Link(s.opts.Pair, s.opts.Node)
	tick := time.NewTicker(RelayEvery)
	defer tick.Stop()
	state := LinkState{V: LinkStateVersion, At: time.Now()}
	publish := func() {
		b, err := json.Marshal(state)
		if err == nil {
			err = nc.Publish(subj, b)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn().Err(err).Msg("cannot relay the link state")
		}
	}
	publish()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-s.LinkEvents():
			if !ok {
				return
			}
			state = LinkState{V: LinkStateVersion, Up: ev.Up, At: ev.At}
			if !ev.Up && peerLeafURL != "" {
				state.Gone = ProbePeer(ctx, peerLeafURL, relayProbe) == Gone
			}
		case <-tick.C:
		}
		publish()
	}
}

// FollowedLink is a node's leaf link as its NATS process relays it.
type FollowedLink struct {
	sub    *nats.Subscription
	events chan LinkEvent

	mu   sync.Mutex // guards up, gone, bad
	up   bool
	gone bool
	bad  func(error)
}

// FollowLink follows the link state relayed for node of pair on nc. Like
// LinkEvents, Events delivers changes only, the first being the link coming
// up. bad, if not nil, is called with every message that does not decode.
func FollowLink(nc *nats.Conn, pair, node string, bad func(error)) (*FollowedLink, error) {
	f := &FollowedLink{events: make(chan LinkEvent, followBacklog), bad: bad}
	sub, err := nc.Subscribe(subject.Link(pair, node), f.onMsg)
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject.Link(pair, node), err)
	}
	f.sub = sub
	return f, nil
}

// OnBad makes bad the handler of every message that does not decode (in
// place of the one FollowLink was given).
func (f *FollowedLink) OnBad(bad func(error)) {
	f.mu.Lock()
	f.bad = bad
	f.mu.Unlock()
}

func (f *FollowedLink) onMsg(m *nats.Msg) {
	ls, err := DecodeLinkState(m.Data)
	if err != nil {
		f.mu.Lock()
		bad := f.bad
		f.mu.Unlock()
		if bad != nil {
			bad(err)
		}
		return
	}
	f.mu.Lock()
	changed := ls.Up != f.up
	f.up, f.gone = ls.Up, ls.Gone
	f.mu.Unlock()
	if !changed {
		return
	}
	ev := LinkEvent{Up: ls.Up, At: time.Now()}
	select {
	case f.events <- ev:
	default: // the reader is far behind: drop the oldest, keep the latest
		select {
		case <-f.events:
		default:
		}
		select {
		case f.events <- ev:
		default:
		}
	}
}

// Events delivers every change of the relayed link state.
func (f *FollowedLink) Events() <-chan LinkEvent { return f.events }

// Gone reports whether the latest relayed state is "down, and the peer's
// process proven dead".
func (f *FollowedLink) Gone() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.up && f.gone
}

// Close stops following. Events is not closed (a monitor keeps selecting on
// it until its own context ends).
func (f *FollowedLink) Close() error { return f.sub.Unsubscribe() }

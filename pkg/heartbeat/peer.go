package heartbeat

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// Who the peer is.
//
// hosts is not mandatory (SPEC §8), so a node may start without knowing
// its peer's name. Every service answers the question the same way: the
// configured name (config.Config.Peer, the other node of hosts) when there
// is one, else the sender of the first heartbeat of another node of the
// pair (Peer). The monitors publish one every interval, so the answer
// comes within an interval of the peer's start.

// SenderOf reads the sender of a heartbeat that arrived on subj: valid
// (DecodeSender), from a node other than self, on that node's own subject.
func SenderOf(data []byte, subj, pair, self string) (Heartbeat, bool) {
	h, err := DecodeSender(data, pair)
	from := subj[strings.LastIndexByte(subj, '.')+1:]
	if err != nil || h.Node != from || h.Node == self || subj != subject.Heartbeat(pair, from) {
		return Heartbeat{}, false
	}
	return h, true
}

// AwaitSender listens to pair's heartbeats on nc until one of another node
// than self for which want is true (nil: any) arrives, and returns its
// sender; or ctx's error.
func AwaitSender(ctx context.Context, nc *nats.Conn, pair, self string, want func(Heartbeat) bool) (Heartbeat, error) {
	got := make(chan Heartbeat, 1) // the first sender heard; the callback never blocks
	sub, err := nc.Subscribe(subject.Heartbeats(pair), func(m *nats.Msg) {
		if h, ok := SenderOf(m.Data, m.Subject, pair, self); ok && (want == nil || want(h)) {
			select {
			case got <- h:
			default:
			}
		}
	})
	if err != nil {
		return Heartbeat{}, fmt.Errorf("subscribe %s: %w", subject.Heartbeats(pair), err)
	}
	defer sub.Unsubscribe() //nolint:errcheck // the connection may be closing
	select {
	case h := <-got:
		return h, nil
	case <-ctx.Done():
		return Heartbeat{}, ctx.Err()
	}
}

// Peer is the peer's node name: configured when it is not "" (the
// configuration's answer, config.Config.Peer), else the sender of the
// first heartbeat of another node of pair.
func Peer(ctx context.Context, nc *nats.Conn, pair, self, configured string) (string, error) {
	if configured != "" {
		return configured, nil
	}
	h, err := AwaitSender(ctx, nc, pair, self, nil)
	return h.Node, err
}

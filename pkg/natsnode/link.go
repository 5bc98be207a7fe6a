package natsnode

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/clock"
)

// safetyTick is how often the watcher re-reads the count without an
// advisory (a variable for the tests that must do without it).
var safetyTick = time.Second

// LinkEvent is one change of the leaf link to the peer.
type LinkEvent struct {
	Up bool
	At time.Time // when the watcher saw the change
	// Remote is the name of the server at the other end of a link that
	// came up (subject.ServerName of the peer: "<pair>-<node>"); empty
	// when unknown (a relayed link).
	Remote string
}

// Watcher timing (see the package doc).
const (
	eventBuffer = 64                     // LinkEvents capacity
	settlePoll  = time.Millisecond       // poll period after an advisory
	settleSpan  = 100 * time.Millisecond // poll span after an advisory
	leafKind    = "Leafnode"             // ClientInfo.Kind of a leaf connection
)

// Linked reports whether the leaf link to the peer (a leaf connection of
// account TANDEM) is up, as of the latest LinkEvent.
func (s *Server) Linked() bool { return s.linked.Load() }

// LinkEvents delivers every up/down change of the leaf link, the first being
// the link coming up after Start. The channel is buffered (64); a reader
// that falls further behind loses the oldest events, never the latest. It is
// closed by Shutdown.
func (s *Server) LinkEvents() <-chan LinkEvent { return s.events }

// startWatcher subscribes an in-process SYS client to the connection
// advisories and the connection counts of account TANDEM and starts the
// watcher goroutine. The counts: a server that accepts a leaf connection
// signed in with the leaf key (a secured pair's master) sends no connect
// advisory for it, and saw its link come up only at the next safety tick,
// up to a second later (a peer killed meanwhile was then waited out as
// silent, not found refusing); the count the server sends when the
// account's connections change says it at once.
func (s *Server) startWatcher(id identities) error {
	nc, err := nats.Connect("", nats.InProcessServer(s.ns), nats.Name("natsnode-link-watcher"),
		nats.Nkey(id.sysPub, id.sys.Sign), nats.NoReconnect())
	if err != nil {
		return fmt.Errorf("connect link watcher: %w", err)
	}
	for _, ev := range []string{"CONNECT", "DISCONNECT"} {
		subj := fmt.Sprintf("$SYS.ACCOUNT.%s.%s", AppAccount, ev)
		if _, err := nc.Subscribe(subj, s.onAdvisory); err != nil {
			nc.Close()
			return fmt.Errorf("subscribe %s: %w", subj, err)
		}
	}
	conns := fmt.Sprintf("$SYS.ACCOUNT.%s.SERVER.CONNS", AppAccount)
	if _, err := nc.Subscribe(conns, s.onConns); err != nil {
		nc.Close()
		return fmt.Errorf("subscribe %s: %w", conns, err)
	}
	if err := nc.Flush(); err != nil {
		nc.Close()
		return fmt.Errorf("flush link watcher: %w", err)
	}
	s.sys = nc
	go s.watch()
	return nil
}

// onAdvisory pokes the watcher when a leaf connection of TANDEM connects or
// disconnects. It runs on the subscription's goroutine and never blocks.
func (s *Server) onAdvisory(m *nats.Msg) {
	var adv struct {
		Client struct {
			Kind string `json:"kind"`
		} `json:"client"`
	}
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.Client.Kind != leafKind {
		return
	}
	s.poke()
}

// poke asks the watcher for a look at the link.
func (s *Server) poke() {
	select {
	case s.kick <- struct{}{}:
	default: // a look is already due
	}
}

// onConns pokes the watcher when TANDEM's connection count (sent on every
// change of its connections, and every 30 s while it has some) says
// otherwise than the link state. It never blocks.
func (s *Server) onConns(m *nats.Msg) {
	var st struct {
		LeafNodes int `json:"leafnodes"`
	}
	if err := json.Unmarshal(m.Data, &st); err != nil || (st.LeafNodes > 0) == s.linked.Load() {
		return
	}
	s.poke()
}

// watch is the watcher goroutine: it owns linked and events.
func (s *Server) watch() {
	defer close(s.done)
	defer close(s.events)
	tick := clock.NewBeat(safetyTick) // on the whole second, with the node's other periodic jobs
	defer tick.Stop()
	s.observe()
	for {
		select {
		case <-s.quit:
			return
		case <-s.kick:
			s.settle()
		case <-tick.C:
			s.observe()
			tick.Next()
		}
	}
}

// settle follows an advisory, which may overtake the server's count of leaf
// connections: it reads the count every settlePoll until it changes, for at
// most settleSpan.
func (s *Server) settle() {
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	for range int(settleSpan / settlePoll) {
		if s.observe() {
			return
		}
		select {
		case <-s.quit:
			return
		case <-tick.C:
		}
	}
}

// observe reads the link state once and reports whether it changed.
func (s *Server) observe() bool {
	n, remote := s.appLeafs()
	up := n > 0
	if up == s.linked.Load() {
		return false
	}
	s.linked.Store(up)
	s.emit(LinkEvent{Up: up, At: time.Now(), Remote: remote})
	switch {
	case up && ForeignPeer(s.opts.Pair, remote):
		s.log.Error().Str("remote", remote).Msgf("leaf link up, but to server %q, which is not a node of pair %q: "+
			"nats.peer (or the peer's) points at another pair's node", remote, s.opts.Pair)
	case up:
		s.log.Info().Str("remote", remote).Msg("leaf link up")
	default:
		s.log.Info().Msg("leaf link down")
	}
	return true
}

// appLeafs counts the established leaf connections of account TANDEM (the
// link to the peer; NOTES: a link to a central hub is bound to another
// account and does not count) and names the server at the other end of the
// first.
func (s *Server) appLeafs() (int, string) {
	lz, err := s.ns.Leafz(&server.LeafzOptions{Account: AppAccount})
	if err != nil || lz.NumLeafs == 0 {
		return 0, ""
	}
	remote := ""
	if len(lz.Leafs) > 0 {
		remote = lz.Leafs[0].Name
	}
	return lz.NumLeafs, remote
}

// ForeignPeer reports whether remote, the server name at the other end of
// the leaf link, is not a node of pair (subject.ServerName: "<pair>-<node>").
// An empty name is not known to be foreign.
func ForeignPeer(pair, remote string) bool {
	return remote != "" && !strings.HasPrefix(remote, pair+"-")
}

// emit queues ev, dropping the oldest queued event when the buffer is full.
// The watcher is the only sender, so after one drop the send succeeds.
func (s *Server) emit(ev LinkEvent) {
	select {
	case s.events <- ev:
		return
	default:
	}
	select {
	case <-s.events:
	default:
	}
	select {
	case s.events <- ev:
	default:
		s.log.Warn().Bool("up", ev.Up).Msg("link event dropped")
	}
}

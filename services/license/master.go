package license

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/heartbeat"
)

// Learning the master's node name.
//
// hosts is not mandatory (SPEC §8), so a standby may start without knowing
// which node is its master. The monitors say it every heartbeat interval
// (pkg/heartbeat: who the peer is). Such a standby listens to the pair's
// heartbeats until one of another node says role "master" (setUpMirror),
// takes that name, sets up the mirror of that master's bucket and hands it
// to run. Until then it refuses adds saying that its master is not yet
// known, and reads the mirror an earlier run made, if there is one.

// masterOf reads a heartbeat that arrived on subj: the node name of
// pair's master, when the heartbeat is from a node other than self that
// says it is the master.
func masterOf(data []byte, subj, pair, self string) (string, bool) {
	h, ok := heartbeat.SenderOf(data, subj, pair, self)
	if !ok || !isMaster(h) {
		return "", false
	}
	return h.Node, true
}

func isMaster(h heartbeat.Heartbeat) bool { return h.Role == string(config.Master) }

// masterNode is the master's node name, "" while it is not known.
func (s *Service) masterNode() string {
	s.masterMu.Lock()
	defer s.masterMu.Unlock()
	return s.master
}

func (s *Service) setMaster(name string) {
	s.masterMu.Lock()
	s.master = name
	s.masterMu.Unlock()
}

// The retries of setUpMirror: the mirror is made once the master answers,
// soon after the link is up.
const (
	mirrorRetry    = 500 * time.Millisecond
	maxMirrorRetry = 5 * time.Second
)

// setUpMirror is the goroutine of a standby without its mirror of the
// master's bucket (a new or lost data directory, or a master it does not
// know): it learns the master from its heartbeats if need be, then makes
// the mirror once the master answers (ensureBucket, retrying until ctx
// ends) and hands it to run through found.
func (s *Service) setUpMirror(ctx context.Context, found chan<- jetstream.KeyValue) {
	if s.masterNode() == "" {
		name, err := s.awaitMaster(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Error().Err(err).Msg("cannot learn the master's node name; licenses are not replicated")
			}
			return
		}
		s.setMaster(name)
		s.log.Info().Str("master", name).Msg("learned the master's node name from its heartbeats")
	}
	delay, warned := mirrorRetry, false
	for {
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		kv, err := s.ensureBucket(cctx)
		cancel()
		if err == nil {
			select {
			case found <- kv:
			case <-ctx.Done():
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
		ev := s.log.Debug()
		if !warned {
			ev, warned = s.log.Warn(), true
		}
		ev.Err(err).Dur("retry_in", delay).Msg("mirror of the master's license bucket not set up yet")
		if !clock.Sleep(ctx, delay) {
			return
		}
		delay = min(2*delay, maxMirrorRetry)
	}
}

// awaitMaster listens to the pair's heartbeats until one names the master.
func (s *Service) awaitMaster(ctx context.Context) (string, error) {
	h, err := heartbeat.AwaitSender(ctx, s.nc, s.cfg.Pair, s.cfg.Node, isMaster)
	if err != nil {
		return "", fmt.Errorf("license: %w", err)
	}
	return h.Node, nil
}

package notifier

// Catching up on the sessions.
//
// A notifier knows a session from its hellos and acknowledgements. One
// that starts while its peer runs (a node back after an outage) heard none
// of them: the sessions' connections to its node come back seconds later
// (their reconnect delay), and a takeover in that window reported "every
// session notified" with none known, a report never corrected.
//
// So a notifier that starts asks its peer's notifier for the sessions it
// knows (subject.NotifierSessions: pages of at most api.MaxSessionsPage, in
// name order, from a snapshot the peer keeps for sessionsSnapshotTTL), and
// counts each as the acknowledgement it is, which never overrides a newer
// one of its own. It asks until the peer's notifier has answered with its
// whole list once: again at each of the peer's heartbeats (the first one
// says the link is up: a node started before its link came up otherwise
// waited out a retry, and its peer could die meanwhile), and spaced up to
// catchUpMaxRetry.
//
// Until it has the peer's list, the notifier may not know every session:
// its report of a notification it published then waits unlearnedHold
// (longer than a session's reconnect delay), so that the sessions that
// come back to its node are counted, instead of reporting every session
// notified as soon as the few it knew had acknowledged (none, right after
// its start).

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/notifier/internal/progress"
)

const (
	catchUpFirstRetry = 100 * time.Millisecond
	catchUpMaxRetry   = 2 * time.Second
	catchUpTimeout    = 2 * time.Second // one page's round trip
	// sessionsSnapshotTTL is how long a list's later pages come from the
	// snapshot its first page was cut from.
	sessionsSnapshotTTL = 30 * time.Second
	// unlearnedHold is how long after its notification a notifier that
	// has not learned its peer's sessions waits before it reports.
	unlearnedHold = 5 * time.Second
	// maxSessionPages bounds the pages of one list.
	maxSessionPages = progress.MaxSessions/api.MaxSessionsPage + 1
)

// catchUp is the goroutine that learns the sessions the peer's notifier
// knows, once.
func (s *Service) catchUp(ctx context.Context) {
	peer := s.peerName(ctx)
	if peer == "" {
		return
	}
	heard := make(chan struct{}, 1)
	sub, err := s.o.Conn.Subscribe(subject.Heartbeat(s.pair, peer), func(*nats.Msg) {
		select {
		case heard <- struct{}{}:
		default:
		}
	})
	if err != nil {
		s.log.Warn().Err(err).Msg("cannot hear the peer's heartbeats; asking its notifier for its sessions on a timer only")
	} else {
		defer func() { _ = sub.Unsubscribe() }()
	}
	retry := time.NewTimer(0)
	defer retry.Stop()
	wait := catchUpFirstRetry
	for {
		select {
		case <-ctx.Done():
			return
		case <-retry.C:
		case <-heard:
		}
		n, err := s.fetchSessions(ctx, peer)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			s.learned.Store(true)
			s.log.Info().Str("peer", peer).Int("sessions", n).Int("known", s.Status().Known).
				Msg("learned the sessions the peer's notifier knows")
			s.maybeReport()
			return
		}
		s.log.Debug().Err(err).Str("peer", peer).Dur("retry_in", wait).Msg("the peer's notifier did not list its sessions")
		select { // a heartbeat heard during the attempt may predate the link
		case <-heard:
		default:
		}
		retry.Reset(wait)
		wait = min(2*wait, catchUpMaxRetry)
	}
}

// fetchSessions asks peer's notifier for every session it knows, a page at
// a time, and learns each page; it returns how many sessions it listed.
func (s *Service) fetchSessions(ctx context.Context, peer string) (int, error) {
	subj := subject.NotifierSessions(s.pair, peer)
	after, n := "", 0
	for range maxSessionPages {
		req := api.NotifierSessionsRequest{Request: api.Request{V: api.Version, Pair: s.pair}, After: after, Limit: api.MaxSessionsPage}
		var page api.NotifierSessionsReply
		rctx, cancel := context.WithTimeout(ctx, catchUpTimeout)
		err := reply.Request(rctx, s.o.Conn, subj, req, &page)
		cancel()
		if err != nil {
			return n, err
		}
		if err := page.Validate(after); err != nil {
			s.reject("peer", subj, err)
			return n, err
		}
		s.learn(page.Sessions)
		n += len(page.Sessions)
		if !page.More {
			return n, nil
		}
		after = page.Sessions[len(page.Sessions)-1].Session
	}
	return n, fmt.Errorf("the peer's list of sessions goes on beyond %d pages", maxSessionPages)
}

// learn counts what the peer's notifier knows of sessions.
func (s *Service) learn(sessions []api.KnownSession) {
	if len(sessions) == 0 {
		return
	}
	now := s.clk.Now()
	s.mu.Lock()
	for _, k := range sessions {
		s.tracker.Ack(k.Session, k.Epoch, k.Switched, now) // false when full: the peer's extra sessions are not counted
	}
	p := s.tracker.Progress()
	s.mu.Unlock()
	s.counted(p)
}

// onSessionsMsg answers the peer's request for a page of the sessions this
// notifier knows.
func (s *Service) onSessionsMsg(m *nats.Msg) {
	var req api.NotifierSessionsRequest
	err := api.Decode(m.Data, s.pair, &req)
	if err == nil && req.After != "" && !subject.ValidSession(req.After) {
		err = reply.Errorf(reply.CodeBadRequest, "after: %q is not a session name", req.After)
	}
	if err != nil {
		s.reject("admin", m.Subject, err)
		respond(m, reply.Fail(err))
		return
	}
	limit := req.Limit
	if limit <= 0 || limit > api.MaxSessionsPage {
		limit = api.MaxSessionsPage
	}
	sessions, more := sessionsPage(s.sessionsSnapshot(req.After == ""), req.After, limit)
	respond(m, reply.OK(api.NotifierSessionsReply{Sessions: sessions, More: more}))
}

// sessionsSnapshot is the sessions this notifier knows, in name order: a
// new snapshot when fresh is set or the last one is older than
// sessionsSnapshotTTL.
func (s *Service) sessionsSnapshot(fresh bool) []api.KnownSession {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	now := time.Now()
	if !fresh && s.snap != nil && now.Sub(s.snapAt) < sessionsSnapshotTTL {
		return s.snap
	}
	s.mu.Lock()
	list := make([]api.KnownSession, 0, s.tracker.Progress().Known)
	s.tracker.Each(func(session string, epoch uint64, switched int) {
		list = append(list, api.KnownSession{Session: session, Epoch: epoch, Switched: switched})
	})
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b api.KnownSession) int { return strings.Compare(a.Session, b.Session) })
	s.snap, s.snapAt = list, now
	return list
}

// sessionsPage is at most limit sessions of list (in name order) named after
// after, and whether more follow them.
func sessionsPage(list []api.KnownSession, after string, limit int) ([]api.KnownSession, bool) {
	i := sort.Search(len(list), func(i int) bool { return list[i].Session > after })
	end := min(i+limit, len(list))
	return list[i:end], end < len(list)
}

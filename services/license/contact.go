package license

// Proof of contact (SPEC §9, L4). The standby's challenger goroutine sends
// the master's license service a challenge with a fresh nonce whenever the
// master's lease changes in the mirrored bucket (the master is reachable),
// at start, and every lease interval; the master answers with its node key
// (internal/contact). run verifies the answer against the pinned master key
// (pinning it on first use), and only then counts it as contact. The lease
// in the bucket is a trigger, never a proof: a stored or replayed record
// proves nothing.
//
// The state file is not trusted beyond what the master signed: at start the
// standby takes its Contact only when the stored proof verifies against the
// pinned key and Contact is not later than the proof's signed time. A
// missing, damaged or altered file leaves no grace until the next contact;
// the node and this service run on.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/license/internal/contact"
	"github.com/tandem-ha/tandem/services/license/internal/grace"
	"github.com/tandem-ha/tandem/services/license/internal/statefile"
)

// challengeTimeout bounds one challenge's round trip.
const challengeTimeout = 2 * time.Second

// A failed challenge is tried again after firstRetry, the wait doubling
// up to challengeRetry: a standby that starts before its link to the
// master is up has its first proof of contact soon after the link comes.
const (
	firstRetry     = 100 * time.Millisecond
	challengeRetry = time.Second
)

// answered is one answer the challenger got, with its challenge.
type answered struct {
	c contact.Challenge
	a contact.Answer
}

// loadState reads the persisted state and decides how much of it to trust.
// Nothing here stops the service.
func (s *Service) loadState(ctx context.Context) {
	rec, ok, err := statefile.Load(s.dir)
	if err != nil {
		s.stateTrouble(fmt.Errorf("%w; no grace until the next contact with the master", err))
		rec, ok = statefile.Record{}, false
	}
	if !ok {
		rec = statefile.Record{Level: grace.Valid}
		if s.cfg.Role == config.Standby {
			rec.Level = grace.Invalid // reported as such from the start, not as a change
		}
	}
	if s.cfg.Role == config.Master {
		key, err := contact.LoadOrCreateKey(s.dir)
		if err != nil {
			s.stateTrouble(fmt.Errorf("the master's node key: %w; the standby cannot prove contact", err))
		}
		s.nodeKey = key
	} else {
		s.pinned, err = contact.LoadKey(s.dir)
		if err != nil {
			s.stateTrouble(err)
		}
		rec = s.trust(rec)
	}
	rec.State = grace.Floor(rec.State, s.streamTime(ctx).Add(-Tolerance))
	s.rec = rec
}

// trust keeps the standby's Contact only when a verified proof backs it.
func (s *Service) trust(rec statefile.Record) statefile.Record {
	why := ""
	switch {
	case rec.State.Contact.IsZero():
		return rec
	case rec.Proof == nil:
		why = "no signed answer of the master stored"
	case s.pinned == nil:
		why = "no pinned master key (" + contact.KeyFile + ")"
	default:
		if _, err := contact.VerifyProof(*rec.Proof, s.pinned); err != nil {
			why = err.Error()
		} else if rec.State.Contact.After(rec.Proof.Time) {
			why = "the recorded contact is later than the master's signed answer"
		}
	}
	if why == "" {
		rec.State = grace.Floor(rec.State, rec.Proof.Time.Add(-Tolerance))
		return rec
	}
	s.stateTrouble(fmt.Errorf("the license state's contact is not trusted (%s); no grace until the next contact with the master", why))
	rec.State.Contact, rec.Proof = time.Time{}, nil
	return rec
}

// streamTime is the time of the last message of this node's own event
// stream (stamped by its NATS server): a clock behind it was set back.
// Zero when it cannot be read.
func (s *Service) streamTime(ctx context.Context) time.Time {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.js.Stream(sctx, subject.EventStream(s.cfg.Pair, s.cfg.Node))
	if err != nil {
		return time.Time{}
	}
	return st.CachedInfo().State.LastTime
}

// stateTrouble logs and reports a problem with the license state; status
// shows it until the service restarts.
func (s *Service) stateTrouble(err error) { s.trouble(&s.stateErr, err) }

// trouble records err in slot (stateErr or saveErr), for status, and
// reports it.
func (s *Service) trouble(slot *atomic.Pointer[string], err error) {
	msg := err.Error()
	slot.Store(&msg)
	s.log.Error().Err(err).Msg("license state")
	s.emit(event.InputRejected, s.clk.Now(), event.Rejected{Why: event.Because(msg), Kind: "license.state"})
	s.rejected.WithLabelValues("license.state").Inc()
}

// answerChallenge is the master's side: a signed answer to a standby's
// challenge.
func (s *Service) answerChallenge(subj string, data []byte) []byte {
	if s.cfg.Role != config.Master {
		return s.fail("license.challenge", subj, s.notMaster())
	}
	var c contact.Challenge
	if err := event.DecodeStrict(data, contact.MaxSize, &c); err != nil {
		return s.fail("license.challenge", subj, reply.Errorf(reply.CodeBadRequest, "malformed challenge: %v", err))
	}
	if err := c.Check(s.cfg.Pair); err != nil {
		return s.fail("license.challenge", subj, reply.Errorf(reply.CodeBadRequest, "%v", err))
	}
	if c.Standby == s.cfg.Node || !subject.ValidName(c.Standby) {
		return s.fail("license.challenge", subj, reply.Errorf(reply.CodeBadRequest, "challenge from %q: not this pair's standby", c.Standby))
	}
	if s.nodeKey == nil {
		return reply.Fail(reply.Errorf(reply.CodeInternal, "the master's node key is unusable"))
	}
	return reply.OK(contact.Sign(s.nodeKey, c, s.cfg.Node, s.clk.Now()))
}

// challenger is the standby's goroutine that asks the master for proofs
// of contact and hands the answers to run.
func (s *Service) challenger(ctx context.Context) {
	t := s.clk.NewTicker(s.lease)
	defer t.Stop()
	// A failed challenge is retried soon on the real clock (the link may
	// not carry the subject yet), else at the next lease or tick.
	rt := time.NewTimer(challengeRetry)
	rt.Stop()
	defer rt.Stop()
	wait := firstRetry
	for {
		var retry <-chan time.Time
		if a, c, err := s.challenge(ctx); err == nil {
			wait = firstRetry
			select {
			case s.answers <- answered{c: c, a: a}:
			case <-ctx.Done():
				return
			}
		} else if ctx.Err() == nil {
			s.log.Debug().Err(err).Msg("no proof of contact from the master")
			rt.Reset(wait)
			retry = rt.C
			wait = min(2*wait, challengeRetry)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		case <-s.kick:
		case <-retry:
		}
	}
}

// kickChallenger asks the challenger for a challenge now.
func (s *Service) kickChallenger() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Service) challenge(ctx context.Context) (contact.Answer, contact.Challenge, error) {
	master := s.masterNode()
	if master == "" {
		return contact.Answer{}, contact.Challenge{}, errors.New("the master is not known yet")
	}
	c, err := contact.NewChallenge(s.cfg.Pair, s.cfg.Node)
	if err != nil {
		return contact.Answer{}, c, err
	}
	b, _ := json.Marshal(c)
	rctx, cancel := context.WithTimeout(ctx, challengeTimeout)
	defer cancel()
	m, err := s.nc.RequestWithContext(rctx, subject.License(s.cfg.Pair, master, api.VerbLicenseChallenge), b)
	if err != nil {
		return contact.Answer{}, c, err
	}
	var a contact.Answer
	if err := reply.Decode(m.Data, &a); err != nil {
		return contact.Answer{}, c, err
	}
	return a, c, nil
}

// onAnswer (run) counts a verified answer as contact.
func (s *Service) onAnswer(x answered) {
	pinned := s.pinned
	if pinned != nil && !contact.KeyPinned(s.dir) {
		// The operator removed the pinned key (a master whose node key was
		// replaced on purpose): the next verified answer is pinned anew.
		pinned = nil
	}
	key, err := contact.Verify(x.a, x.c, s.masterNode(), pinned)
	if err != nil {
		s.reject("license.answer", subject.License(s.cfg.Pair, x.a.Master, api.VerbLicenseChallenge), err)
		if errors.Is(err, contact.ErrWrongKey) {
			msg := fmt.Sprintf("the master %s answers, but signed by another key than the one pinned in %s: "+
				"if its node key was replaced on purpose, delete that file on this standby to trust the new key",
				x.a.Master, filepath.Join(s.dir, contact.KeyFile))
			s.answerErr.Store(&msg)
		}
		return
	}
	s.answerErr.Store(nil)
	if pinned == nil && s.pinned != nil {
		s.log.Warn().Str("master", x.a.Master).Msg("the pinned master key was removed: pinning the master's current key")
		s.pinned = nil
	}
	if s.pinned == nil {
		if err := contact.Pin(s.dir, key); err != nil {
			s.stateTrouble(err)
			return
		}
		s.pinned = key
		s.log.Info().Str("master", x.a.Master).Msg("pinned the master's node key (first contact)")
	}
	s.rec.State = grace.Contacted(s.rec.State, s.clk.Now(), x.a.Time)
	s.rec.State = grace.Floor(s.rec.State, x.a.Time.Add(-Tolerance))
	proof := x.a
	s.rec.Proof = &proof
	// Contact replaces whatever was wrong with the state read at start
	// (missing, damaged, not trusted).
	s.stateErr.Store(nil)
	s.save(s.rec)
}

// save persists rec; a failure is reported and shown in status until a
// save succeeds.
func (s *Service) save(rec statefile.Record) {
	if err := statefile.Save(s.dir, rec); err != nil {
		s.trouble(&s.saveErr, fmt.Errorf("cannot persist the license state: %w", err))
		return
	}
	s.saveErr.Store(nil)
}

package notifier

import (
	"errors"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/services/notifier/internal/progress"
)

// errTooMany is an ack refused because the tracker is full.
var errTooMany = errors.New("too many sessions")

// onAckMsg handles an acknowledgement published by a session.
func (s *Service) onAckMsg(m *nats.Msg) {
	a, err := api.CountAck(m.Data, s.pair)
	if err == nil && a.Session != api.SessionFromAckSubject(s.pair, m.Subject) {
		err = errors.New("ack names another session or pair than its subject")
	}
	if err != nil {
		s.reject("ack", m.Subject, err)
		return
	}
	if err := s.handleAck(a); err != nil {
		s.reject("ack", m.Subject, err)
	}
}

// onAckBatchMsg handles a batch of acknowledgements a client holding many
// sessions published: every line is checked as a single acknowledgement is
// (api.CountAckBatch, which keeps only what is counted); a batch with a bad
// line is refused whole.
func (s *Service) onAckBatchMsg(m *nats.Msg) {
	acks, err := api.CountAckBatch(m.Data, s.pair)
	if err != nil {
		s.reject("ack", m.Subject, err)
		return
	}
	if err := s.handleAck(acks...); err != nil {
		s.reject("ack", m.Subject, err)
	}
}

// handleAck records valid acknowledgements, under one lock.
func (s *Service) handleAck(acks ...api.AckCount) error {
	now := s.clk.Now()
	s.mu.Lock()
	ok := true
	for _, a := range acks {
		if a.Kind == api.AckBye {
			s.tracker.Bye(a.Session, now)
		} else if !s.tracker.Ack(a.Session, a.Epoch, a.Switched, now) {
			ok = false
		}
	}
	p := s.tracker.Progress()
	s.mu.Unlock()
	if !ok {
		return errTooMany
	}
	s.met.acks.Add(float64(len(acks)))
	s.counted(p)
	return nil
}

// counted publishes the counts after a change and reports a notification
// whose sessions have all acknowledged.
func (s *Service) counted(p progress.Progress) {
	s.met.known.Set(float64(p.Known))
	s.met.acked.Set(float64(p.Acknowledged))
	if p.Complete {
		s.maybeReport()
	}
}

// onStatusMsg answers the notifier status request of `tandem status`.
func (s *Service) onStatusMsg(m *nats.Msg) {
	var req api.NotifierStatusRequest
	if err := api.Decode(m.Data, s.pair, &req); err != nil {
		s.reject("admin", m.Subject, err)
		respond(m, reply.Fail(err))
		return
	}
	respond(m, reply.OK(api.NotifierStatusReply{Status: s.Status()}))
}

func respond(m *nats.Msg, b []byte) {
	if m.Reply != "" {
		_ = m.Respond(b)
	}
}

// reject counts, logs and reports bad input (SPEC §9); it changes nothing
// else. Reports are limited to reject.PerSecond events a second.
func (s *Service) reject(kind, subj string, err error) {
	s.met.rejected.WithLabelValues(kind).Inc()
	s.met.inputRejected.WithLabelValues(kind).Inc()
	now := s.clk.Now()
	if !s.rejects.Log(s.log, now, kind, subj, err) {
		return
	}
	var epoch uint64
	if cur, ok := s.Current(); ok {
		epoch = cur.Epoch
	}
	e, eerr := event.New(s.pair, s.self, "notifier", event.InputRejected, epoch, now,
		event.Rejected{Why: event.Because(err.Error()), Kind: kind, Subject: subj})
	if eerr == nil {
		s.o.Events.Emit(e)
	}
}

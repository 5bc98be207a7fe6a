package license

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/bus"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	lic "github.com/tandem-ha/tandem/pkg/license"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/license/internal/grace"
)

// addWait bounds how long an add waits for run to take the new license.
const addWait = 5 * time.Second

var featureRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// subscribe listens for license requests to this node and to the pair, and
// for the pair's events (to learn the epoch that events carry).
func (s *Service) subscribe() (bus.Subscriptions, error) {
	p := s.cfg.Pair
	subs, err := bus.SubscribeAll(s.nc, map[string]nats.MsgHandler{
		subject.LicenseAll(p, s.cfg.Node):        s.onRequest,
		subject.LicenseAll(p, subject.PairScope): s.onRequest,
		subject.Events(p):                        s.onEvent,
	}, bus.Limits{Msgs: 1024, Bytes: 16 << 20})
	if err != nil {
		return nil, fmt.Errorf("license: %w", err)
	}
	return subs, nil
}

// onEvent keeps the highest epoch of the pair's events.
func (s *Service) onEvent(m *nats.Msg) {
	e, err := event.Decode(m.Data)
	if err != nil || e.Pair != s.cfg.Pair {
		return
	}
	for {
		cur := s.epoch.Load()
		if e.Epoch <= cur || s.epoch.CompareAndSwap(cur, e.Epoch) {
			return
		}
	}
}

func (s *Service) onRequest(m *nats.Msg) {
	verb := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	var out []byte
	switch verb {
	case api.VerbLicenseAdd:
		if strings.Contains(m.Subject, "."+subject.PairScope+".") {
			out = s.fail("license.add", m.Subject, reply.Errorf(reply.CodeBadRequest, "add goes to one node (the master), not to the pair"))
			break
		}
		out = s.add(m.Data)
	case api.VerbLicenseList:
		out = s.list(m.Data)
	case api.VerbLicenseCheck:
		out = s.checkFeature(m.Data)
	case api.VerbLicenseChallenge:
		if strings.Contains(m.Subject, "."+subject.PairScope+".") {
			out = s.fail("license.challenge", m.Subject, reply.Errorf(reply.CodeBadRequest, "a challenge goes to the master, not to the pair"))
			break
		}
		out = s.answerChallenge(m.Subject, m.Data)
	case api.VerbLicenseStatus:
		var req api.LicenseStatusRequest
		if err := api.Decode(m.Data, s.cfg.Pair, &req); err != nil {
			out = s.fail("license.status", m.Subject, err)
			break
		}
		out = reply.OK(api.LicenseStatusReply{Pair: s.cfg.Pair, State: s.state()})
	default:
		out = s.fail("license", m.Subject, reply.Errorf(reply.CodeBadRequest, "unknown license verb %q", verb))
	}
	if m.Reply != "" {
		_ = m.Respond(out)
	}
}

func (s *Service) fail(kind, subj string, err error) []byte {
	s.reject(kind, subj, err)
	return reply.Fail(err)
}

// add enters a license (L1, L2). Every outcome is an event.
func (s *Service) add(data []byte) []byte {
	var req api.LicenseAddRequest
	if err := api.Decode(data, s.cfg.Pair, &req); err != nil {
		return s.fail("license.add", "", err)
	}
	l, err := s.accept([]byte(req.License))
	if err != nil {
		s.refused(req.License, err)
		return reply.Fail(err)
	}
	s.log.Info().Str("license", l.ID).Str("customer", l.Customer).Strs("features", l.Features).Msg("license added")
	s.emit(event.LicenseAdded, s.clk.Now(), event.AddedLicense{ID: l.ID, Customer: l.Customer,
		Product: l.Product, Features: l.Features, Seats: l.Seats, Expires: l.Expires})
	return reply.OK(api.LicenseAddReply{Pair: s.cfg.Pair, Node: s.cfg.Node, License: info(grace.Entry{Payload: l.Payload})})
}

// accept checks a license and stores it in the bucket.
func (s *Service) accept(text []byte) (*lic.Signed, error) {
	if s.cfg.Role != config.Master {
		return nil, s.notMaster()
	}
	if s.pub == nil {
		return nil, reply.Errorf(reply.CodeInvalidState, "this node has no license.public_key: it cannot verify licenses")
	}
	l, err := lic.Open(text, s.pub, s.clk.Now(), Tolerance)
	if err == nil {
		err = l.CheckPair(s.cfg.Pair)
	}
	if err != nil {
		return nil, reply.Errorf(reply.CodeBadRequest, "license refused: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), addWait)
	defer cancel()
	if err := s.store(ctx, l); err != nil {
		return nil, err
	}
	if err := s.handOver(ctx, l); err != nil {
		return nil, reply.Errorf(reply.CodeInternal, "license %s stored but not yet in effect: %v", l.ID, err)
	}
	return l, nil
}

// store writes the license under its id, unless the same license is there
// already; a different license under the same id is refused.
func (s *Service) store(ctx context.Context, l *lic.Signed) error {
	text := l.Armor()
	key := licPrefix + l.ID
	old, err := s.kv.Get(ctx, key)
	switch {
	case err == nil && bytes.Equal(old.Value(), text):
		return nil
	case err == nil:
		return reply.Errorf(reply.CodeInvalidState, "a different license with id %s is already stored", l.ID)
	case !errors.Is(err, jetstream.ErrKeyNotFound):
		return reply.Errorf(reply.CodeInternal, "read license bucket: %v", err)
	}
	if _, err := s.kv.Create(ctx, key, text); err != nil {
		return reply.Errorf(reply.CodeInternal, "store license %s: %v", l.ID, err)
	}
	return nil
}

// handOver gives the license to run and waits until the snapshot holds it.
func (s *Service) handOver(ctx context.Context, l *lic.Signed) error {
	select {
	case s.added <- l:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		for _, e := range s.snap.Load().status.Licenses {
			if e.ID == l.ID {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

func (s *Service) refused(text string, err error) {
	data := event.LicenseRefusal{Why: event.Because(err.Error())}
	if l, derr := lic.Decode([]byte(text)); derr == nil {
		data.ID, data.Customer = l.ID, l.Customer
	}
	s.log.Warn().Err(err).Msg("license refused")
	s.emit(event.LicenseRefused, s.clk.Now(), data)
}

func (s *Service) list(data []byte) []byte {
	var req api.LicenseListRequest
	if err := api.Decode(data, s.cfg.Pair, &req); err != nil {
		return s.fail("license.list", "", err)
	}
	st := s.current()
	out := api.LicenseListReply{Pair: s.cfg.Pair, State: s.state(), Licenses: []api.LicenseInfo{}}
	for _, e := range st.Licenses {
		out.Licenses = append(out.Licenses, info(e))
	}
	return reply.OK(out)
}

func (s *Service) checkFeature(data []byte) []byte {
	var req api.LicenseCheckRequest
	if err := api.Decode(data, s.cfg.Pair, &req); err != nil {
		return s.fail("license.check", "", err)
	}
	if !featureRE.MatchString(req.Feature) {
		return s.fail("license.check", "", reply.Errorf(reply.CodeBadRequest, "feature %q: want [a-z0-9][a-z0-9_-]{0,63}", req.Feature))
	}
	ok, id, why := s.current().Check(req.Feature)
	if ok && req.Seat != "" {
		ok, why = s.seats.take(id, s.seatLimit(id), req.Seat, s.clk.Now(), why)
	}
	return reply.OK(api.LicenseCheckReply{Pair: s.cfg.Pair, Feature: req.Feature, Licensed: ok, Reason: why,
		License: id, State: s.state()})
}

// state is this node's license state for replies.
func (s *Service) state() api.LicenseState {
	st := s.current()
	out := api.LicenseState{Node: s.cfg.Node, Role: string(s.cfg.Role), Reason: st.Reason(), Licenses: len(st.Licenses)}
	for _, trouble := range []*string{s.answerErr.Load(), s.stateErr.Load(), s.saveErr.Load()} {
		if trouble != nil {
			out.Reason += "; " + *trouble
		}
	}
	switch {
	case st.Level == grace.Invalid && len(st.Licenses) > 0:
		out.Status = api.LicenseInvalid
	case !st.Licensed():
		out.Status = api.LicenseUnlicensed
	case st.Level != grace.Valid:
		out.Status = api.LicenseWarning
	default:
		out.Status = api.LicenseValid
	}
	if !st.Master {
		out.GraceLeft = st.Left.Round(time.Second).String()
		c := st.Contact.UTC()
		out.LastContact = &c
	}
	return out
}

func info(e grace.Entry) api.LicenseInfo {
	i := api.LicenseInfo{ID: e.ID, Customer: e.Customer, Product: e.Product, Features: e.Features,
		Seats: e.Seats, Issued: e.Issued, Expires: e.Expires, Valid: e.Err == nil}
	if e.Err != nil {
		i.Reason = e.Err.Error()
	}
	return i
}

// notMaster is the standby's refusal of an add (L2): it names the master,
// or says that the master is not known yet.
func (s *Service) notMaster() *reply.Error {
	master := s.masterNode()
	if master == "" {
		return &reply.Error{Code: reply.CodeNotMaster, Message: fmt.Sprintf("licenses are entered only on the master, "+
			"which this standby %s does not know yet (no heartbeat from it so far, and hosts does not name it)", s.cfg.Node)}
	}
	return &reply.Error{Code: reply.CodeNotMaster, Node: master,
		Message: fmt.Sprintf("licenses are entered only on the master %s; this is the standby %s", master, s.cfg.Node)}
}

package notifier

// The state bucket's consumers (SPEC §9: sessions get ephemeral consumers
// only, limited, delivering to their own inbox).
//
// Bounded by configuration, enforced by nats-server:
//   - a session's NATS user may create no consumer at all (it reads the
//     last value by direct get and follows notifications): nats-server 2.15
//     makes durables through every named create form, does not check a
//     push consumer's deliver subject against its creator's permissions
//     (nats-io/nats-server#8274), and neither counts against max_consumers
//     nor lists a consumer created with "direct" or "sourcing" set, so a
//     permission is the only bound that holds (pkg/natsnode/auth.go);
//   - the stream holds at most notifier.state_consumers consumers
//     (max_consumers), every other client's watches together (printq,
//     operators' tandem status --watch);
//   - no consumer on it may stay inactive for longer than
//     StateConsumerInactive (the stream's consumer_limits), so a watch
//     whose client went away frees its place, whatever it asked for.
//
// After the fact, for the keys that may create consumers: the janitor
// removes every consumer on the stream that is durable or pushes anywhere
// but an inbox (_INBOX…), every JanitorInterval, and reports each as
// refused input. Watches (ordered, ephemeral, pull or inbox push) stay.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// StateConsumerInactive is the longest a consumer of the state bucket may
// stay inactive before the server removes it: the inactivity threshold of
// nats.go's ordered consumers (KV watches), so that their watches work.
const StateConsumerInactive = 5 * time.Minute

// boundStateConsumers sets the state bucket's stream limits on consumers:
// notifier.state_consumers of them at most, none inactive for longer than
// StateConsumerInactive. Making or updating the bucket resets them, so the
// notifier sets them right after, at every start.
func (s *Service) boundStateConsumers(ctx context.Context) error {
	limit := s.cfg.Notifier.StateConsumers
	if limit <= 0 { // a Config not made by config.Default
		limit = config.DefaultStateConsumers
	}
	st, err := s.o.JS.Stream(ctx, "KV_"+subject.StateBucket)
	if err != nil {
		return err
	}
	c := st.CachedInfo().Config
	if c.MaxConsumers == limit && c.ConsumerLimits.InactiveThreshold == StateConsumerInactive {
		return nil
	}
	c.MaxConsumers = limit
	c.ConsumerLimits.InactiveThreshold = StateConsumerInactive
	if _, err := s.o.JS.UpdateStream(ctx, c); err != nil {
		return fmt.Errorf("limit its consumers to %d: %w", limit, err)
	}
	return nil
}

// DefaultJanitorInterval is how often the state bucket's consumers are
// checked when Options.JanitorInterval is 0: the server bounds their number
// and inactivity itself, the janitor only removes the odd durable, and each
// check costs an idle node two JetStream API requests (issue 19).
const DefaultJanitorInterval = 30 * time.Second

// janitor checks the state bucket's consumers until ctx ends.
func (s *Service) janitor(ctx context.Context) {
	every := s.o.JanitorInterval
	if every <= 0 {
		every = DefaultJanitorInterval
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.sweep(ctx)
	}
}

// sweep removes the state bucket's consumers no session may keep.
func (s *Service) sweep(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stream := "KV_" + subject.StateBucket
	st, err := s.o.JS.Stream(cctx, stream)
	if err != nil {
		return
	}
	infos := st.ListConsumers(cctx)
	var bad []*jetstream.ConsumerInfo
	for ci := range infos.Info() {
		if why := unwanted(ci.Config); why != "" {
			bad = append(bad, ci)
		}
	}
	for _, ci := range bad {
		why := unwanted(ci.Config)
		if err := st.DeleteConsumer(cctx, ci.Name); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			s.log.Warn().Err(err).Str("consumer", ci.Name).Msg("cannot remove a consumer of the state bucket")
			continue
		}
		s.reject("state.consumer", stream+"."+ci.Name, errors.New("consumer "+ci.Name+" on the state bucket removed: "+why))
	}
}

// unwanted says why a consumer of the state bucket may not stay, "" when it
// may (an ephemeral watch delivering to an inbox, or pulled).
func unwanted(c jetstream.ConsumerConfig) string {
	switch {
	case c.Durable != "":
		return "durable (sessions may create ephemeral consumers only)"
	case c.DeliverSubject != "" && !strings.HasPrefix(c.DeliverSubject, "_INBOX"):
		return "delivers to " + c.DeliverSubject + ", not to an inbox"
	}
	return ""
}

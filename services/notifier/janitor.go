package notifier

// The state bucket's janitor (SPEC §9: sessions get ephemeral consumers
// only, delivering to their own inbox). A session's NATS user may create
// consumers on the state bucket's stream, filtered on its pair's key, and
// subject permissions cannot tell a durable consumer from an ephemeral one
// nor check a push consumer's deliver subject. So the notifier, which owns
// the bucket, removes every consumer on it that is durable or pushes
// anywhere but an inbox (_INBOX…), every JanitorInterval, and reports each
// as refused input. Watches (ordered, ephemeral, pull or inbox push) stay.

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// DefaultJanitorInterval is how often the state bucket's consumers are
// checked when Options.JanitorInterval is 0.
const DefaultJanitorInterval = 10 * time.Second

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

package bus

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Limits bound what a core NATS subscription holds that its handler has not
// taken yet, so that a flood cannot grow a service's memory without bound.
type Limits struct {
	Msgs, Bytes int
}

// Subscriptions are the core NATS subscriptions a service holds.
type Subscriptions []*nats.Subscription

// SubscribeAll subscribes every handler to its subject with limits l and
// flushes, so that the server knows of them on return. If one fails, none
// stays subscribed.
func SubscribeAll(nc *nats.Conn, handlers map[string]nats.MsgHandler, l Limits) (Subscriptions, error) {
	var subs Subscriptions
	for subj, h := range handlers {
		sub, err := nc.Subscribe(subj, h)
		if err == nil {
			err = sub.SetPendingLimits(l.Msgs, l.Bytes)
			subs = append(subs, sub)
		}
		if err != nil {
			subs.Unsubscribe()
			return nil, fmt.Errorf("subscribe %s: %w", subj, err)
		}
	}
	if err := nc.Flush(); err != nil {
		subs.Unsubscribe()
		return nil, fmt.Errorf("flush subscriptions: %w", err)
	}
	return subs, nil
}

// Unsubscribe ends every subscription.
func (s Subscriptions) Unsubscribe() {
	for _, sub := range s {
		_ = sub.Unsubscribe()
	}
}

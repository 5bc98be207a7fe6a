package natsnode

// Guarding the fleet stream (SPEC §7 A3, §11): as a node guards its audit
// streams, the hub checks that tandem_fleet_events is as it must be —
// deletes and purges refused, the configured retention, its subjects — and
// restores it when someone with the hub's rights changed or deleted it,
// reporting the change as critical: in the log, and as a
// tandem.audit.changed event of the hub server, in the fleet stream itself.

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/event"
)

// HubEventsPair is the pair name under which a hub server's own events (its
// node name is the server's name) are stored in the fleet stream.
const HubEventsPair = "hub"

// DefaultFleetGuardEvery is how often the hub checks the fleet stream.
const DefaultFleetGuardEvery = 5 * time.Second

// GuardFleet checks the fleet stream every every until ctx ends. Only the
// cluster's JetStream meta leader acts, so one change is restored and
// reported once, not by every hub server.
func (h *Hub) GuardFleet(ctx context.Context, every time.Duration) error {
	js, closeConn, err := h.jetStream("tandem hub guard " + h.opts.Name)
	if err != nil {
		return err
	}
	defer closeConn()
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tk.C:
		}
		if h.ns.JetStreamIsLeader() {
			h.guardOnce(ctx, js)
		}
	}
}

// guardOnce compares the fleet stream with its configuration and restores
// and reports any difference.
func (h *Hub) guardOnce(ctx context.Context, js jetstream.JetStream) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	drift, err := audit.StreamDrift(ctx, js, h.opts.FleetStreamConfig())
	if err != nil {
		h.opts.Logger.Debug().Err(err).Msg("fleet stream not checked")
		return
	}
	if len(drift) == 0 {
		return
	}
	rerr := h.ensureOnce(ctx, js)
	h.opts.Logger.Error().Strs("changes", drift).AnErr("restore_error", rerr).
		Msg("the fleet stream was changed behind the hub's back (SPEC §7 A3); its configuration is restored, messages lost to the change are gone")
	e, err := event.New(HubEventsPair, h.opts.Name, "hub", event.AuditChanged, 0, time.Now(),
		event.AuditChange{Severity: "critical", Changes: drift, Restored: rerr == nil})
	if err == nil {
		err = publishEvent(ctx, js, e)
	}
	if err != nil {
		h.opts.Logger.Error().Err(err).Msg("the fleet stream's change is not stored as an event")
	}
}

func publishEvent(ctx context.Context, js jetstream.JetStream, e event.Envelope) error {
	data, err := e.Encode()
	if err != nil {
		return err
	}
	m := nats.NewMsg(e.Subject())
	m.Header.Set(jetstream.MsgIDHeader, e.ID)
	m.Data = data
	_, err = js.PublishMsg(ctx, m)
	return err
}

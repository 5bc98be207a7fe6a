// Package uplink carries a node's part of its pair up to the fleet hub
// (SPEC §11): its events, the pair's current status, its notifications and
// their last value; and down from the hub: its pair's admin requests (with
// every answer) and session acknowledgements.
//
// The uplink talks to the hub through the node's own NATS server, in the
// separate account natsnode.HubAccount whose leaf remote dials the hub; the
// pair's traffic stays in account TANDEM. Nothing the pair needs waits on the
// hub: the uplink only reads the node's stream and subjects and writes to the
// hub, and a hub that is down, cut off or slow costs the pair nothing but the
// uplink's own retries.
//
// What goes up, and who sends it:
//   - events: each node forwards its own event stream and its mirror of the
//     peer's, each from a durable consumer (Consumer) that starts at the
//     stream's first event (the mirror's: MirrorLookBack back), each event
//     published into the hub's fleet stream with its id as Nats-Msg-Id and
//     acknowledged locally only once the hub stored it; so events made
//     before the uplink connected, or
//     during an outage, reach the hub, an event of a node that died before
//     forwarding it comes through its peer, and what both nodes forward is
//     stored once (within the fleet stream's duplicate window).
//   - status: the active node (or, with no active node, the master, or a
//     node whose peer is unreachable) writes the pair's `tandem status
//     --json` object as key <pair> of the hub's fleet bucket on every event
//     of the pair and at least every Options.Every; a failed write is
//     retried every second.
//   - notifications: the notifier of the node that became active publishes
//     them; that node's uplink forwards each one and writes it as the last
//     value (key <pair> of the hub's state bucket), for sessions connected to
//     the hub (N5).
//
// What comes down goes through a queue group of the pair's two uplinks, so
// the hub hands each message to one node, which passes it into the pair:
// admin requests (the monitors answer or refuse them by their own rules,
// F8's master-only included) and acknowledgements.
//
// # Concurrency
//
// Run starts goroutines for the event forwarders (one per stream) and the
// status writer, and subscriptions whose callbacks run on nats.go's
// goroutines; an activation of this node starts one more, its quick write.
// They share only the status writer's trigger channel (size 1), and under
// mu the last notification, the last status read and the epoch of the last
// quick write.
package uplink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/clock"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Consumer is the durable consumer on a node's own event stream, and on its
// mirror of the peer's, that feeds the hub.
const Consumer = "tandem_uplink"

// MirrorLookBack is how far back the consumer on the mirror of the peer's
// events starts when it is made (the node's first start with hub.url): the
// fleet stream's duplicate window (natsnode.FleetDuplicateWindow). The
// peer forwards its own history itself; what it made in the last hour and
// could not forward comes through this node, deduplicated; a mirror's
// whole history would be stored twice.
const MirrorLookBack = time.Hour

// Defaults.
const (
	DefaultEvery  = 10 * time.Second
	retryEvery    = time.Second
	hubTimeout    = 2 * time.Second
	relayWindow   = 10 * time.Second // how long answers to a relayed request are passed on
	pullBatch     = 64               // events pulled ahead, and pending acknowledgement
	pullHeartbeat = 2 * time.Second
	ackWait       = 30 * time.Second
)

// StatusFunc asks the pair for its status, as `tandem status` does.
type StatusFunc func(ctx context.Context) (api.PairStatus, error)

// Options are what an uplink needs.
type Options struct {
	Pair, Node string
	Local      *nats.Conn          // the node's own account
	LocalJS    jetstream.JetStream // the node's own JetStream domain
	Hub        *nats.Conn          // account HUB (natsnode.Server.ConnectHub)
	Peer       func() string       // the peer's name as far as known ("": not yet); nil: own events only
	Status     StatusFunc          // nil: no status is written
	Every      time.Duration       // 0: DefaultEvery
	Log        zerolog.Logger
}

// Uplink is a running uplink.
type Uplink struct {
	o     Options
	hubJS jetstream.JetStream
	kick  chan struct{} // size 1: write the status now

	mu       sync.Mutex      // guards the fields below
	lastNote []byte          // the last notification forwarded
	noteOK   bool            // lastNote is stored as the hub's last value
	last     *api.PairStatus // the last status read, nil before the first
	floor    uint64          // the epoch of this node's last activation written at once
}

// Run runs the uplink until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Every <= 0 {
		o.Every = DefaultEvery
	}
	hubJS, err := jetstream.New(o.Hub)
	if err != nil {
		return err
	}
	u := &Uplink{o: o, hubJS: hubJS, kick: make(chan struct{}, 1)}
	subs, err := u.subscribe()
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()
	var wg sync.WaitGroup
	wg.Go(func() { u.forwardEvents(ctx) })
	if o.Status != nil {
		wg.Go(func() { u.writeStatus(ctx) })
	}
	wg.Wait()
	return nil
}

// subscribe sets up what is event-driven: a status write on every event of
// the pair, notifications up, admin requests and acknowledgements down.
func (u *Uplink) subscribe() ([]*nats.Subscription, error) {
	p := u.o.Pair
	var subs []*nats.Subscription
	add := func(s *nats.Subscription, err error) error {
		if err == nil {
			subs = append(subs, s)
		}
		return err
	}
	q := subject.UplinkQueue(p)
	err := errors.Join(
		add(u.o.Local.Subscribe(subject.Events(p), u.event)),
		add(u.o.Local.Subscribe(subject.Notify(p), u.notification)),
		add(u.o.Hub.QueueSubscribe(subject.AdminAll(p, "*"), q, u.relay)),
		add(u.o.Hub.QueueSubscribe(subject.License(p, "*", "*"), q, u.relay)),
		add(u.o.Hub.QueueSubscribe(subject.Acks(p), q, u.down)),
		add(u.o.Hub.QueueSubscribe(subject.AckBatches(p), q, u.down)),
	)
	if err != nil {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
		return nil, fmt.Errorf("uplink subscriptions: %w", err)
	}
	return subs, nil
}

// event triggers a status write; this node's activation also a quick one,
// at once, beside a status write that may be under way.
func (u *Uplink) event(m *nats.Msg) {
	if u.o.Status != nil && m.Subject == subject.Event(u.o.Pair, u.o.Node, event.NodeActivated) {
		if e, err := event.Decode(m.Data); err == nil {
			go u.writeActivated(e.Epoch)
		}
	}
	u.trigger()
}

func (u *Uplink) trigger() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// forwardEvents feeds the node's own event stream to the hub and, once the
// peer's name is known, its mirror of the peer's: an event the peer made
// but could not forward (it died, or its uplink was cut) reaches the hub
// through this node; one forwarded by both is stored once (its id).
func (u *Uplink) forwardEvents(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { u.forward(ctx, subject.EventStream(u.o.Pair, u.o.Node), time.Time{}) })
	if u.o.Peer != nil {
		wg.Go(func() {
			if peer := u.waitPeer(ctx); peer != "" {
				u.forward(ctx, subject.EventStream(u.o.Pair, peer), time.Now().Add(-MirrorLookBack))
			}
		})
	}
	wg.Wait()
}

// waitPeer polls Options.Peer until it names the peer; "" when ctx ended.
func (u *Uplink) waitPeer(ctx context.Context) string {
	for {
		if p := u.o.Peer(); p != "" && p != u.o.Node {
			return p
		}
		if !clock.Sleep(ctx, 200*time.Millisecond) {
			return ""
		}
	}
}

// forward feeds stream's events to the hub's fleet stream, in order, each
// acknowledged locally once the hub stored it, from the durable Consumer:
// what the stream held before the uplink connected goes up first. The
// messages come through a continuous pull (Consumer.Messages), whose
// subscription lives as long as the pull: a one-shot fetch that gave up
// before the server's delivery arrived (seen at load 30) left those events
// pending on the node for the whole AckWait, missing from the hub.
func (u *Uplink) forward(ctx context.Context, stream string, from time.Time) {
	log := u.o.Log.With().Str("stream", stream).Logger()
	warned := false
	for ctx.Err() == nil {
		cons, err := u.consumer(ctx, stream, from)
		if err == nil {
			var it jetstream.MessagesContext
			if it, err = cons.Messages(jetstream.PullMaxMessages(pullBatch), jetstream.PullHeartbeat(pullHeartbeat)); err == nil {
				warned = false
				u.drain(ctx, it, log)
				continue
			}
		}
		if !warned && ctx.Err() == nil {
			log.Warn().Err(err).Msg("uplink: cannot read the event stream yet; retrying")
			warned = true
		}
		clock.Sleep(ctx, retryEvery)
	}
}

// drain forwards it's messages until ctx ends or the pull stops (the
// consumer was deleted, say); it stops it.
func (u *Uplink) drain(ctx context.Context, it jetstream.MessagesContext, log zerolog.Logger) {
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	for {
		m, err := it.Next()
		switch {
		case errors.Is(err, jetstream.ErrMsgIteratorClosed):
			return
		case err != nil:
			log.Debug().Err(err).Msg("uplink: pull from the event stream")
			if !clock.Sleep(ctx, retryEvery) {
				return
			}
		case !u.forwardOne(ctx, m):
			return
		}
	}
}

// consumer is the durable Consumer on stream, made if missing: from the
// stream's first event, or with from set from that time on.
func (u *Uplink) consumer(ctx context.Context, stream string, from time.Time) (jetstream.Consumer, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	c, err := u.o.LocalJS.Consumer(cctx, stream, Consumer)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return c, err
	}
	cfg := jetstream.ConsumerConfig{
		Durable:       Consumer,
		Description:   "feeds the fleet hub with these events",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxAckPending: pullBatch,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if !from.IsZero() {
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &from
	}
	return u.o.LocalJS.CreateConsumer(cctx, stream, cfg)
}

// forwardOne stores m on the hub, retrying until the hub took it or ctx
// ends, then acknowledges it locally; false when ctx ended.
func (u *Uplink) forwardOne(ctx context.Context, m jetstream.Msg) bool {
	id := m.Headers().Get(jetstream.MsgIDHeader)
	out := &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: nats.Header{}}
	if id != "" {
		out.Header.Set(jetstream.MsgIDHeader, id)
	}
	failing := false
	for {
		pctx, cancel := context.WithTimeout(ctx, hubTimeout)
		_, err := u.hubJS.PublishMsg(pctx, out)
		cancel()
		if err == nil {
			if failing {
				u.o.Log.Info().Msg("uplink: the hub takes events again")
			}
			_ = m.Ack()
			return true
		}
		if !failing {
			u.o.Log.Warn().Err(err).Str("subject", out.Subject).Msg("uplink: the hub does not take events; retrying")
			failing = true
		}
		_ = m.InProgress() // not redelivered while the hub is away
		if !clock.Sleep(ctx, retryEvery) {
			return false
		}
	}
}

// writeStatus writes the pair's status to the hub on every trigger and every
// Every; after a failed write, every retryEvery until one succeeds.
func (u *Uplink) writeStatus(ctx context.Context) {
	tk := time.NewTicker(u.o.Every)
	defer tk.Stop()
	retry := time.NewTimer(0)
	defer retry.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-u.kick:
		case <-tk.C:
		case <-retry.C:
		}
		err := u.writeOnce(ctx)
		switch {
		case err != nil && !failing:
			u.o.Log.Warn().Err(err).Msg("uplink: the pair's status is not written to the hub; retrying every second")
		case err == nil && failing:
			u.o.Log.Info().Msg("uplink: the pair's status is written to the hub again")
		}
		if failing = err != nil; failing {
			retry.Reset(retryEvery)
		}
	}
}

func (u *Uplink) writeOnce(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ps, err := u.o.Status(sctx)
	if err != nil {
		return err
	}
	writer := Writes(ps, u.o.Node)
	u.mu.Lock()
	note, noteOK := u.lastNote, u.noteOK
	u.last = &ps
	stale := ps.Epoch < u.floor // read before an activation written since
	u.mu.Unlock()
	if note != nil && !noteOK {
		u.storeNote(note)
	}
	if !writer || stale {
		return nil // stale: the activation's own trigger writes it again
	}
	data, err := json.Marshal(ps)
	if err != nil {
		return err
	}
	return u.request(subject.ViaHub(subject.FleetKey(u.o.Pair)), data)
}

// writeActivated writes at once the last status read with this node active
// in epoch, before asking the pair: at an activation that question waits
// for the services' answers (up to the status query's bound, at load
// hundreds of ms) while the fleet view still shows the old active. The
// full status follows right after.
func (u *Uplink) writeActivated(epoch uint64) {
	u.mu.Lock()
	last := u.last
	if last == nil || epoch <= u.floor {
		u.mu.Unlock()
		return
	}
	u.floor = epoch
	u.mu.Unlock()
	data, err := json.Marshal(Activated(*last, u.o.Node, epoch))
	if err == nil {
		err = u.request(subject.ViaHub(subject.FleetKey(u.o.Pair)), data)
	}
	if err != nil {
		u.o.Log.Debug().Err(err).Msg("uplink: the activation is not written to the hub at once")
	}
}

// Activated is ps with node active in epoch (and its peer, if shown active,
// passive: an activation follows the peer's loss or hand-over).
func Activated(ps api.PairStatus, node string, epoch uint64) api.PairStatus {
	ps.Nodes = slices.Clone(ps.Nodes)
	if epoch > ps.Epoch {
		ps.Epoch = epoch
	}
	ps.Active = &node
	for i := range ps.Nodes {
		n := &ps.Nodes[i]
		switch {
		case n.Node == node:
			n.State, n.Epoch, n.Reachable = "active", epoch, true
		case n.State == "active":
			n.State = "passive"
		}
	}
	return ps
}

// Writes reports whether node writes the pair's status ps to the hub: it is
// the active node; or no node is active and it is the master or its peer is
// unreachable; or the active node is unreachable from it.
func Writes(ps api.PairStatus, node string) bool {
	if ps.Active != nil {
		if *ps.Active == node {
			return true
		}
		for _, n := range ps.Nodes {
			if n.Node == *ps.Active {
				return !n.Reachable
			}
		}
		return true
	}
	for _, n := range ps.Nodes {
		if n.Node == node && n.Role == "master" {
			return true
		}
		if n.Node != node && !n.Reachable {
			return true
		}
	}
	return false
}

// request publishes data on subj to the hub's JetStream and checks its
// answer.
func (u *Uplink) request(subj string, data []byte) error {
	resp, err := u.o.Hub.Request(subj, data, hubTimeout)
	if err != nil {
		return err
	}
	var ack struct {
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return fmt.Errorf("hub answer: %w", err)
	}
	if ack.Error != nil {
		return ack.Error
	}
	return nil
}

// notification forwards a notification of this node's notifier (the node it
// names active) to the hub, and stores it as the pair's last value there.
func (u *Uplink) notification(m *nats.Msg) {
	n, err := api.DecodeNotification(m.Data)
	if err != nil || n.Pair != u.o.Pair || n.Active != u.o.Node {
		return
	}
	_ = u.o.Hub.Publish(subject.Notify(u.o.Pair), m.Data)
	u.mu.Lock()
	same := string(u.lastNote) == string(m.Data) && u.noteOK
	u.lastNote = m.Data
	u.mu.Unlock()
	if !same {
		u.storeNote(m.Data)
	}
}

// storeNote writes the last notification into the hub's state bucket.
func (u *Uplink) storeNote(data []byte) {
	err := u.request(subject.ViaHub(subject.StateKey(u.o.Pair)), data)
	u.mu.Lock()
	if string(u.lastNote) == string(data) {
		u.noteOK = err == nil
	}
	u.mu.Unlock()
	if err != nil {
		u.trigger() // the status writer retries it
	}
}

// down passes an acknowledgement from a session on the hub into the pair.
func (u *Uplink) down(m *nats.Msg) {
	_ = u.o.Local.Publish(m.Subject, m.Data)
}

// relay passes an admin request from the hub into the pair and every answer
// (both nodes answer a pair-wide request) back, for relayWindow.
func (u *Uplink) relay(m *nats.Msg) {
	if m.Reply == "" {
		_ = u.o.Local.Publish(m.Subject, m.Data)
		return
	}
	inbox := u.o.Local.NewRespInbox()
	back := m.Reply
	sub, err := u.o.Local.Subscribe(inbox, func(r *nats.Msg) {
		_ = u.o.Hub.PublishMsg(&nats.Msg{Subject: back, Data: r.Data, Header: r.Header})
	})
	if err != nil {
		return
	}
	_ = sub.AutoUnsubscribe(2)
	time.AfterFunc(relayWindow, func() { _ = sub.Unsubscribe() })
	out := &nats.Msg{Subject: m.Subject, Reply: inbox, Data: m.Data, Header: m.Header}
	if err := u.o.Local.PublishMsg(out); err != nil {
		_ = sub.Unsubscribe()
	}
}

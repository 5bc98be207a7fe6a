package natsnode

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"

	"github.com/tandem-ha/tandem/pkg/subject"
)

// startHubs starts a routed cluster of n hub servers and makes the fleet's
// streams.
func startHubs(t *testing.T, n int, edit func(*HubOptions)) []*Hub {
	t.Helper()
	hubs, err := StartHubCluster(n, t.TempDir(), testLogger(t), edit)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hubs {
		t.Cleanup(h.Shutdown)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, h := range hubs {
		if err := h.EnsureFleet(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return hubs
}

func leafURLs(hubs []*Hub) []string {
	var out []string
	for _, h := range hubs {
		out = append(out, h.LeafURL())
	}
	return out
}

// uplinkPublish publishes an event of pair into the fleet stream through
// node's uplink and returns the stream's answer.
func uplinkPublish(t *testing.T, nc *nats.Conn, pair, id string) (*jetstream.PubAck, error) {
	t.Helper()
	m := nats.NewMsg(subject.Event(pair, "a", "tandem.node.started"))
	m.Header.Set(jetstream.MsgIDHeader, id)
	m.Data = []byte(`{}`)
	resp, err := nc.RequestMsg(m, 2*time.Second)
	if err != nil {
		return nil, err
	}
	var ack struct {
		jetstream.PubAck
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return nil, err
	}
	if ack.Error != nil {
		return nil, ack.Error
	}
	return &ack.PubAck, nil
}

func TestHubClusterTakesUplinkEvents(t *testing.T) {
	hubs := startHubs(t, 3, nil)
	node := startNode(t, "a", func(o *Options) { o.HubURLs = leafURLs(hubs) })
	nc, err := node.ConnectHub("uplink", nats.CustomInboxPrefix(UplinkInboxPrefix("t")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var ack *jetstream.PubAck
	waitFor(t, 20*time.Second, "event stored on the hub", func() bool {
		ack, err = uplinkPublish(t, nc, "t", "ev-1")
		return err == nil
	})
	if ack.Stream != subject.FleetStream || ack.Domain != subject.HubDomain {
		t.Fatalf("stored in %s@%s, want %s@%s", ack.Stream, ack.Domain, subject.FleetStream, subject.HubDomain)
	}
	again, err := uplinkPublish(t, nc, "t", "ev-1")
	if err != nil || !again.Duplicate || again.Sequence != ack.Sequence {
		t.Fatalf("re-published event: %+v, %v; want a duplicate of seq %d", again, err, ack.Sequence)
	}
	// The node's own account does not reach the hub: only HUB is linked.
	own, err := node.Connect("own")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	if _, err := uplinkPublish(t, own, "t", "ev-2"); err == nil {
		t.Fatal("a publish in the node's own account reached the hub")
	}
	info := streamInfo(t, hubs[1], subject.FleetStream)
	if info.Config.Replicas != 3 || info.State.Msgs != 1 || !info.Config.DenyDelete || !info.Config.DenyPurge {
		t.Fatalf("fleet stream: replicas %d, %d messages, deny delete %v purge %v; want 3, 1, true, true",
			info.Config.Replicas, info.State.Msgs, info.Config.DenyDelete, info.Config.DenyPurge)
	}
}

func streamInfo(t *testing.T, h *Hub, name string) *jetstream.StreamInfo {
	t.Helper()
	nc, err := h.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestHubUplinkPublishesOnlyItsPair: with credentials, pair t's uplink can
// store its own events and status, and nothing of pair u's.
func TestHubUplinkPublishesOnlyItsPair(t *testing.T) {
	dir := t.TempDir()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := kp.PublicKey()
	seed, _ := kp.Seed()
	seedFile := filepath.Join(dir, "uplink.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	hubs := startHubs(t, 1, func(o *HubOptions) { o.Uplinks = map[string]string{"t": pub} })
	node := startNode(t, "a", func(o *Options) { o.HubURLs, o.HubSeedFile = leafURLs(hubs), seedFile })
	nc, err := node.ConnectHub("uplink", nats.CustomInboxPrefix(UplinkInboxPrefix("t")))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitFor(t, 20*time.Second, "own event stored", func() bool {
		_, err := uplinkPublish(t, nc, "t", "ok-1")
		return err == nil
	})
	if _, err := uplinkPublish(t, nc, "u", "bad-1"); err == nil {
		t.Fatal("pair t's uplink stored an event of pair u")
	}
	resp, err := nc.Request(subject.ViaHub(subject.FleetKey("u")), []byte(`{"pair":"u"}`), 500*time.Millisecond)
	if err == nil {
		t.Fatalf("pair t's uplink wrote pair u's status: %s", resp.Data)
	}
	if _, err := nc.Request(subject.ViaHub(subject.FleetKey("t")), []byte(`{"pair":"t"}`), 2*time.Second); err != nil {
		t.Fatalf("own status: %v", err)
	}
	// A TCP client without credentials is refused.
	if c, err := nats.Connect(hubs[0].ClientURL()); err == nil {
		c.Close()
		t.Fatal("an anonymous client connected to a secured hub")
	} else if !errors.Is(err, nats.ErrAuthorization) {
		t.Logf("anonymous client: %v", err)
	}
	if info := streamInfo(t, hubs[0], subject.FleetStream); info.State.Msgs != 1 {
		t.Fatalf("fleet stream holds %d messages, want 1", info.State.Msgs)
	}
}

// TestHubSessionKeysPerPair: the sessions of pair t, signed in to the hub
// with t's key (hub.sessions), read t's last value and notifications and
// acknowledge for t, and can do none of it for pair u.
func TestHubSessionKeysPerPair(t *testing.T) {
	dir := t.TempDir()
	keys := map[string]nkeys.KeyPair{}
	pubs := map[string]string{}
	for _, pair := range []string{"t", "u"} {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		keys[pair] = kp
		pubs[pair], _ = kp.PublicKey()
	}
	hubs := startHubs(t, 1, func(o *HubOptions) { o.Sessions = pubs })
	own, err := hubs[0].Connect("fleet")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	js, _ := jetstream.New(own)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, subject.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range []string{"t", "u"} {
		if _, err := kv.Put(ctx, pair, []byte(`{"pair":"`+pair+`"}`)); err != nil {
			t.Fatal(err)
		}
	}
	seed, _ := keys["t"].Seed()
	seedFile := filepath.Join(dir, "t-session.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	creds, err := CredsOption(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	denied := make(chan error, 8)
	sess, err := nats.Connect(hubs[0].ClientURL(), creds, nats.CustomInboxPrefix(InboxPrefix("session")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	sjs, _ := jetstream.New(sess)
	skv, err := sjs.KeyValue(ctx, subject.StateBucket)
	if err != nil {
		t.Fatalf("t's session: state bucket: %v", err)
	}
	if e, err := skv.Get(ctx, "t"); err != nil || string(e.Value()) != `{"pair":"t"}` {
		t.Fatalf("t's session: last value of t: %v", err)
	}
	if e, err := skv.Get(ctx, "u"); err == nil {
		t.Fatalf("t's session read u's last value %s", e.Value())
	}
	notes := make(chan *nats.Msg, 4)
	if _, err := sess.ChanSubscribe(subject.Notify("t"), notes); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.ChanSubscribe(subject.Notify("u"), notes); err != nil {
		t.Fatal(err)
	}
	acks := make(chan *nats.Msg, 4)
	if _, err := own.ChanSubscribe(subject.Root+".*.ack.*", acks); err != nil {
		t.Fatal(err)
	}
	_ = own.Flush()
	_ = sess.Flush() // the server has both subscriptions
	waitFor(t, 10*time.Second, "the hub refuses t's session u's notifications", func() bool {
		select {
		case err := <-denied:
			return errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), subject.Notify("u"))
		default:
			return false
		}
	})
	for _, pair := range []string{"u", "t"} {
		if err := own.Publish(subject.Notify(pair), []byte(pair)); err != nil {
			t.Fatal(err)
		}
		if err := sess.Publish(subject.Ack(pair, "s1"), []byte(pair)); err != nil {
			t.Fatal(err)
		}
	}
	for what, ch := range map[string]chan *nats.Msg{"notification": notes, "acknowledgement": acks} {
		select {
		case m := <-ch:
			if string(m.Data) != "t" {
				t.Errorf("%s of pair %s crossed with t's session key", what, m.Data)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("t's %s did not come", what)
		}
		select {
		case m := <-ch:
			t.Errorf("a second %s came: %s on %s", what, m.Data, m.Subject)
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// TestHubGuardsFleetStream: the fleet stream's retention shrunk, then the
// stream deleted, behind the hub's back: the guard restores it each time
// and stores a critical tandem.audit.changed event of the hub server in it.
func TestHubGuardsFleetStream(t *testing.T) {
	hubs := startHubs(t, 1, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- hubs[0].GuardFleet(ctx, 100*time.Millisecond) }()
	defer func() { cancel(); <-done }()
	nc, err := hubs[0].Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	want := hubs[0].opts.FleetStreamConfig()
	changes := map[string]func(context.Context) error{
		"max_age shrunk": func(ctx context.Context) error {
			c := want
			c.MaxAge = time.Minute
			c.Duplicates = time.Minute
			_, err := js.UpdateStream(ctx, c)
			return err
		},
		"deleted": func(ctx context.Context) error { return js.DeleteStream(ctx, subject.FleetStream) },
	}
	for _, what := range []string{"max_age shrunk", "deleted"} {
		cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := changes[what](cctx); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		ccancel()
		waitFor(t, 20*time.Second, what+": restored and reported", func() bool {
			cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
			defer ccancel()
			st, err := js.Stream(cctx, subject.FleetStream)
			if err != nil {
				return false
			}
			if c := st.CachedInfo().Config; c.MaxAge != want.MaxAge || !c.DenyDelete || !c.DenyPurge {
				return false
			}
			m, err := st.GetLastMsgForSubject(cctx, subject.Event(HubEventsPair, "hub1", "tandem.audit.changed"))
			return err == nil && strings.Contains(string(m.Data), `"critical"`) && strings.Contains(string(m.Data), strings.Fields(what)[0])
		})
	}
}

// TestHubRoutesAuthenticate: two hub servers sharing a cluster secret route
// to each other; a server with another secret, routed to them, is refused
// in both directions.
func TestHubRoutesAuthenticate(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef"
	hubs, err := StartHubCluster(2, t.TempDir(), testLogger(t), func(o *HubOptions) { o.ClusterSecret = secret })
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hubs {
		t.Cleanup(h.Shutdown)
	}
	waitFor(t, 20*time.Second, "the two hub servers routed", func() bool {
		return hubs[0].NATS().NumRoutes() > 0 && hubs[1].NATS().NumRoutes() > 0
	})
	rogue, err := StartHub(HubOptions{Name: "rogue", Listen: "127.0.0.1:-1", LeafListen: "127.0.0.1:-1", ClusterListen: "127.0.0.1:-1",
		Routes: []string{hubs[0].RouteURL(), hubs[1].RouteURL()}, ClusterSecret: "not-the-cluster-secret-at-all",
		StoreDir: filepath.Join(t.TempDir(), "rogue"), Retention: HubRetention{MaxAge: time.Hour}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rogue.Shutdown)
	// Nothing published in the cluster reaches the rogue server.
	in, err := rogue.Connect("rogue")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	got := make(chan *nats.Msg, 1)
	if _, err := in.ChanSubscribe("tandem.>", got); err != nil {
		t.Fatal(err)
	}
	out, err := hubs[0].Connect("pub")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	for range 30 {
		_ = out.Publish("tandem.p.notify", []byte("x"))
		select {
		case <-got:
			t.Fatal("a server with another cluster secret receives the cluster's messages")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

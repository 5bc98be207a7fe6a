package natsnode

import (
	"bufio"
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// securePair is a master a and a standby b with TLS (mutual on the leaf
// port) and nats.auth, configured through config.Config and FromConfig as a
// node is.
type securePair struct {
	a, b  *Server
	pki   testPKI
	creds string            // the directory of <role>.nk
	keys  map[string]string // role → public key
	cfg   config.Config     // a's configuration
}

// secureConfig is node's configuration with TLS and auth; the standby
// solicits peer signing in with leafSeed.
func secureConfig(t *testing.T, node string, pki testPKI, keys map[string]string, creds, peer, leafSeed string) config.Config {
	c := config.Default()
	c.Pair, c.Node, c.DataDir = "t", node, t.TempDir()
	c.NATS.Listen, c.NATS.LeafListen = "127.0.0.1:-1", "127.0.0.1:-1"
	c.NATS.Auth, c.NATS.CredsDir = keys, creds
	c.NATS.TLS = config.TLS{Cert: pki.Cert, Key: pki.Key, CA: pki.CA, Verify: true}
	if peer != "" {
		c.Role, c.NATS.Peer, c.NATS.LeafCreds = config.Standby, peer, leafSeed
	}
	return c
}

func startSecure(t *testing.T, c config.Config) *Server {
	t.Helper()
	s, err := Start(FromConfig(c, testLogger(t)))
	if err != nil {
		t.Fatalf("start %s: %v", c.Node, err)
	}
	t.Cleanup(s.Shutdown)
	return s
}

// startSecurePair starts a and b, b soliciting with the seed file leafSeed
// (relative to the credentials directory, "" for none).
func startSecurePair(t *testing.T, leafSeed string) securePair {
	t.Helper()
	p := securePair{pki: newPKI(t), creds: filepath.Join(t.TempDir(), "nkeys")}
	keys, err := WriteSeeds(p.creds, config.AuthRoles)
	if err != nil {
		t.Fatal(err)
	}
	p.keys = keys
	p.cfg = secureConfig(t, "a", p.pki, keys, p.creds, "", "")
	p.a = startSecure(t, p.cfg)
	seed := ""
	if leafSeed != "" {
		seed = filepath.Join(p.creds, leafSeed)
	}
	bc := secureConfig(t, "b", p.pki, keys, p.creds, p.a.LeafURL(), seed)
	bc.NATS.CredsDir = "" // only nats.leaf_creds: "" must mean no credentials
	p.b = startSecure(t, bc)
	return p
}

// connectAs connects to a as role over TLS, the way a service does.
func (p securePair) connectAs(t *testing.T, role string, extra ...nats.Option) (*nats.Conn, <-chan error) {
	t.Helper()
	opts, err := ClientOptions(p.cfg, role)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	opts = append(opts, nats.Name(role), nats.NoReconnect(), nats.Timeout(5*time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	nc, err := nats.Connect(p.a.ClientURL(), append(opts, extra...)...)
	if err != nil {
		t.Fatalf("connect as %s: %v", role, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func TestSecureLeafLink(t *testing.T) {
	t.Run("leaf seed", func(t *testing.T) {
		p := startSecurePair(t, SeedFileName(config.RoleLeaf))
		waitFor(t, 10*time.Second, "secure link up", func() bool { return p.a.Linked() && p.b.Linked() })
		lz, err := p.a.NATS().Leafz(nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(lz.Leafs) != 1 || lz.Leafs[0].Account != AppAccount {
			t.Fatalf("leafz %+v, want one leaf in %s", lz.Leafs, AppAccount)
		}
		roundTripAs(t, p)
	})
	for name, seed := range map[string]string{
		"no seed":           "",
		"another role seed": SeedFileName(config.RoleAdmin),
	} {
		t.Run(name, func(t *testing.T) {
			p := startSecurePair(t, seed)
			// The remote redials every 100–200 ms: a second is several refusals.
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) {
				if p.a.NATS().NumLeafNodes() != 0 || p.b.Linked() {
					t.Fatal("leaf link up without the leaf key")
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

// roundTripAs checks that a heartbeat of b's monitor reaches a's monitor
// across the authenticated link.
func roundTripAs(t *testing.T, p securePair) {
	opts, err := ClientOptions(p.cfg, config.RoleMonitor)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := nats.Connect(p.b.ClientURL(), append(opts, nats.NoReconnect())...)
	if err != nil {
		t.Fatalf("connect to b as monitor: %v", err)
	}
	defer mb.Close()
	ma, _ := p.connectAs(t, config.RoleMonitor)
	sub, err := ma.SubscribeSync(subject.Heartbeats("t"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ma.Flush(); err != nil {
		t.Fatal(err)
	}
	hb := subject.Heartbeat("t", "b")
	waitFor(t, 5*time.Second, "heartbeat of b at a", func() bool {
		if err := mb.Publish(hb, []byte("hb")); err != nil {
			t.Fatal(err)
		}
		m, err := sub.NextMsg(50 * time.Millisecond)
		return err == nil && m.Subject == hb
	})
}

func TestSecureRolesConnect(t *testing.T) {
	p := startSecurePair(t, SeedFileName(config.RoleLeaf))
	for _, role := range config.AuthRoles {
		if role == config.RoleLeaf {
			continue
		}
		t.Run(role, func(t *testing.T) {
			nc, _ := p.connectAs(t, role)
			if !nc.TLSRequired() {
				t.Error("connection without TLS")
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
		})
	}
	t.Run("leaf key as client", func(t *testing.T) {
		opt, err := CredsOption(filepath.Join(p.creds, SeedFileName(config.RoleLeaf)))
		if err != nil {
			t.Fatal(err)
		}
		if nc, err := nats.Connect(p.a.ClientURL(), opt, nats.RootCAs(p.pki.CA), nats.NoReconnect()); err == nil {
			nc.Close()
			t.Fatal("the leaf key connected as a client")
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		nc, err := nats.Connect(p.a.ClientURL(), nats.RootCAs(p.pki.CA), nats.NoReconnect())
		if err == nil {
			nc.Close()
			t.Fatal("connected without credentials")
		}
		if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("error %v, want an authorization violation", err)
		}
	})
	t.Run("unknown CA", func(t *testing.T) {
		opt, err := CredsOption(filepath.Join(p.creds, SeedFileName(config.RoleAdmin)))
		if err != nil {
			t.Fatal(err)
		}
		if nc, err := nats.Connect(p.a.ClientURL(), opt, nats.NoReconnect()); err == nil {
			nc.Close()
			t.Fatal("connected trusting only the system CAs")
		}
	})
	t.Run("plaintext", func(t *testing.T) { plaintextRefused(t, p.a) })
	t.Run("in process", func(t *testing.T) {
		nc, err := p.a.Connect("in-process") // the default identity still works in process
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	})
}

// plaintextRefused speaks the NATS protocol without TLS to s's client port
// and expects the server to insist on TLS.
func plaintextRefused(t *testing.T, s *Server) {
	addr := strings.TrimPrefix(s.ClientURL(), "nats://")
	conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
	r := bufio.NewReader(conn)
	info, err := r.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(info, `"tls_required":true`) {
		t.Errorf("INFO does not require TLS: %s", info)
	}
	if _, err := conn.Write([]byte("CONNECT {\"verbose\":false}\r\nPING\r\n")); err != nil {
		t.Fatal(err)
	}
	line, err := r.ReadString('\n')
	if err == nil && strings.HasPrefix(line, "PONG") {
		t.Fatalf("plaintext client accepted: %q", line)
	}
}

// permission is one publish or subscribe a role tries.
type permission struct {
	role, op, subj string
	allowed        bool
}

func TestSecurePermissions(t *testing.T) {
	p := startSecurePair(t, SeedFileName(config.RoleLeaf))
	pub := func(role, subj string, ok bool) permission { return permission{role, "pub", subj, ok} }
	sub := func(role, subj string, ok bool) permission { return permission{role, "sub", subj, ok} }
	ev := func(typ string) string { return subject.Event("t", "a", typ) }
	cases := []permission{
		// SPEC §9: a session reads notifications and publishes its acks,
		// nothing else.
		sub(config.RoleSession, subject.Notify("t"), true),
		pub(config.RoleSession, subject.Ack("t", "s1"), true),
		pub(config.RoleSession, subject.AckBatch("t", "c1"), true),
		pub(config.RoleSession, subject.Heartbeat("t", "a"), false),
		pub(config.RoleSession, subject.Control("t", "a"), false),
		pub(config.RoleSession, subject.Admin("t", "a", "switchover"), false),
		pub(config.RoleSession, subject.Admin("t", subject.PairScope, "status"), false),
		pub(config.RoleSession, ev(event.NodeActivated), false),
		pub(config.RoleSession, subject.Notify("t"), false),
		pub(config.RoleSession, subject.Ack("other", "s1"), false),
		pub(config.RoleSession, "$JS.API.STREAM.DELETE.KV_tandem_state", false),
		sub(config.RoleSession, subject.Heartbeats("t"), false),
		sub(config.RoleSession, subject.Events("t"), false),
		sub(config.RoleSession, subject.Acks("t"), false),
		sub(config.RoleSession, subject.Notify("other"), false),
		// Only the monitor publishes failover events.
		pub(config.RoleMonitor, ev(event.NodeActivated), true),
		pub(config.RoleMonitor, subject.Heartbeat("t", "a"), true),
		pub(config.RoleMonitor, subject.Heartbeat("t", "b"), false),
		pub(config.RoleNotifier, ev(event.NodeActivated), false),
		pub(config.RoleNotifier, ev(event.FailoverNotified), true),
		pub(config.RoleNotifier, subject.Notify("t"), true),
		pub(config.RoleReplicator, ev(event.NodeActivated), false),
		pub(config.RoleReplicator, ev(event.ReplConflict), true),
		pub(config.RoleReplicator, subject.Event("t", "b", event.ReplConflict), false),
		pub(config.RoleLicense, ev(event.SwitchoverCompleted), false),
		pub(config.RoleLicense, ev(event.LicenseAdded), true),
		pub(config.RoleLicense, ev(event.InputRejected), true),
		// Only admins send commands.
		pub(config.RoleAdmin, subject.Admin("t", "a", "switchover"), true),
		pub(config.RoleAdmin, subject.License("t", "a", "add"), true),
		pub(config.RoleAdmin, subject.Heartbeat("t", "a"), false),
		pub(config.RoleAdmin, "$JS.API.STREAM.PURGE.tandem_events_t_a", false),
		pub(config.RoleMonitor, subject.Admin("t", "a", "switchover"), false),
		pub(config.RolePrintq, subject.Ack("t", "s1"), false),
		sub(config.RolePrintq, subject.Notify("t"), true),
	}
	conns := map[string]*nats.Conn{}
	errs := map[string]<-chan error{}
	for _, c := range cases {
		if conns[c.role] == nil {
			conns[c.role], errs[c.role] = p.connectAs(t, c.role)
		}
	}
	for _, c := range cases {
		t.Run(c.role+" "+c.op+" "+c.subj, func(t *testing.T) {
			checkPermission(t, conns[c.role], errs[c.role], c)
		})
	}
}

// checkPermission tries c and expects the server's permission violation
// (reported asynchronously, before the PONG of the following flush) exactly
// when it is not allowed.
func checkPermission(t *testing.T, nc *nats.Conn, errs <-chan error, c permission) {
	t.Helper()
	var err error
	var s *nats.Subscription
	if c.op == "pub" {
		err = nc.Publish(c.subj, []byte("x"))
	} else {
		s, err = nc.SubscribeSync(c.subj)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.FlushTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	if s != nil {
		defer func() { _ = s.Unsubscribe() }()
	}
	var got error
	// The -ERR came before the PONG; its handler runs on nats.go's
	// callback goroutine, so allow it a moment.
	timer := time.NewTimer(200 * time.Millisecond)
	defer timer.Stop()
	select {
	case got = <-errs:
	case <-timer.C:
	}
	switch {
	case c.allowed && got != nil:
		t.Errorf("allowed, but: %v", got)
	case !c.allowed && got == nil:
		t.Error("not denied")
	case !c.allowed && !errors.Is(got, nats.ErrPermissionViolation):
		t.Errorf("error %v, want a permission violation", got)
	case !c.allowed && !strings.Contains(got.Error(), c.subj):
		t.Errorf("violation %v does not name %s", got, c.subj)
	}
}

func TestSecureSessionReadsState(t *testing.T) {
	p := startSecurePair(t, SeedFileName(config.RoleLeaf))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The notifier's side: the bucket, with the pair's key and another.
	in, err := p.a.Connect("notifier")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	js, err := jetstream.New(in)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: subject.StateBucket, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	for key, val := range map[string]string{"t": "state of t", "other": "state of other"} {
		if _, err := kv.Put(ctx, key, []byte(val)); err != nil {
			t.Fatal(err)
		}
	}

	for _, role := range []string{config.RoleSession, config.RolePrintq} {
		t.Run(role, func(t *testing.T) {
			nc, _ := p.connectAs(t, role)
			sjs, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			skv, err := sjs.KeyValue(ctx, subject.StateBucket)
			if err != nil {
				t.Fatalf("open bucket: %v", err)
			}
			e, err := skv.Get(ctx, "t")
			if err != nil {
				t.Fatalf("get own pair: %v", err)
			}
			if string(e.Value()) != "state of t" {
				t.Errorf("value %q", e.Value())
			}
			gctx, gcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			defer gcancel()
			if _, err := skv.Get(gctx, "other"); err == nil {
				t.Error("read another pair's state")
			}
		})
	}
}

func TestSecureAdminRequest(t *testing.T) {
	p := startSecurePair(t, SeedFileName(config.RoleLeaf))
	// The monitor answers the status verb.
	mon, _ := p.connectAs(t, config.RoleMonitor)
	status := subject.Admin("t", subject.PairScope, "status")
	if _, err := mon.Subscribe(status, func(m *nats.Msg) { _ = m.Respond([]byte(`{"ok":true}`)) }); err != nil {
		t.Fatal(err)
	}
	if err := mon.Flush(); err != nil {
		t.Fatal(err)
	}
	admin, _ := p.connectAs(t, config.RoleAdmin)
	m, err := admin.Request(status, []byte(`{}`), 2*time.Second)
	if err != nil {
		t.Fatalf("admin request: %v", err)
	}
	if string(m.Data) != `{"ok":true}` {
		t.Errorf("reply %q", m.Data)
	}
	session, serrs := p.connectAs(t, config.RoleSession)
	if _, err := session.Request(status, []byte(`{}`), 300*time.Millisecond); err == nil {
		t.Error("a session's admin request was answered")
	}
	select {
	case err := <-serrs:
		if !errors.Is(err, nats.ErrPermissionViolation) {
			t.Errorf("session request: %v, want a permission violation", err)
		}
	case <-time.After(time.Second):
		t.Error("session request: no permission violation reported")
	}
}

// TestSecureAdminReplay checks that the admin's read-only JetStream rights
// are enough for an ordered consumer on an event stream (tandem audit
// replay), that the server part's rights (role nats) make the stream, and
// that the monitor publishes into it.
func TestSecureAdminReplay(t *testing.T) {
	p := startSecurePair(t, SeedFileName(config.RoleLeaf))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv, _ := p.connectAs(t, config.RoleNATS)
	sjs, err := jetstream.New(srv)
	if err != nil {
		t.Fatal(err)
	}
	stream := subject.EventStream("t", "a")
	if _, err := sjs.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject.EventsOf("t", "a")}}); err != nil {
		t.Fatalf("the server part creates the event stream: %v", err)
	}
	mon, _ := p.connectAs(t, config.RoleMonitor)
	mjs, err := jetstream.New(mon)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mjs.Publish(ctx, subject.Event("t", "a", event.NodeActivated), []byte(`{}`)); err != nil {
		t.Fatalf("monitor publishes an event: %v", err)
	}
	admin, _ := p.connectAs(t, config.RoleAdmin)
	ajs, err := jetstream.New(admin)
	if err != nil {
		t.Fatal(err)
	}
	names := ajs.StreamNames(ctx)
	var found bool
	for n := range names.Name() {
		found = found || n == stream
	}
	if names.Err() != nil || !found {
		t.Fatalf("stream names: %v, found %v", names.Err(), found)
	}
	cons, err := ajs.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("ordered consumer: %v", err)
	}
	msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
	if err != nil {
		t.Fatalf("next: %v", err)
	}
	if msg.Subject() != subject.Event("t", "a", event.NodeActivated) {
		t.Errorf("subject %s", msg.Subject())
	}
	// A denied request is not answered: the delete ends at its deadline.
	dctx, dcancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer dcancel()
	if err := ajs.DeleteStream(dctx, stream); err == nil {
		t.Error("admin deleted the event stream")
	}
}

func TestAuthUsersParse(t *testing.T) {
	creds := t.TempDir()
	keys, err := WriteSeeds(creds, config.AuthRoles)
	if err != nil {
		t.Fatal(err)
	}
	id, err := newIdentities()
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Pair: "p", Node: "a", Listen: "127.0.0.1:-1", LeafListen: "127.0.0.1:-1", StoreDir: "/tmp/x",
		Users: AuthUsers("p", "a", keys), LeafAuthorization: LeafAuthorization(keys[config.RoleLeaf]), RequireAuth: true}
	var so server.Options
	if err := so.ProcessConfigString(serverConfig(o, id)); err != nil {
		t.Fatalf("config does not parse: %v\n%s", err, serverConfig(o, id))
	}
	if len(so.Nkeys) != len(config.AuthRoles)+1 { // the roles less leaf, plus the default and SYS
		t.Errorf("%d nkey users, want %d", len(so.Nkeys), len(config.AuthRoles)+1)
	}
	if so.LeafNode.Nkey != keys[config.RoleLeaf] {
		t.Errorf("leaf nkey %q", so.LeafNode.Nkey)
	}
}

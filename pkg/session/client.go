package session

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// Errors callers branch on.
var (
	ErrClosed    = errors.New("session client closed")
	ErrDuplicate = errors.New("session name already in use on this client")
)

// stateReadTimeout bounds one read of the current state.
const stateReadTimeout = 2 * time.Second

// Change is one notification applied by a session.
type Change struct {
	Session  string
	Epoch    uint64
	From, To string // the failed node and the active node
	Switched []api.Switch
	// Took is the time from the activation (the notification's time) to the
	// switch.
	Took   time.Duration
	Source string
}

// Stats are a Client's counters.
type Stats struct {
	Received uint64 // notifications decoded (subscription and state reads)
	Stale    uint64 // notifications older than the newest seen, ignored
	Rejected uint64 // messages on the notify subject that did not decode
	// Echoes are notifications a Client with a connection to each node
	// received on the second connection just after the first (the leaf
	// link carries each to both servers), ignored.
	Echoes   uint64
	AckFails uint64 // acknowledgements that could not be published
	// StateReads are the states read (on connect and after every
	// reconnect) that held a notification.
	StateReads uint64
}

// Client follows one pair's notifications for any number of sessions, on
// one NATS connection or, made by Dial with the two nodes' URLs, on one to
// each node.
type Client struct {
	links []*link
	own   bool
	pair  string
	id    string // the token of the client's batch subject (subject.AckBatch)

	quit chan struct{}
	wg   sync.WaitGroup // the links' refreshers

	received, stale, rejected, echoes, ackFails, stateReads atomic.Uint64

	mu       sync.Mutex // guards the fields below
	latest   *api.Notification
	via      *link  // the link that delivered a notification last
	heard    *link  // the link, bytes and time of the last notification
	heardRaw []byte // received on a subscription (echo)
	heardAt  time.Time
	sessions map[string]*Session
	watchers []func(api.Notification)
	closed   bool
}

// link is one of a Client's connections: its subscription to the
// notifications and its state reads.
type link struct {
	nc      *nats.Conn
	sub     *nats.Subscription
	refresh chan struct{} // size 1: a pending state read is enough
}

func (l *link) kick() {
	select {
	case l.refresh <- struct{}{}:
	default:
	}
}

// echoWindow is how long after a notification the same bytes arriving on
// the Client's other connection are taken for its copy over the leaf link
// rather than a re-announcement.
const echoWindow = time.Second

// Dial connects to the pair's nodes and returns a Client that owns its
// connections. Given the two nodes' URLs it holds a connection to each
// (issue 19): the notifications of whichever node is active arrive on the
// connection to it at once, and a node's death leaves the sessions on the
// survivor without a reconnect (100 connections reconnecting and reading
// the state took most of the 100 ms after a kill -9). A node down at the
// start is connected to once it accepts; Dial fails only when neither
// accepts. Given one URL, or more than two (a hub's servers), it holds one
// connection that moves among them. opts come after the defaults:
// reconnect forever, then with ReconnectDelay between rounds. nats.go
// applies a nats.CustomReconnectDelay in opts instead, and ignores a
// nats.ReconnectWait while one is set.
func Dial(urls []string, pair string, opts ...nats.Option) (*Client, error) {
	if err := subject.CheckName("pair", pair); err != nil {
		return nil, err
	}
	all := append([]nats.Option{
		nats.Name("tandem session " + pair), nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(ReconnectDelay), nats.RetryOnFailedConnect(false),
	}, opts...)
	list, err := ServerURLs(urls...) // a list written "a,b," or "a, b" holds two
	if err != nil {
		return nil, err
	}
	servers := [][]string{list}
	if len(list) == 2 {
		servers = [][]string{list[:1], list[1:]}
	}
	links, err := dialEach(servers, all)
	if err != nil {
		return nil, err
	}
	c, err := newClient(links, pair)
	if err != nil {
		closeAll(links)
		return nil, err
	}
	c.own = true
	return c, nil
}

// dialEach connects a link to each of servers with opts; it fails only
// when none connects. It refuses two links to one server (sameServer).
func dialEach(servers [][]string, opts []nats.Option) ([]*link, error) {
	// The nodes are connected to at once, and a node still not connected
	// a moment after the first is followed from when it accepts: a frozen
	// first node (it accepts the TCP connection and never says hello) held
	// the session up for its whole connect timeout.
	links := make([]*link, len(servers))
	type result struct {
		i   int
		nc  *nats.Conn
		err error
	}
	results := make(chan result, len(servers))
	for i, srv := range servers {
		links[i] = &link{refresh: make(chan struct{}, 1)}
		go func() {
			nc, err := nats.Connect(strings.Join(srv, ","), withDialer(opts, false)...)
			results <- result{i, nc, err}
		}()
	}
	var errs []error
	var grace <-chan time.Time
	pending := len(servers)
wait:
	for pending > 0 {
		select {
		case r := <-results:
			pending--
			if r.err != nil {
				errs = append(errs, fmt.Errorf("connect to %v: %w", servers[r.i], r.err))
				continue
			}
			links[r.i].nc = r.nc
			if grace == nil {
				grace = time.After(connectGrace)
			}
		case <-grace:
			break wait
		}
	}
	if len(errs) == len(servers) {
		return nil, errors.Join(errs...)
	}
	if err := sameServer(links); err != nil {
		closeAll(links)
		return nil, err
	}
	if pending > 0 {
		go func() { // the slow attempts' links retry on their own
			for range pending {
				if r := <-results; r.err == nil {
					r.nc.Close()
				}
			}
		}()
	}
	for i, l := range links {
		if l.nc != nil {
			continue
		}
		// The other node accepted: follow this one from when it does. Its
		// dialer refuses the first attempt, which nats.Connect makes before
		// it returns, so that only the retries in the background wait.
		nc, err := nats.Connect(strings.Join(servers[i], ","), append(withDialer(opts, true), nats.RetryOnFailedConnect(true),
			nats.ConnectHandler(func(*nats.Conn) { l.kick() }))...)
		if err != nil {
			closeAll(links)
			return nil, fmt.Errorf("connect to %v: %w", servers[i], err)
		}
		l.nc = nc
	}
	return links, nil
}

// sameServer refuses two connections to one server: the same node spelled
// two ways ("nats://h:4222" and "h:4222") would leave its sessions without
// the other node, silently.
func sameServer(links []*link) error {
	if len(links) != 2 || links[0].nc == nil || links[1].nc == nil {
		return nil
	}
	a, b := links[0].nc, links[1].nc
	if id := a.ConnectedServerId(); id == "" || id != b.ConnectedServerId() {
		return nil
	}
	return fmt.Errorf("%s and %s are the same server (%s): give each node's URL once", a.ConnectedUrlRedacted(), b.ConnectedUrlRedacted(), a.ConnectedServerName())
}

// connectGrace is how long Dial waits for the other node's connection
// after the first is up.
const connectGrace = time.Second

// withDialer is opts with a closingDialer of their connect timeout, which
// refuses its first attempt if deferred, unless they set a dialer of their
// own.
func withDialer(opts []nats.Option, deferred bool) []nats.Option {
	o := nats.GetDefaultOptions()
	for _, opt := range opts {
		_ = opt(&o)
	}
	if o.CustomDialer != nil || o.Dialer != nil {
		return opts
	}
	return append(slices.Clip(opts), nats.SetCustomDialer(&closingDialer{d: net.Dialer{Timeout: o.Timeout}, deferred: deferred}))
}

// closingDialer is a connection's dialer that closes the socket it made
// last before it makes the next one. nats.go (v1.56.0, doReconnect) leaves
// a socket open when the handshake on it fails and it tries again: a
// connection to a frozen node (it accepts and never says hello), retried
// for as long as the node is frozen, leaked a descriptor per attempt, left
// in CLOSE-WAIT after the thaw. nats.go dials only to replace the socket
// it had, so the last one is never in use when the next is dialed.
type closingDialer struct {
	d        net.Dialer
	mu       sync.Mutex
	deferred bool // the next attempt is refused at once
	last     net.Conn
}

// errDeferred is a deferred closingDialer's first answer.
var errDeferred = errors.New("connection deferred to the background")

func (c *closingDialer) Dial(network, address string) (net.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deferred {
		c.deferred = false
		return nil, errDeferred
	}
	if c.last != nil {
		_ = c.last.Close()
		c.last = nil
	}
	conn, err := c.d.Dial(network, address)
	if err == nil {
		c.last = conn
	}
	return conn, err
}

func closeAll(links []*link) {
	for _, l := range links {
		if l.nc != nil {
			l.nc.Close()
		}
	}
}

// Reconnect delays of Dial's connections.
const (
	reconnectFirst = 50 * time.Millisecond
	reconnectMax   = 2 * time.Second
)

// ReconnectDelay is the pause of a Dial'ed connection after its round
// number round over the servers failed: 50 ms after the first, doubling up
// to 2 s, plus up to half of it at random so that a node's clients do not
// come back in step. nats.go tries the servers of a round without pausing
// and starts with the one after the server that was lost, so a session of
// a dead node reconnects to the survivor at once; the pause only spaces the
// rounds while neither node accepts (both down, or a node restarting),
// where a fixed pause of 50 to 100 ms had 10,000 clients try over 200,000
// connections a second.
func ReconnectDelay(round int) time.Duration {
	d := reconnectFirst << min(max(round-1, 0), 6)
	d = min(d, reconnectMax)
	return d + rand.N(d/2+1)
}

// New follows pair's notifications on nc, which the caller keeps owning
// (Close does not close it). It chains nc's reconnect handler so that the
// current state is read again after every reconnect.
func New(nc *nats.Conn, pair string) (*Client, error) {
	if err := subject.CheckName("pair", pair); err != nil {
		return nil, err
	}
	return newClient([]*link{{nc: nc, refresh: make(chan struct{}, 1)}}, pair)
}

// newClient follows pair's notifications on every link's connection.
func newClient(links []*link, pair string) (*Client, error) {
	c := &Client{links: links, pair: pair, id: "c" + nuid.Next(), sessions: map[string]*Session{}, quit: make(chan struct{})}
	unsubscribe := func() {
		for _, l := range links {
			if l.sub != nil {
				_ = l.sub.Unsubscribe()
			}
		}
	}
	for _, l := range links {
		prev := l.nc.Opts.ReconnectedCB
		l.nc.SetReconnectHandler(func(conn *nats.Conn) {
			if prev != nil {
				prev(conn)
			}
			l.kick()
		})
		if len(links) > 1 {
			prevLost := l.nc.Opts.DisconnectedErrCB
			l.nc.SetDisconnectErrHandler(func(conn *nats.Conn, err error) {
				if prevLost != nil {
					prevLost(conn, err)
				}
				hurryOthers(links, l)
			})
		}
		sub, err := l.nc.Subscribe(subject.Notify(pair), func(m *nats.Msg) { c.onMsg(l, m) })
		if err != nil {
			unsubscribe()
			return nil, fmt.Errorf("subscribe %s: %w", subject.Notify(pair), err)
		}
		// Notifications come in bursts of one; a session flood must not grow
		// memory without bound.
		_ = sub.SetPendingLimits(1024, 64<<20)
		l.sub = sub
		if !l.nc.IsConnected() {
			continue // subscribes when it connects, then reads the state
		}
		if err := l.nc.Flush(); err != nil {
			unsubscribe()
			return nil, err
		}
	}
	for _, l := range links {
		c.wg.Go(func() { c.refresher(l) })
		l.kick()
	}
	return c, nil
}

// hurryOthers has every link but lost that is waiting to reconnect try at
// once: when the connection to one node is lost, the other node may be
// back already (restarted after an outage), and its connection could be
// in the middle of a pause of up to 3 s between rounds (ReconnectDelay) —
// every session of the client waited that long for the takeover's
// notification.
func hurryOthers(links []*link, lost *link) {
	for _, o := range links {
		if o != lost && o.nc.IsReconnecting() {
			_ = o.nc.ForceReconnect()
		}
	}
}

// Conn is the client's NATS connection to the node it heard from last (see
// current).
func (c *Client) Conn() *nats.Conn { return c.current().nc }

// Conns are the client's NATS connections: one to each node (Dial with
// both nodes' URLs), else one.
func (c *Client) Conns() []*nats.Conn {
	out := make([]*nats.Conn, len(c.links))
	for i, l := range c.links {
		out[i] = l.nc
	}
	return out
}

// current is the link the client's acknowledgements go on: the one that
// delivered a notification last while it is connected, else a connected
// one (the first while none is).
func (c *Client) current() *link {
	c.mu.Lock()
	via := c.via
	c.mu.Unlock()
	if via != nil && via.nc.IsConnected() {
		return via
	}
	for _, l := range c.links {
		if l.nc.IsConnected() {
			return l
		}
	}
	return c.links[0]
}

// Latest is the newest notification the client has seen, if any.
func (c *Client) Latest() (api.Notification, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.latest == nil {
		return api.Notification{}, false
	}
	n := *c.latest
	n.Hosts, n.Renames = maps.Clone(n.Hosts), maps.Clone(n.Renames)
	return n, true
}

// decoded is the notification this process decoded last, with its bytes:
// the Clients of one process (a terminal server with 100 connections, or
// 10,000) receive the same message, and the first to decode it spares the
// others; the same bytes decode to the same result. Its maps are shared
// and never written.
type decoded struct {
	raw []byte
	n   api.Notification
	err error
}

var lastDecoded atomic.Pointer[decoded]

func decodeNotification(raw []byte) (api.Notification, error) {
	if d := lastDecoded.Load(); d != nil && bytes.Equal(d.raw, raw) {
		return d.n, d.err
	}
	n, err := api.DecodeNotification(raw)
	lastDecoded.Store(&decoded{raw: bytes.Clone(raw), n: n, err: err})
	return n, err
}

// Stats returns the counters.
func (c *Client) Stats() Stats {
	return Stats{Received: c.received.Load(), Stale: c.stale.Load(), Rejected: c.rejected.Load(), Echoes: c.echoes.Load(),
		AckFails: c.ackFails.Load(), StateReads: c.stateReads.Load()}
}

// Add starts a session named name with conns. If the client already knows
// the pair's state, the session applies it at once (N5); it then
// acknowledges (hello) so that the notifier knows it. onChange, if not nil,
// is called for every notification the session applies.
func (c *Client) Add(name string, conns []Connection, onChange func(Change)) (*Session, error) {
	if !subject.ValidSession(name) {
		return nil, fmt.Errorf("session name %q: want 1–64 of [A-Za-z0-9_-]", name)
	}
	s := &Session{c: c, name: name, conns: append([]Connection(nil), conns...), onChange: onChange}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	if _, dup := c.sessions[name]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("%w: %s", ErrDuplicate, name)
	}
	c.sessions[name] = s
	latest := c.latest
	c.mu.Unlock()
	if latest == nil || !s.apply(*latest, c.current().nc) {
		s.ack(api.AckHello, 0, nil, 0)
	}
	return s, nil
}

// Watch calls fn with every notification the client receives that is not
// older than the newest it has seen (re-announcements included), and at once
// with the newest if there is one. fn runs on the client's goroutines (the
// subscription's, the state reader's) and must not block: a session agent
// that switches the operating system's connections (tandem session --driver)
// hands the notification to its own goroutine and acknowledges itself
// (PublishAck), where a Session acknowledges what it rewrote in memory.
func (c *Client) Watch(fn func(api.Notification)) {
	c.mu.Lock()
	c.watchers = append(c.watchers[:len(c.watchers):len(c.watchers)], fn)
	latest := c.latest
	c.mu.Unlock()
	if latest != nil {
		fn(*latest)
	}
}

// PublishAck publishes a on the subject of a.Session's acknowledgements.
func (c *Client) PublishAck(a api.SessionAck) error {
	if err := a.Validate(); err != nil {
		return err
	}
	if err := c.current().nc.Publish(subject.Ack(c.pair, a.Session), api.AppendAck(nil, a)); err != nil {
		c.ackFails.Add(1)
		return fmt.Errorf("publish acknowledgement of %s: %w", a.Session, err)
	}
	return nil
}

// Close ends every session (each says bye), stops following and closes the
// connection if the client owns it.
func (c *Client) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	sessions := make([]*Session, 0, len(c.sessions))
	for _, s := range c.sessions {
		sessions = append(sessions, s)
	}
	c.mu.Unlock()
	for _, s := range sessions {
		s.Close()
	}
	for _, l := range c.links {
		_ = l.sub.Unsubscribe()
	}
	close(c.quit)
	c.wg.Wait()
	if c.own {
		for _, l := range c.links {
			if l.nc.IsConnected() {
				_ = l.nc.Flush()
			}
			l.nc.Close()
		}
	}
}

func (c *Client) onMsg(l *link, m *nats.Msg) {
	n, err := decodeNotification(m.Data)
	if err != nil || n.Pair != c.pair {
		c.rejected.Add(1)
		return
	}
	if c.echo(l, m.Data) {
		c.echoes.Add(1)
		return
	}
	c.deliver(l, n, true)
}

// echo reports whether data, received on l, is the notification another
// link delivered less than echoWindow ago: the same message, which the
// pair's leaf link carried to both servers. Answering it too would double
// every acknowledgement.
func (c *Client) echo(l *link, data []byte) bool {
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.heard != nil && c.heard != l && now.Sub(c.heardAt) < echoWindow && bytes.Equal(c.heardRaw, data) {
		return true
	}
	c.heard, c.heardRaw, c.heardAt = l, append(c.heardRaw[:0], data...), now
	return false
}

// deliver records n if it is the newest and hands it to every session.
// reack says whether the sessions answer a notification of the epoch they
// are at (a re-announcement, N7) with a fresh acknowledgement. A state read
// on a Client's one connection does not: after a reconnect it finds the
// epoch the sessions already acknowledged, and 10,000 hellos sent then
// would reach the survivor's notifier just as it counts the
// acknowledgements of its activation (issue 19). A state read on a
// connection to each node does: that connection comes back to a node that
// was restarted (or cut off), whose notifier has forgotten the sessions
// and would otherwise count none of them until the next re-announcement
// should it activate first; the failover itself moves no connection.
func (c *Client) deliver(l *link, n api.Notification, reack bool) {
	c.received.Add(1)
	c.mu.Lock()
	if c.latest != nil && n.Epoch < c.latest.Epoch {
		c.mu.Unlock()
		c.stale.Add(1)
		return
	}
	c.via = l
	newer := c.latest == nil || n.Epoch > c.latest.Epoch
	if newer {
		c.latest = &n
	}
	var sessions []*Session
	if newer || reack {
		sessions = make([]*Session, 0, len(c.sessions))
		for _, s := range c.sessions {
			sessions = append(sessions, s)
		}
	}
	watchers := c.watchers
	c.mu.Unlock()
	for _, w := range watchers {
		w(n)
	}
	if len(sessions) == 0 {
		return
	}
	// The acknowledgements are written one after the other into one buffer,
	// each ending in a newline (the batch form), without one allocation per
	// session (issue 19).
	buf := make([]byte, 0, len(sessions)*ackCap)
	rw := newRewriter(n, len(sessions))
	ends := make([]int, 0, len(sessions))
	var first *Session
	// The changes are made in place, one slice for all: a Change each on
	// the heap, and the slices' doublings, were a fifth of a delivery's CPU
	// (a profile of BenchmarkActivationTo10000Sessions).
	changes := make([]Change, 0, len(sessions))
	changed := make([]*Session, 0, len(sessions))
	for _, s := range sessions {
		var acked, applied bool
		changes = changes[:len(changes)+1]
		buf, acked, applied = s.step(buf, n, rw, &changes[len(changes)-1])
		if acked {
			buf = append(buf, '\n')
			ends = append(ends, len(buf))
			if first == nil {
				first = s
			}
		}
		if applied && s.onChange != nil {
			changed = append(changed, s)
		} else {
			changes = changes[:len(changes)-1]
		}
	}
	c.sendAcks(l.nc, buf, ends, first)
	for i, ch := range changes {
		changed[i].onChange(ch)
	}
}

// sendAcks publishes on nc the acknowledgements of one delivery, each line
// of buf ending at one of ends: one alone on its session's (first's)
// subject, more in batches on the client's (a connection holding 100
// sessions sends one message instead of 100).
func (c *Client) sendAcks(nc *nats.Conn, buf []byte, ends []int, first *Session) {
	switch len(ends) {
	case 0:
		return
	case 1:
		first.publishOn(nc, buf[:ends[0]-1])
		return
	}
	start, prev, lines := 0, 0, 0
	flush := func() {
		if err := nc.Publish(subject.AckBatch(c.pair, c.id), buf[start:prev]); err != nil {
			c.ackFails.Add(uint64(lines))
		}
		start, lines = prev, 0
	}
	for _, end := range ends {
		if lines > 0 && (lines == api.MaxAckBatch || end-start > api.MaxAckBatchBytes) {
			flush()
		}
		prev = end
		lines++
	}
	flush()
}

// refresher reads the current state through l whenever kicked (start,
// reconnect), retrying while the read fails and the connection is up.
func (c *Client) refresher(l *link) {
	for {
		select {
		case <-c.quit:
			return
		case <-l.refresh:
		}
		for !c.readState(l) {
			select {
			case <-c.quit:
				return
			case <-l.refresh:
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// readState reads key <pair> of the state bucket on the node l is
// connected to; true when done (a value, or none yet).
func (c *Client) readState(l *link) bool {
	if !l.nc.IsConnected() {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), stateReadTimeout)
	defer cancel()
	go func() {
		select {
		case <-c.quit:
			cancel()
		case <-ctx.Done():
		}
	}()
	raw, found, err := c.directGet(ctx, l.nc)
	if errors.Is(err, nats.ErrNoResponders) {
		raw, found, err = c.kvGet(ctx, l.nc)
	}
	if err != nil {
		return false
	}
	if !found {
		return true
	}
	n, err := api.DecodeNotification(raw)
	if err != nil || n.Pair != c.pair {
		c.rejected.Add(1)
		return true
	}
	c.stateReads.Add(1)
	c.deliver(l, n, len(c.links) > 1)
	return true
}

// directGet reads the state with one direct get, the request a KV get
// makes, without the bucket's stream info a KV handle asks for first: after
// a node's death every client of the pair reconnects to the survivor at
// once and reads the state, and the stream info requests queued behind each
// other in the survivor's JetStream API (issue 19). No responders means no
// stream answers direct gets (no bucket yet, or JetStream not up): kvGet
// tells which.
func (c *Client) directGet(ctx context.Context, nc *nats.Conn) ([]byte, bool, error) {
	m, err := nc.RequestWithContext(ctx, stateDirectGet+c.pair, nil)
	if err != nil {
		return nil, false, err
	}
	switch m.Header.Get("Status") {
	case "":
	case "404":
		return nil, false, nil
	default:
		return nil, false, fmt.Errorf("direct get of the state: %s %s", m.Header.Get("Status"), m.Header.Get("Description"))
	}
	switch {
	case m.Header.Get("Nats-Stream") == "": // not a stored message: an API error
		return nil, false, fmt.Errorf("direct get of the state: %s", m.Data)
	case m.Header.Get("KV-Operation") != "", m.Header.Get("Nats-Marker-Reason") != "": // deleted, purged
		return nil, false, nil
	}
	return m.Data, true, nil
}

// stateDirectGet is the direct get subject of key <pair> (appended) of the
// state bucket.
const stateDirectGet = "$JS.API.DIRECT.GET.KV_" + subject.StateBucket + ".$KV." + subject.StateBucket + "."

// kvGet reads the state through a KV handle; a missing bucket or key is
// done (not found).
func (c *Client) kvGet(ctx context.Context, nc *nats.Conn) ([]byte, bool, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, false, err
	}
	kv, err := js.KeyValue(ctx, subject.StateBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	e, err := kv.Get(ctx, c.pair)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return e.Value(), true, nil
}

func (c *Client) forget(name string, s *Session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[name] == s {
		delete(c.sessions, name)
	}
}

// Session is one session's connections and the epoch it is at.
type Session struct {
	c        *Client
	name     string
	onChange func(Change)

	mu     sync.Mutex // guards the fields below
	conns  []Connection
	epoch  uint64
	closed bool
}

// Name is the session's name.
func (s *Session) Name() string { return s.name }

// Epoch is the epoch of the last notification the session applied.
func (s *Session) Epoch() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch
}

// Connections returns a copy of the session's connections.
func (s *Session) Connections() []Connection {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Connection, len(s.conns))
	for i, c := range s.conns {
		out[i] = c
		if c.Options != nil {
			out[i].Options = make(map[string]string, len(c.Options))
			for k, v := range c.Options {
				out[i].Options[k] = v
			}
		}
	}
	return out
}

// Close ends the session: it says bye so that the notifier forgets it.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	epoch := s.epoch
	s.mu.Unlock()
	s.c.forget(s.name, s)
	s.ack(api.AckBye, epoch, nil, 0)
}

// apply applies n if it is newer than the session's epoch, acknowledges
// and reports the change; false when it was not newer (the caller
// re-acknowledges a re-announcement).
func (s *Session) apply(n api.Notification, nc *nats.Conn) bool {
	var ch Change
	ack, acked, applied := s.step(make([]byte, 0, ackCap), n, newRewriter(n, 1), &ch)
	if !applied {
		return !acked
	}
	s.publishOn(nc, ack)
	if s.onChange != nil {
		s.onChange(ch)
	}
	return true
}

// step applies n, with rw (newRewriter), if it is newer than
// the session's epoch. It appends to dst the acknowledgement to send — of
// the switch, or a hello at the session's epoch when n is not newer — and
// reports whether it did so, writing the change to ch; nothing once the
// session is closed.
func (s *Session) step(dst []byte, n api.Notification, rw *rewriter, ch *Change) ([]byte, bool, bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return dst, false, false
	}
	if n.Epoch <= s.epoch {
		epoch := s.epoch
		s.mu.Unlock()
		return s.encode(dst, api.AckHello, epoch, nil, 0), true, false
	}
	conns, switched := rw.rewrite(s.conns)
	s.conns, s.epoch = conns, n.Epoch
	s.mu.Unlock()
	took := time.Since(n.Time)
	if took < 0 {
		took = 0
	}
	*ch = Change{Session: s.name, Epoch: n.Epoch, From: n.Failed, To: n.Active, Switched: switched, Took: took, Source: n.Source}
	return s.encode(dst, api.AckSwitched, n.Epoch, switched, took.Milliseconds()), true, true
}

func (s *Session) ack(kind string, epoch uint64, switched []api.Switch, ms int64) {
	// One allocation of about the size of an acknowledgement, not the
	// doublings of a nil slice.
	s.publishOn(s.c.current().nc, s.encode(make([]byte, 0, ackCap), kind, epoch, switched, ms))
}

// encode appends the session's acknowledgement to dst.
func (s *Session) encode(dst []byte, kind string, epoch uint64, switched []api.Switch, ms int64) []byte {
	if len(switched) > api.MaxAckSwitches {
		switched = switched[:api.MaxAckSwitches]
	}
	return api.AppendAck(dst, api.SessionAck{V: api.NotificationVersion, Pair: s.c.pair, Session: s.name, Kind: kind, Epoch: epoch, Switched: switched, MS: ms})
}

// publishOn sends one acknowledgement on the session's own subject on nc.
func (s *Session) publishOn(nc *nats.Conn, b []byte) {
	if err := nc.Publish(subject.Ack(s.c.pair, s.name), b); err != nil {
		s.c.ackFails.Add(1)
	}
}

// ackCap is the room an acknowledgement's encoding starts with: a session
// of three connections switching two of them needs about 250 bytes.
const ackCap = 320

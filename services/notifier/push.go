package notifier

// The push endpoint (SPEC N3) for clients that do not speak NATS:
//
//	GET  /v1/pairs/{pair}/events                    Server-Sent Events: the current notification first, then every newer one;
//	                                                id: is the epoch, so Last-Event-ID resumes (nothing is re-sent that the client has)
//	GET  /v1/pairs/{pair}/active                    the current notification as JSON, for clients that poll
//	POST /v1/pairs/{pair}/sessions/{session}/ack    a SessionAck (JSON), as a NATS session would publish it
//
// Every request needs "Authorization: Bearer <token>" (the scheme in any
// case) with one of Options.Tokens (unless Options.Open). Refusals are
// counted by reason (tandem_notifier_push_refused_total) and change nothing.
//
// Hardening (SPEC §9): HTTPS with notifier.tls.cert/key; a request's
// headers must arrive within 5 s and an ack's body within bodyTimeout; an
// idle keep-alive connection is closed after idleTimeout; beyond
// notifier.max_conns open connections a new one takes the place of the
// oldest quiet one, or is closed at once if all are busy (shedListener;
// counted as refused "shed").

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/reply"
)

const (
	sseKeepalive  = 15 * time.Second
	sseRetryMS    = 1000
	writeDeadline = 5 * time.Second
	idleTimeout   = 10 * time.Second
	bodyTimeout   = 10 * time.Second
)

// hub wakes every SSE client when the current notification changes.
type hub struct {
	mu      sync.Mutex // guards clients
	clients map[chan struct{}]struct{}
}

func newHub() *hub { return &hub{clients: map[chan struct{}]struct{}{}} }

func (h *hub) add() chan struct{} {
	ch := make(chan struct{}, 1)
	h.mu.Lock()
	h.clients[ch] = struct{}{}
	h.mu.Unlock()
	return ch
}

func (h *hub) remove(ch chan struct{}) {
	h.mu.Lock()
	delete(h.clients, ch)
	h.mu.Unlock()
}

func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

func (h *hub) broadcast() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.clients {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// startPush listens and serves the push endpoint until stopPush.
func (s *Service) startPush(ctx context.Context) (*http.Server, error) {
	ln, err := net.Listen("tcp", s.o.PushListen)
	if err != nil {
		return nil, fmt.Errorf("notifier: push endpoint: %w", err)
	}
	limit := s.cfg.Notifier.MaxConns
	if limit <= 0 { // a Config not made by config.Default
		limit = config.DefaultPushMaxConns
	}
	ln = &shedListener{Listener: ln, max: limit, shed: func() { s.met.pushRefused.WithLabelValues("shed").Inc() }}
	if t := s.cfg.Notifier.TLS; t.Cert != "" {
		cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("notifier: push endpoint: notifier.tls: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	if len(s.o.Tokens) == 0 && !s.o.Open {
		s.log.Warn().Str("listen", ln.Addr().String()).Msg("push endpoint has no credentials configured: it refuses every request")
	}
	s.pushLn = ln
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/pairs/{pair}/events", s.authed(s.serveEvents))
	mux.HandleFunc("GET /v1/pairs/{pair}/active", s.authed(s.serveActive))
	mux.HandleFunc("POST /v1/pairs/{pair}/sessions/{session}/ack", s.authed(s.serveAck))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       idleTimeout,
		ConnState:         connState,
		// TLS handshake failures and the like: the service's log, not stderr.
		ErrorLog:       stdlog.New(s.log.With().Str("component", "push").Logger(), "", 0),
		BaseContext:    func(net.Listener) context.Context { return ctx },
		MaxHeaderBytes: 16 << 10,
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("push endpoint stopped")
		}
	}()
	return srv, nil
}

func (s *Service) stopPush(srv *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
}

// authed checks the credentials and the pair before h.
func (s *Service) authed(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if reason := s.checkToken(r.Header.Get("Authorization")); reason != "" {
			s.refuse(w, r, http.StatusUnauthorized, reason, "credentials "+reason)
			return
		}
		if pair := r.PathValue("pair"); pair != s.pair {
			s.refuse(w, r, http.StatusNotFound, "unknown_pair", fmt.Sprintf("unknown pair %q", truncate(pair, 64)))
			return
		}
		h(w, r)
	}
}

// checkToken returns "" when the header carries a valid token, else why not.
func (s *Service) checkToken(header string) string {
	if s.o.Open {
		return ""
	}
	tok, ok := api.BearerToken(header)
	if !ok {
		return "missing"
	}
	valid := 0
	for _, t := range s.o.Tokens {
		valid |= subtle.ConstantTimeCompare([]byte(tok), []byte(t))
	}
	if valid != 1 {
		return "wrong"
	}
	return ""
}

// refuse answers with the reply shape, counts and reports the refusal.
func (s *Service) refuse(w http.ResponseWriter, r *http.Request, status int, reason, msg string) {
	s.met.pushRefused.WithLabelValues(reason).Inc()
	s.reject("push", r.Method+" "+truncate(r.URL.Path, 128), errors.New(msg))
	code := reply.CodeBadRequest
	switch status {
	case http.StatusUnauthorized:
		code = "unauthorized"
		w.Header().Set("WWW-Authenticate", `Bearer realm="tandem"`)
	case http.StatusNotFound:
		code = reply.CodeWrongPair
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(reply.Fail(&reply.Error{Code: code, Message: msg}))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// serveActive answers the current notification (or none) as JSON.
func (s *Service) serveActive(w http.ResponseWriter, _ *http.Request) {
	out := struct {
		Pair         string            `json:"pair"`
		Epoch        uint64            `json:"epoch"`
		Active       *string           `json:"active"`
		Host         string            `json:"host,omitempty"`
		Notification *api.Notification `json:"notification"`
	}{Pair: s.pair}
	if n, ok := s.Current(); ok {
		out.Epoch, out.Active, out.Notification = n.Epoch, &n.Active, &n
		out.Host = s.hostOf(n.Active)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

// hostOf is node's client-facing host as the notifier knows it.
func (s *Service) hostOf(node string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil && s.db.Hosts[node] != "" {
		return s.db.Hosts[node]
	}
	return s.cfg.Hosts[node]
}

// serveAck takes a session's acknowledgement over HTTP.
func (s *Service) serveAck(w http.ResponseWriter, r *http.Request) {
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(bodyTimeout))
	body, err := io.ReadAll(io.LimitReader(r.Body, api.MaxAck+1))
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "malformed", "read body: "+err.Error())
		return
	}
	a, err := api.DecodeAck(body)
	if err == nil && (a.Pair != s.pair || a.Session != r.PathValue("session")) {
		err = errors.New("ack names another session or pair than its path")
	}
	if err == nil {
		err = s.handleAck(a.Count())
	}
	if err != nil {
		s.refuse(w, r, http.StatusBadRequest, "malformed", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// serveEvents streams notifications as Server-Sent Events.
func (s *Service) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	sent := lastEventID(r)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	wake := s.hub.add()
	s.met.pushClients.Inc()
	defer func() {
		s.hub.remove(wake)
		s.met.pushClients.Dec()
	}()
	if s.sseWrite(rc, w, fmt.Sprintf("retry: %d\n\n", sseRetryMS)) != nil {
		return
	}
	keep := time.NewTicker(sseKeepalive)
	defer keep.Stop()
	for {
		if n, ok := s.Current(); ok && n.Epoch > sent {
			b, _ := json.Marshal(n)
			if s.sseWrite(rc, w, fmt.Sprintf("id: %d\nevent: notification\ndata: %s\n\n", n.Epoch, b)) != nil {
				return
			}
			sent = n.Epoch
		}
		select {
		case <-r.Context().Done():
			return
		case <-wake:
		case <-keep.C:
			if s.sseWrite(rc, w, ": keepalive\n\n") != nil {
				return
			}
		}
	}
}

func (s *Service) sseWrite(rc *http.ResponseController, w io.Writer, text string) error {
	_ = rc.SetWriteDeadline(time.Now().Add(writeDeadline))
	if _, err := io.WriteString(w, text); err != nil {
		return err
	}
	return rc.Flush()
}

// lastEventID is the epoch the client already has (Last-Event-ID header or
// last_event_id query parameter), 0 when absent or not a number.
func lastEventID(r *http.Request) uint64 {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// shedListener keeps at most max connections open. At the limit, a new
// connection takes the place of the oldest quiet one — a connection that
// has not sent a request yet, or waits idle between two (keep-alive) — so
// that idle connections cannot keep clients with a request out; when every
// connection is busy (a request or an event stream under way) the new one
// is closed at once. Either is counted by shed.
type shedListener struct {
	net.Listener
	max  int
	shed func()

	mu   sync.Mutex // guards open
	open map[*countedConn]struct{}
}

func (l *shedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		cc := &countedConn{Conn: c, l: l, since: time.Now()}
		cc.quiet.Store(true)
		if victim, ok := l.admit(cc); ok {
			if victim != nil {
				_ = victim.Close()
				l.shed()
			}
			return cc, nil
		}
		_ = c.Close()
		l.shed()
	}
}

// admit records c if there is room, or makes room by giving up the oldest
// quiet connection, which the caller closes; false when there is none.
func (l *shedListener) admit(c *countedConn) (victim *countedConn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == nil {
		l.open = make(map[*countedConn]struct{})
	}
	if len(l.open) >= l.max {
		for o := range l.open {
			if o.quiet.Load() && (victim == nil || o.since.Before(victim.since)) {
				victim = o
			}
		}
		if victim == nil {
			return nil, false
		}
		delete(l.open, victim)
	}
	l.open[c] = struct{}{}
	return victim, true
}

func (l *shedListener) release(c *countedConn) {
	l.mu.Lock()
	delete(l.open, c)
	l.mu.Unlock()
}

// connState marks a connection quiet while it has no request under way
// (http.Server.ConnState).
func connState(c net.Conn, state http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if cc, ok := c.(*countedConn); ok {
		cc.quiet.Store(state == http.StateNew || state == http.StateIdle)
	}
}

// countedConn gives its place back once, when closed.
type countedConn struct {
	net.Conn
	l     *shedListener
	since time.Time   // accepted
	quiet atomic.Bool // no request under way
	once  sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.release(c) })
	return c.Conn.Close()
}

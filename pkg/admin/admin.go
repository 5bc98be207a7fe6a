// Package admin is the HTTP endpoint every Tandem service serves on its
// admin.listen address (SPEC §8): Prometheus metrics on /metrics, liveness on
// /healthz (200 while the process runs) and readiness on /readyz (200 when
// the service's ready func says so, else 503 with its reason). These paths
// only read. A process may add its own handlers with Handle (the node's
// live dashboard, which checks its own credentials before any action).
//
// A service's Main builds its registry with NewRegistry, registers its own
// collectors, and calls New, Start, and, when it stops, Close. A node adds
// its live dashboard with Handle before Start, and TLS with SetTLS.
//
// # Concurrency
//
// Start runs the http.Server in one goroutine, which Close stops and waits
// for. Each request runs in its own goroutine, as net/http does, so the ready
// func is called concurrently and must be quick and safe for that (read an
// atomic or take a mutex briefly). Start, Addr and Close may be called from
// any goroutine.
package admin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	stdlog "log"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
)

// The server's timeouts: a client that is slow to send its request, or to
// read the answer, is cut off rather than holding a connection.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second // a scrape of a large registry
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
)

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("admin server closed")

// Server is a service's admin endpoint.
type Server struct {
	addr string
	srv  *http.Server
	mux  *http.ServeMux
	log  zerolog.Logger

	mu       sync.Mutex // guards the fields below
	ln       net.Listener
	closed   bool
	done     chan struct{} // closed when the serving goroutine returns
	serveErr error         // why Serve stopped, if not Close
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors, for a service to add its own to.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// New returns a server for addr ("127.0.0.1:8080"; port 0 picks one) that
// serves reg's metrics and reports ready when ready returns nil; a nil ready
// is always ready. It does not listen until Start.
func New(addr string, reg *prometheus.Registry, ready func() error, log zerolog.Logger) *Server {
	if reg == nil {
		panic("admin: nil registry")
	}
	if ready == nil {
		ready = func() error { return nil }
	}
	mux := handler(reg, ready, log)
	return &Server{
		addr: addr,
		log:  log,
		mux:  mux,
		done: make(chan struct{}),
		srv: &http.Server{
			Handler:           mux,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          stdlog.New(warnWriter{log}, "", 0),
		},
	}
}

// Handle serves h on pattern (http.ServeMux syntax) beside /metrics,
// /healthz and /readyz; call it before Start. h serves only what it is
// given: a pattern of "/" receives every path the others do not claim.
func (s *Server) Handle(pattern string, h http.Handler) {
	s.mux.Handle(pattern, h)
}

// SetTLS makes the server answer HTTPS with the PEM certificate and key of
// the files; call it before Start.
func (s *Server) SetTLS(certFile, keyFile string) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return fmt.Errorf("admin tls: %w", err)
	}
	s.srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	return nil
}

// Start listens on the address and serves in the background.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.ln != nil:
		return errors.New("admin server already started")
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("admin listen: %w", err)
	}
	s.ln = ln
	if s.srv.TLSConfig != nil {
		ln = tls.NewListener(ln, s.srv.TLSConfig)
	}
	go s.serve(ln)
	s.log.Info().Str("addr", ln.Addr().String()).Msg("admin endpoint listening")
	return nil
}

func (s *Server) serve(ln net.Listener) {
	defer close(s.done)
	err := s.srv.Serve(ln)
	if !errors.Is(err, http.ErrServerClosed) {
		s.mu.Lock()
		s.serveErr = err
		s.mu.Unlock()
	}
}

// Addr is the address the server listens on once started (with the port
// chosen for port 0), else the address it was given.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.addr
}

// Close stops the server: it stops listening and waits for the requests in
// progress until ctx is done, then closes the connections left. It returns
// why serving stopped early, if it did, or that ctx ran out.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	started := s.ln != nil
	s.mu.Unlock()

	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("admin shutdown: %w", err), s.srv.Close())
	}
	if started {
		<-s.done
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serveErr != nil {
		err = errors.Join(fmt.Errorf("admin serve: %w", s.serveErr), err)
	}
	return err
}

func handler(reg *prometheus.Registry, ready func() error, log zerolog.Logger) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      promLogger{log},
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		text(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if err := ready(); err != nil {
			text(w, http.StatusServiceUnavailable, err.Error())
			return
		}
		text(w, http.StatusOK, "ok")
	})
	return mux
}

func text(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = fmt.Fprintln(w, body) // the client may have gone; nothing to do
}

// warnWriter carries net/http's own error log (bad TLS, accept retries) to
// zerolog at warn.
type warnWriter struct{ log zerolog.Logger }

func (w warnWriter) Write(p []byte) (int, error) {
	w.log.Warn().Msg(string(trimNewline(p)))
	return len(p), nil
}

// promLogger carries promhttp's errors (a collector failing) to zerolog.
type promLogger struct{ log zerolog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error().Msg(fmt.Sprint(v...))
}

func trimNewline(p []byte) []byte {
	if n := len(p); n > 0 && p[n-1] == '\n' {
		return p[:n-1]
	}
	return p
}

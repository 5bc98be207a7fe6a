package admin

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// start serves reg on a free loopback port until the test ends.
func start(t *testing.T, reg *prometheus.Registry, ready func() error) *Server {
	t.Helper()
	s := New("127.0.0.1:0", reg, ready, zerolog.Nop())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

// get fetches path without keeping connections, so none outlive the test.
func get(t *testing.T, s *Server, method, path string) (int, string) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestMetrics(t *testing.T) {
	reg := NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "tandem_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	s := start(t, reg, nil)

	code, body := get(t, s, http.MethodGet, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("GET /metrics = %d", code)
	}
	for _, want := range []string{"tandem_test_total 3", "go_goroutines ", "process_start_time_seconds "} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics does not contain %q", want)
		}
	}
}

func TestHealthz(t *testing.T) {
	s := start(t, prometheus.NewRegistry(), func() error { return errors.New("not yet") })
	if code, body := get(t, s, http.MethodGet, "/healthz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /healthz = %d %q, want 200 ok while not ready", code, body)
	}
}

func TestReadyzFlips(t *testing.T) {
	var reason atomic.Pointer[error]
	notReady := errors.New("nats: not connected")
	reason.Store(&notReady)
	ready := func() error {
		if p := reason.Load(); p != nil {
			return *p
		}
		return nil
	}
	s := start(t, prometheus.NewRegistry(), ready)

	if code, body := get(t, s, http.MethodGet, "/readyz"); code != http.StatusServiceUnavailable || body != "nats: not connected\n" {
		t.Errorf("GET /readyz = %d %q, want 503 with the reason", code, body)
	}
	reason.Store(nil)
	if code, body := get(t, s, http.MethodGet, "/readyz"); code != http.StatusOK || body != "ok\n" {
		t.Errorf("GET /readyz = %d %q, want 200 ok", code, body)
	}
}

func TestOtherRequests(t *testing.T) {
	s := start(t, prometheus.NewRegistry(), nil)
	tests := []struct {
		method, path string
		want         int
	}{
		{http.MethodGet, "/", http.StatusNotFound},
		{http.MethodGet, "/debug/pprof/", http.StatusNotFound},
		{http.MethodGet, "/healthz/x", http.StatusNotFound},
		{http.MethodPost, "/healthz", http.StatusMethodNotAllowed},
		{http.MethodHead, "/readyz", http.StatusOK},
	}
	for _, tt := range tests {
		if code, _ := get(t, s, tt.method, tt.path); code != tt.want {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, code, tt.want)
		}
	}
}

func TestCloseStops(t *testing.T) {
	s := New("127.0.0.1:0", prometheus.NewRegistry(), nil, zerolog.Nop())
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		t.Fatalf("Addr() = %s, want the port chosen", addr)
	}
	if code, _ := get(t, s, http.MethodGet, "/healthz"); code != http.StatusOK {
		t.Fatalf("GET /healthz = %d", code)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.Dial("tcp", addr); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after Close", addr)
	}
	if err := s.Start(); !errors.Is(err, ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestStartTwice(t *testing.T) {
	s := start(t, prometheus.NewRegistry(), nil)
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestStartAddressInUse(t *testing.T) {
	s := start(t, prometheus.NewRegistry(), nil)
	other := New(s.Addr(), prometheus.NewRegistry(), nil, zerolog.Nop())
	if err := other.Start(); err == nil || !strings.Contains(err.Error(), "admin listen") {
		t.Errorf("Start on a used address = %v, want an admin listen error", err)
	}
	if err := other.Close(context.Background()); err != nil {
		t.Errorf("close of a never-started server = %v", err)
	}
}

// TestSlowClient: a client that never finishes its request headers is cut
// off after the read-header timeout.
func TestSlowClient(t *testing.T) {
	s := New("127.0.0.1:0", prometheus.NewRegistry(), nil, zerolog.Nop())
	s.srv.ReadHeaderTimeout = 100 * time.Millisecond
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})

	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("server did not close the slow connection: %v", err)
	}
}

// TestCloseDeadline: Close does not wait past ctx for a connection that
// holds on, and leaves no goroutine behind (goleak checks).
func TestCloseDeadline(t *testing.T) {
	s := New("127.0.0.1:0", prometheus.NewRegistry(), nil, zerolog.Nop())
	accepted := make(chan struct{}, 1)
	s.srv.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			accepted <- struct{}{}
		}
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /healthz HTTP/1.1\r\n"); err != nil {
		t.Fatal(err)
	}
	<-accepted // the server holds the connection, so Shutdown must wait
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close = %v, want the deadline exceeded", err)
	}
}

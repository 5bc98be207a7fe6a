package probe

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/config"
)

func check(c config.Check) config.Check {
	c.Name = "x"
	c.Timeout = 500 * time.Millisecond
	return c.WithDefaults()
}

func TestExec(t *testing.T) {
	r := Run(context.Background(), check(config.Check{Exec: `echo first; echo "node $TANDEM_NODE is $TANDEM_STATE"`}), Env{Node: "a", State: "active"})
	if !r.OK || r.Output != "node a is active" {
		t.Errorf("got %+v", r)
	}
	r = Run(context.Background(), check(config.Check{Exec: "echo spooler down; exit 3"}), Env{})
	if r.OK || r.Output != "exit 3: spooler down" {
		t.Errorf("got %+v", r)
	}
	r = Run(context.Background(), check(config.Check{Exec: "sleep 5"}), Env{})
	if r.OK || !strings.Contains(r.Output, "time limit") || r.Took > 3*time.Second {
		t.Errorf("got %+v", r)
	}
}

func TestHTTP(t *testing.T) {
	code := http.StatusOK
	hang := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-hang
		}
		w.WriteHeader(code)
	}))
	defer srv.Close()
	defer close(hang)
	if r := Run(context.Background(), check(config.Check{HTTP: srv.URL}), Env{}); !r.OK || r.Output != "HTTP 200 OK" {
		t.Errorf("got %+v", r)
	}
	code = http.StatusServiceUnavailable
	if r := Run(context.Background(), check(config.Check{HTTP: srv.URL}), Env{}); r.OK || r.Output != "HTTP 503 Service Unavailable" {
		t.Errorf("got %+v", r)
	}
	if r := Run(context.Background(), check(config.Check{HTTP: srv.URL + "/hang"}), Env{}); r.OK || !strings.Contains(r.Output, "no answer within") {
		t.Errorf("got %+v", r)
	}
}

func TestTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if r := Run(context.Background(), check(config.Check{TCP: addr}), Env{}); !r.OK {
		t.Errorf("got %+v", r)
	}
	ln.Close()
	if r := Run(context.Background(), check(config.Check{TCP: addr}), Env{}); r.OK || !strings.Contains(r.Output, "refused") {
		t.Errorf("got %+v", r)
	}
}

func TestLastLine(t *testing.T) {
	if got := LastLine("a\nb\n\n"); got != "b" {
		t.Errorf("got %q", got)
	}
	if got := LastLine(strings.Repeat("x", 500)); len(got) != MaxOutput {
		t.Errorf("len %d", len(got))
	}
}

package dashboard

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/pairtest"
)

// Run against a real NATS server with the node's event stream and no
// services: the page says what does not answer and lists the stored
// events; an event published while a browser watches reaches it over the
// stream; when Run ends, the open stream ends too.
func TestRunLoop(t *testing.T) {
	p := pairtest.Start(t, "print")
	nc, err := p.Master.Connect("dashboard test")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, p.Master.Domain())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := audit.EnsureOrigin(ctx, js, "print", pairtest.Master, audit.Retention{}); err != nil {
		t.Fatal(err)
	}
	publish := func(typ string) {
		e, err := event.New("print", pairtest.Master, "monitor", typ, 2, time.Now(), map[string]any{"reason": "test " + typ})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := e.Encode()
		if _, err := js.Publish(ctx, e.Subject(), b, jetstream.WithMsgID(e.ID)); err != nil {
			t.Fatal(err)
		}
	}
	publish(event.NodeStarted)

	d := New(Options{Pair: "print", Node: pairtest.Master, Conn: nc, JS: js, Access: Access{Loopback: true}, Wait: 300 * time.Millisecond})
	runCtx, stopRun := context.WithCancel(ctx)
	ran := make(chan struct{})
	go func() { _ = d.Run(runCtx); close(ran) }()
	defer func() { stopRun(); <-ran }()
	srv := httptest.NewServer(d.Handler())
	defer srv.Close()

	_, body := get(t, srv.URL+"/", nil)
	for _, want := range []string{"status: no node answers", "test tandem.node.started"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	await := func(what string, want string) {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the stream ended before %s", what)
				}
				if strings.Contains(l, want) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no %s on the stream", what)
			}
		}
	}
	await("first page", "test tandem.node.started")
	publish(event.PeerLost)
	await("page with the new event", "test tandem.peer.lost")

	stopRun()
	<-ran
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return // the stream ended with Run
			}
		case <-ctx.Done():
			t.Fatal("the event stream stays open after Run ended")
		}
	}
}

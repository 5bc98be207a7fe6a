package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/node"
	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// An event stream whose retention is shrunk behind the node's back (what
// the notifier's key could do before issue 12) is restored by the node and
// reported as critical: a tandem.audit.changed event, and tandem status
// (text and JSON) and tandem check name the change until the stream has
// stayed as restored for the hold time; then they are ok again.
func TestNodeRestoresChangedEventStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	hosts := map[string]string{"a": "print-a", "b": "print-b"}
	n := startMasterNode(ctx, t, func(c *config.Config) { c.Hosts, c.NATS.LeafListen = hosts, "127.0.0.1:-1" },
		func(n *node.Node) { n.AuditHold = 4 * time.Second })
	// The standby, so that a mirrors its events (a node makes the mirror of
	// a peer that answers, pkg/mirror).
	b := config.Default()
	b.Pair, b.Node, b.Role, b.DataDir = "p", "b", config.Standby, filepath.Join(t.TempDir(), "b")
	b.NATS.Listen, b.NATS.LeafListen, b.NATS.Peer = "127.0.0.1:-1", "", n.Server().LeafURL()
	b.Heart.Interval, b.Heart.Timeout = 100*time.Millisecond, 400*time.Millisecond
	b.Admin.Listen, b.Notifier.PushListen, b.Hosts = "127.0.0.1:0", "127.0.0.1:0", hosts
	startNode(t, ctx, b)
	url := n.Server().ClientURL()
	waitAudit(t, url, api.AuditOK, "")
	nc, err := n.Server().Connect("attacker")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, n.Server().Domain())
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.OriginConfig("p", "a", audit.Retention{MaxAge: time.Second})
	cfg.Duplicates = time.Second
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := js.Stream(ctx, subject.EventStream("p", "a"))
		if err != nil {
			t.Fatal(err)
		}
		_, merr := st.GetLastMsgForSubject(ctx, subject.Event("p", "a", event.AuditChanged))
		if st.CachedInfo().Config.MaxAge == config.Default().Audit.MaxAge && merr == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restored: max_age %v, audit.changed event: %v", st.CachedInfo().Config.MaxAge, merr)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitAudit(t, url, api.AuditCritical, "tandem_events_p_a: max_age is 1s, want "+config.Default().Audit.MaxAge.String())
	// The mirror of the peer's stream, deleted: named too, in the same
	// incident, and restored.
	for {
		if _, err := js.Stream(ctx, subject.EventStream("p", "b")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a made no mirror of b's events")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := js.DeleteStream(ctx, subject.EventStream("p", "b")); err != nil {
		t.Fatal(err)
	}
	waitAudit(t, url, api.AuditCritical, "tandem_events_p_b: deleted")
	if _, err := js.Stream(ctx, subject.EventStream("p", "b")); err != nil {
		t.Fatalf("the mirror is not back: %v", err)
	}
	waitAudit(t, url, api.AuditOK, "")
}

// waitAudit polls tandem status --json until node a's audit state is want
// (and, if change is not "", names it), then checks that tandem status and
// tandem check say the same.
func waitAudit(t *testing.T, url, want, change string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last string
	for {
		var out, errOut bytes.Buffer
		code := run(context.Background(), []string{"status", "--pair", "p", "--server", url, "--timeout", "1s", "--json"}, &out, &errOut)
		last = out.String() + errOut.String()
		var ps struct {
			Nodes []struct {
				Node  string          `json:"node"`
				Audit *api.AuditState `json:"audit"`
			} `json:"nodes"`
		}
		if code == 0 && json.Unmarshal(out.Bytes(), &ps) == nil {
			for _, nd := range ps.Nodes {
				if nd.Node == "a" && nd.Audit != nil && nd.Audit.Status == want && strings.Contains(strings.Join(nd.Audit.Changes, "\n"), change) {
					checkAuditCLI(t, url, want, change)
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("audit state of a not %s (%q) within 30 s; last status: %s", want, change, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func checkAuditCLI(t *testing.T, url, want, change string) {
	t.Helper()
	var out, errOut bytes.Buffer
	run(context.Background(), []string{"status", "--pair", "p", "--server", url, "--timeout", "1s"}, &out, &errOut)
	text := out.String()
	out.Reset()
	code := run(context.Background(), []string{"check", "--pair", "p", "--server", url, "--timeout", "1s"}, &out, &errOut)
	switch want {
	case api.AuditCritical:
		if !strings.Contains(text, "audit a: CRITICAL") || !strings.Contains(text, change) {
			t.Errorf("tandem status does not show the change:\n%s", text)
		}
		if code != 2 || !strings.Contains(out.String(), "audit streams changed on a (") || !strings.Contains(out.String(), change) {
			t.Errorf("tandem check: exit %d, %q; want 2 naming %q", code, out.String(), change)
		}
	case api.AuditOK:
		if !strings.Contains(text, "audit a: ok") {
			t.Errorf("tandem status:\n%s", text)
		}
		if strings.Contains(out.String(), "audit") {
			t.Errorf("tandem check: exit %d, %q; want no audit problem", code, out.String())
		}
	}
}

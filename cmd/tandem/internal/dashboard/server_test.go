package dashboard

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
)

// served is a dashboard with one page built from a fixed view, behind an
// httptest server (no NATS: the handlers only read the page).
func served(t *testing.T, access Access) (*Dashboard, *httptest.Server) {
	t.Helper()
	d := New(Options{Pair: "print", Node: "b", Access: access, Log: zerolog.Nop()})
	evs := []event.Envelope{
		ev(t, "a", event.NodeActivated, 2, 0, map[string]any{"reason": "F2: no peer heard", "outage": false}),
		ev(t, "b", event.PeerLost, 2, time.Second, map[string]any{"reason": "link closed"}),
	}
	d.src.events = evs
	d.publish(Build(Input{Pair: "print", Self: "b", Now: t0, Events: evs, Status: []api.StatusReply{{
		Pair: "print", Self: api.NodeStatus{Node: "b", Role: "standby", State: "passive", Epoch: 2},
		Peer: &api.NodeStatus{Node: "a", Role: "master", State: "active", Epoch: 2, Reachable: true}}}}))
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(srv.Close)
	return d, srv
}

func get(t *testing.T, url string, set func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if set != nil {
		set(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// The page is rendered on the server: both nodes with their data-node and
// data-state attributes; ?type= filters the events without JavaScript; the
// export sends the events as JSON lines.
func TestPageAndExport(t *testing.T) {
	_, srv := served(t, Access{Loopback: true})
	resp, body := get(t, srv.URL+"/", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /: %d", resp.StatusCode)
	}
	for _, want := range []string{`data-node="a" data-state="active"`, `data-node="b" data-state="passive"`, "tandem.peer.lost", "tandem.node.activated"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(body, `id="actions"`) {
		t.Errorf("actions shown without credentials")
	}
	_, body = get(t, srv.URL+"/?type=tandem.peer.lost", nil)
	if !strings.Contains(body, `<tr data-type="tandem.peer.lost">`) || strings.Contains(body, `<tr data-type="tandem.node.activated">`) {
		t.Errorf("?type= does not filter the events")
	}
	resp, body = get(t, srv.URL+"/events.jsonl?type=tandem.peer.lost", nil)
	lines := strings.Split(strings.TrimSpace(body), "\n")
	if resp.StatusCode != 200 || len(lines) != 1 || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("export: %d %q %q", resp.StatusCode, resp.Header.Get("Content-Disposition"), body)
	}
	if e, err := event.Decode([]byte(lines[0])); err != nil || e.Type != event.PeerLost {
		t.Errorf("export line %q: %v", lines[0], err)
	}
	if resp, _ := get(t, srv.URL+"/nothing", nil); resp.StatusCode != 404 {
		t.Errorf("GET /nothing: %d", resp.StatusCode)
	}
}

// The event stream sends the newest page at once, then each new one.
func TestSSE(t *testing.T) {
	d, srv := served(t, Access{Loopback: true})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	rd := bufio.NewReader(resp.Body)
	frame := func() string {
		var b strings.Builder
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				t.Fatalf("read the stream: %v", err)
			}
			if line == "\n" && strings.Contains(b.String(), "data:") {
				return b.String()
			}
			b.WriteString(line)
		}
	}
	if f := frame(); !strings.Contains(f, "event: view") || !strings.Contains(f, `data-state="passive"`) {
		t.Fatalf("first frame %q", f)
	}
	v, _ := d.current()
	v.view.Nodes[1].State = "active"
	d.publish(v.view)
	if f := frame(); !strings.Contains(f, `data-node="b" data-state="active"`) {
		t.Fatalf("second frame %q", f)
	}
}

// Access: open on loopback without credentials, refused beyond it; with
// credentials every request needs a token or a user's password.
func TestAccess(t *testing.T) {
	_, open := served(t, Access{Loopback: false})
	if resp, body := get(t, open.URL+"/", nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "admin.tokens_file") {
		t.Errorf("no credentials beyond loopback: %d %q", resp.StatusCode, body)
	}
	dir := t.TempDir()
	tokens, users := filepath.Join(dir, "tokens"), filepath.Join(dir, "users")
	os.WriteFile(tokens, []byte("# dashboard\ns3cret-token\n"), 0o600)
	os.WriteFile(users, []byte("ops:pa:ss\n"), 0o600)
	a, err := LoadAccess("0.0.0.0:8080", tokens, users)
	if err != nil || a.Loopback || !a.Secured() || a.Users["ops"] != "pa:ss" {
		t.Fatalf("LoadAccess: %+v %v", a, err)
	}
	_, srv := served(t, a)
	for name, c := range map[string]struct {
		set  func(*http.Request)
		code int
	}{
		"none":                        {nil, 401},
		"bad token":                   {func(r *http.Request) { r.Header.Set("Authorization", "Bearer nope") }, 401},
		"token":                       {func(r *http.Request) { r.Header.Set("Authorization", "Bearer s3cret-token") }, 200},
		"token, scheme in lower case": {func(r *http.Request) { r.Header.Set("Authorization", "bearer s3cret-token") }, 200},
		"basic":                       {func(r *http.Request) { r.SetBasicAuth("ops", "pa:ss") }, 200},
		"bad password":                {func(r *http.Request) { r.SetBasicAuth("ops", "pass") }, 401},
		"unknown user":                {func(r *http.Request) { r.SetBasicAuth("root", "pa:ss") }, 401},
	} {
		if resp, body := get(t, srv.URL+"/", c.set); resp.StatusCode != c.code {
			t.Errorf("%s: %d, want %d", name, resp.StatusCode, c.code)
		} else if c.code == 200 && (!strings.Contains(body, `id="actions"`) || !strings.Contains(body, "goes through the master (a)")) {
			t.Errorf("%s: with credentials the standby's page lacks the actions or the switchover's explanation", name)
		}
	}
	if _, err := LoadAccess("127.0.0.1:1", filepath.Join(dir, "missing"), ""); err == nil {
		t.Errorf("a missing tokens file is accepted")
	}
	os.WriteFile(users, []byte("nopassword\n"), 0o600)
	if _, err := LoadAccess("127.0.0.1:1", "", users); err == nil {
		t.Errorf("a users line without a password is accepted")
	}
}

// Actions need credentials and a confirmation; both refusals change nothing
// (the dashboard has no NATS connection here: reaching it would panic).
func TestActionRefusals(t *testing.T) {
	_, srv := served(t, Access{Loopback: true})
	post := func(form url.Values, set func(*http.Request)) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+"/action", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		if set != nil {
			set(req)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := post(url.Values{"verb": {"switchover"}, "confirm": {"yes"}}, nil); code != http.StatusConflict || !strings.Contains(body, "credentials") {
		t.Errorf("action without credentials: %d %s", code, body)
	}
	if code, _ := post(url.Values{"verb": {"switchover"}, "confirm": {"yes"}}, func(r *http.Request) {
		r.Header.Set("Sec-Fetch-Site", "cross-site")
	}); code != http.StatusForbidden {
		t.Errorf("cross-site action: %d, want 403", code)
	}
	_, sec := served(t, Access{Tokens: []string{"tok"}})
	req, _ := http.NewRequest("POST", sec.URL+"/action", strings.NewReader("verb=switchover"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Request.URL.Query().Get("notice"); !strings.Contains(loc, "not confirmed") {
		t.Errorf("unconfirmed action: ended at %s", resp.Request.URL)
	}
}

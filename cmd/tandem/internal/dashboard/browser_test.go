package dashboard_test

// The dashboard in a real browser (Debian's chromium, driven through
// chromedriver) against a pair of real `tandem node` processes: the page on
// the standby shows the master active; kill -9 of the master's process while
// the page is open, and the same page — not reloaded — shows the standby
// active, that it lost its peer, and the failover's timeline. With
// JavaScript disabled the page is a static snapshot of both nodes.
//
// Every wait is bounded generously (a loaded 2-core machine runs two nodes
// and a browser); no bound is a statement about speed.

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/internal/proctest"
)

func TestMain(m *testing.M) { proctest.Main(m) }

// ArtifactsEnv names the directory the browser test saves its screenshots
// in; the default is tandem-test-artifacts in the temporary directory.
const ArtifactsEnv = "TEST_ARTIFACTS_DIR"

const pageWait = 90 * time.Second

func artifacts(t *testing.T) string {
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "tandem-test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBrowserFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes and a browser")
	}
	chromium, chromedriver, err := browserPaths()
	if err != nil {
		t.Skipf("no browser: %v", err)
	}
	p, _ := proctest.StartActive(t, proctest.Options{
		Pair: "print", Master: "a", Standby: "b", Wait: 60 * time.Second,
		Heartbeat: proctest.Heartbeat{Interval: 100 * time.Millisecond, Timeout: 3 * time.Second, Discovery: 2 * time.Second},
	})
	url := "http://" + p.Node("b").AdminAddr + "/"
	d := startDriver(t, chromedriver)

	// Without JavaScript: the server's snapshot lists both nodes.
	static := d.newSession(t, chromium, 1000, 1200, false)
	static.open(url)
	static.await(pageWait, nodeStates(static, map[string]string{"a": "active", "b": "passive"}))
	if src := static.source(); !strings.Contains(src, "static snapshot") {
		t.Errorf("without JavaScript the page does not say it is a static snapshot")
	}

	// With JavaScript: live over SSE.
	s := d.newSession(t, chromium, 1100, 1500, true)
	s.open(url)
	s.await(pageWait, nodeStates(s, map[string]string{"a": "active", "b": "passive"}))
	s.await(pageWait, connLive(s))
	if _, err := s.script("window.tandemNotReloaded = true;"); err != nil {
		t.Fatalf("mark the page: %v", err)
	}

	p.Kill9("a")
	s.await(pageWait, nodeStates(s, map[string]string{"b": "active"}))
	s.await(pageWait, func() (string, error) {
		el, err := s.find(`#timeline[data-node="b"]`)
		if el == "" || err != nil {
			return "the failover timeline of b", err
		}
		for _, step := range []string{"detection", "activation", "notification"} {
			if el, err := s.find(`#timeline li[data-step="` + step + `"]`); el == "" || err != nil {
				return "the timeline's step " + step, err
			}
		}
		if el, err := s.find("#peer-lost"); el == "" || err != nil {
			return "the notice that b lost its peer", err
		}
		return "", nil
	})
	if v, err := s.script("return window.tandemNotReloaded === true;"); err != nil || v != true {
		t.Fatalf("the page was reloaded (mark %v, %v): it must update in place", v, err)
	}
	if el, _ := s.find("#peer-lost"); el != "" {
		if txt, _ := s.text(el); !strings.Contains(txt, "lost its peer a") {
			t.Errorf("the peer-lost notice says %q", txt)
		}
	}
	dir := artifacts(t)
	s.screenshot(filepath.Join(dir, "dashboard-failover.png"))

	// The same page on a phone's width.
	if err := s.d.call("POST", s.path("/window/rect"), map[string]int{"width": 390, "height": 1600}, nil); err == nil {
		s.screenshot(filepath.Join(dir, "dashboard-failover-phone.png"))
	}

	// The static snapshot after the failover still lists both nodes.
	static.open(url)
	static.await(pageWait, nodeStates(static, map[string]string{"b": "active"}))
	if el, _ := static.find(`[data-node="a"]`); el == "" {
		t.Errorf("without JavaScript, after the failover, the page does not list a")
	}
}

// nodeStates waits until the page shows each node in its state.
func nodeStates(s *session, want map[string]string) func() (string, error) {
	return func() (string, error) {
		for node, state := range want {
			el, err := s.find(fmt.Sprintf(`[data-node=%q][data-state]`, node))
			if el == "" || err != nil {
				return "node " + node, err
			}
			got, err := s.attr(el, "data-state")
			if err != nil {
				return "node " + node, err
			}
			if got != state {
				return fmt.Sprintf("node %s %s (shows %s)", node, state, got), nil
			}
		}
		return "", nil
	}
}

// connLive waits until the script says the event stream is connected.
func connLive(s *session) func() (string, error) {
	return func() (string, error) {
		el, err := s.find("#conn.ok")
		if el == "" || err != nil {
			return "the live connection", err
		}
		return "", nil
	}
}

// TestActions: the dashboard's actions on real nodes with credentials go
// through the CLI's admin verbs and meet its refusals: a switchover offered
// on the standby is refused naming the master; maintenance on and off, and
// a switchover through the master, work.
func TestActions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	dir := t.TempDir()
	tokens, users := filepath.Join(dir, "tokens"), filepath.Join(dir, "users")
	if err := os.WriteFile(tokens, []byte("dash-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(users, []byte("ops:pass-word\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, st := proctest.StartActive(t, proctest.Options{
		Pair: "print", Master: "a", Standby: "b", Wait: 60 * time.Second,
		Heartbeat: proctest.Heartbeat{Interval: 100 * time.Millisecond, Timeout: 3 * time.Second, Discovery: 2 * time.Second},
		Extra: func(string) map[string]any {
			return map[string]any{"admin.tokens_file": tokens, "admin.users_file": users}
		},
	})
	act := func(node, verb string) (int, string) {
		t.Helper()
		form := "verb=" + verb + "&confirm=yes"
		req, _ := http.NewRequest("POST", "http://"+p.Node(node).AdminAddr+"/action", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer dash-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s on %s: %v", verb, node, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if resp, _ := http.Get("http://" + p.Node("a").AdminAddr + "/"); resp != nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the page without the token: %d, want 401", resp.StatusCode)
		}
	}
	if code, body := act("b", "switchover"); code != http.StatusConflict || !strings.Contains(body, `"ok":false`) || !strings.Contains(body, "master a") {
		t.Errorf("switchover on the standby: %d %s, want a refusal naming the master", code, body)
	} else {
		t.Logf("switchover on the standby: %s", body)
	}
	if code, body := act("a", "maintenance-on"); code != 200 {
		t.Fatalf("maintenance on: %d %s", code, body)
	}
	p.WaitStatus("maintenance on", pageWait, func(s proctest.Status) bool {
		n, ok := s.Get("a")
		return ok && n.Maintenance
	})
	if code, body := act("a", "maintenance-off"); code != 200 {
		t.Fatalf("maintenance off: %d %s", code, body)
	}
	for _, c := range [][2]string{{"repl-pause", "replication paused"}, {"repl-resume", "replication resumed"}} {
		if code, body := act("a", c[0]); code != 200 || !strings.Contains(body, c[1]) {
			t.Errorf("%s: %d %s", c[0], code, body)
		}
	}
	if chromium, chromedriver, err := browserPaths(); err == nil {
		confirmInBrowser(t, chromium, chromedriver, p.Node("a").AdminAddr)
		if code, body := act("a", "maintenance-off"); code != 200 {
			t.Fatalf("maintenance off: %d %s", code, body)
		}
	} else {
		t.Logf("the actions' dialogs are not tried in a browser: %v", err)
	}
	if code, body := act("a", "switchover"); code != 200 {
		t.Fatalf("switchover through the master: %d %s", code, body)
	}
	p.WaitStatus("b active after the switchover", pageWait, func(s proctest.Status) bool {
		return s.Active != nil && *s.Active == "b" && s.Epoch > st.Epoch
	})
}

// confirmInBrowser switches maintenance on from the master's page in a
// browser logged in with basic auth: the button asks for a confirmation,
// the answer is shown, and the live page shows maintenance on. It leaves
// to the caller to switch it off.
func confirmInBrowser(t *testing.T, chromium, chromedriver, addr string) {
	t.Helper()
	s := startDriver(t, chromedriver).newSession(t, chromium, 1000, 1400, true)
	s.open("http://ops:pass-word@" + addr + "/")
	s.await(pageWait, connLive(s))
	btn, err := s.find(`form.action input[value="maintenance-on"] ~ button`)
	if btn == "" || err != nil {
		t.Fatalf("no maintenance-on button: %v", err)
	}
	if err := s.click(btn); err != nil {
		t.Fatal(err)
	}
	var text string
	s.await(pageWait, func() (string, error) {
		var err error
		if text, err = s.acceptAlert(); err != nil {
			return "the confirmation dialog", err
		}
		return "", nil
	})
	if !strings.Contains(text, "maintenance on") {
		t.Errorf("the dialog says %q", text)
	}
	s.await(pageWait, func() (string, error) {
		el, err := s.find("#action-result")
		if el == "" || err != nil {
			return "the action's result", err
		}
		if got, err := s.text(el); err != nil || !strings.Contains(got, "maintenance on for") {
			return fmt.Sprintf("the action's result (shows %q)", got), err
		}
		return "", nil
	})
	s.await(pageWait, func() (string, error) {
		el, err := s.find(`[data-node="a"] .maint`)
		if el == "" || err != nil {
			return "a's maintenance", err
		}
		if got, err := s.text(el); err != nil || !strings.HasPrefix(got, "on") {
			return fmt.Sprintf("a's maintenance on (shows %q)", got), err
		}
		return "", nil
	})
}

package dashboard_test

// A small W3C WebDriver client for chromedriver: enough to open a page,
// find elements, read attributes, run a script and take a screenshot. It
// keeps the browser test free of Python and of a Selenium dependency.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// elementKey is the W3C name of an element reference in JSON.
const elementKey = "element-6066-11e4-a52e-4f735466cecf"

// driver is a running chromedriver.
type driver struct {
	url    string
	client *http.Client
}

// browserPaths finds chromium and chromedriver (Debian's packages), or says
// why not.
func browserPaths() (chromium, chromedriver string, err error) {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, e := exec.LookPath(name); e == nil {
			chromium = p
			break
		}
	}
	chromedriver, e := exec.LookPath("chromedriver")
	switch {
	case chromium == "":
		return "", "", errors.New("chromium is not installed (make apt-deps installs Debian's chromium and chromium-driver)")
	case e != nil:
		return "", "", errors.New("chromedriver is not installed (make apt-deps installs Debian's chromium-driver)")
	}
	return chromium, chromedriver, nil
}

// startDriver runs chromedriver on a free loopback port in its own process
// group, stopped (with the browsers it started) at the test's end.
func startDriver(t *testing.T, path string) *driver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	logf, err := os.Create(filepath.Join(t.TempDir(), "chromedriver.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, "--port="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // chromedriver and the browsers it started
		<-done
		logf.Close()
	})
	d := &driver{url: fmt.Sprintf("http://127.0.0.1:%d", port), client: &http.Client{Timeout: 60 * time.Second}}
	t.Cleanup(d.client.CloseIdleConnections)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		if err := d.call("GET", "/status", nil, &st); err == nil && st.Ready {
			return d
		}
		select {
		case <-done:
			t.Fatalf("chromedriver exited at start (log %s)", logf.Name())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("chromedriver did not become ready within 30s")
		}
	}
}

// call sends one command and decodes its "value" into out (if not nil).
func (d *driver) call(method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, d.url+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(env.Value, &e)
		return &wdError{Code: e.Error, Message: e.Message}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(env.Value, out)
}

// wdError is a WebDriver error ("no such element", …).
type wdError struct{ Code, Message string }

func (e *wdError) Error() string { return e.Code + ": " + firstLine(e.Message) }

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

// session is one browser.
type session struct {
	t  *testing.T
	d  *driver
	id string
}

// newSession starts a headless chromium with a window of w × h; js false
// disables JavaScript.
func (d *driver) newSession(t *testing.T, chromium string, w, h int, js bool) *session {
	t.Helper()
	opts := map[string]any{
		"binary": chromium,
		"args": []string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
			"--no-first-run", "--disable-extensions", "--user-data-dir=" + t.TempDir(), fmt.Sprintf("--window-size=%d,%d", w, h)},
	}
	if !js {
		opts["prefs"] = map[string]any{"profile.managed_default_content_settings.javascript": 2}
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome", "goog:chromeOptions": opts, "pageLoadStrategy": "normal"}}}
	var out struct {
		SessionID string `json:"sessionId"`
	}
	if err := d.call("POST", "/session", caps, &out); err != nil {
		t.Fatalf("start a browser session: %v", err)
	}
	s := &session{t: t, d: d, id: out.SessionID}
	t.Cleanup(func() { _ = d.call("DELETE", "/session/"+s.id, nil, nil) })
	return s
}

func (s *session) path(p string) string { return "/session/" + s.id + p }

func (s *session) open(url string) {
	s.t.Helper()
	if err := s.d.call("POST", s.path("/url"), map[string]string{"url": url}, nil); err != nil {
		s.t.Fatalf("open %s: %v", url, err)
	}
}

// find returns the element matching the CSS selector, or "" when there is
// none.
func (s *session) find(css string) (string, error) {
	var el map[string]string
	err := s.d.call("POST", s.path("/element"), map[string]string{"using": "css selector", "value": css}, &el)
	var we *wdError
	if errors.As(err, &we) && (we.Code == "no such element" || we.Code == "stale element reference") {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return el[elementKey], nil
}

func (s *session) attr(el, name string) (string, error) {
	var v *string
	if err := s.d.call("GET", s.path("/element/"+el+"/attribute/"+name), nil, &v); err != nil {
		return "", err
	}
	if v == nil {
		return "", nil
	}
	return *v, nil
}

func (s *session) text(el string) (string, error) {
	var v string
	err := s.d.call("GET", s.path("/element/"+el+"/text"), nil, &v)
	return v, err
}

func (s *session) click(el string) error {
	return s.d.call("POST", s.path("/element/"+el+"/click"), map[string]any{}, nil)
}

// acceptAlert accepts the open dialog (window.confirm), returning its text.
func (s *session) acceptAlert() (string, error) {
	var text string
	if err := s.d.call("GET", s.path("/alert/text"), nil, &text); err != nil {
		return "", err
	}
	return text, s.d.call("POST", s.path("/alert/accept"), map[string]any{}, nil)
}

// script runs JavaScript in the page and returns its result.
func (s *session) script(js string) (any, error) {
	var v any
	err := s.d.call("POST", s.path("/execute/sync"), map[string]any{"script": js, "args": []any{}}, &v)
	return v, err
}

func (s *session) source() string {
	var v string
	if err := s.d.call("GET", s.path("/source"), nil, &v); err != nil {
		s.t.Fatalf("page source: %v", err)
	}
	return v
}

// screenshot saves a PNG of the window to path.
func (s *session) screenshot(path string) {
	s.t.Helper()
	var b64 string
	if err := s.d.call("GET", s.path("/screenshot"), nil, &b64); err != nil {
		s.t.Errorf("screenshot: %v", err)
		return
	}
	png, err := base64.StdEncoding.DecodeString(b64)
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		s.t.Errorf("screenshot %s: %v", path, err)
		return
	}
	s.t.Logf("screenshot: %s", path)
}

// await polls cond (which says what it still waits for) until it returns
// "", failing the test after limit.
func (s *session) await(limit time.Duration, cond func() (string, error)) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	for {
		missing, err := cond()
		if err == nil && missing == "" {
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				missing += fmt.Sprintf(" (last error: %v)", err)
			}
			s.t.Fatalf("after %v the page still lacks: %s", limit, missing)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

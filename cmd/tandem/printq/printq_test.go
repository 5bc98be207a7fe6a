package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/pairtest"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// waitTimeout bounds every wait for printq to follow a change.
const waitTimeout = 10 * time.Second

// printq starts before the state bucket exists, serves nothing while
// another node is active or nobody is known to be, accepts and lists jobs
// while its node is active, and stops again when the node is not.
func TestJobsFollowTheNodeState(t *testing.T) {
	srv := startNATS(t, t.TempDir(), "127.0.0.1:-1")
	dbPath := filepath.Join(t.TempDir(), "printq.db")
	base := startPrintq(t, dbPath, srv.ClientURL())

	wantNotActive(t, base, "")
	kv := stateBucket(t, srv)
	putState(t, kv, "b", 1)
	waitNotActive(t, base, "b", 1)
	if code, body := call(t, "POST", base+"/jobs", `{"printer":"Floor3","document":"a.pdf"}`); code != http.StatusServiceUnavailable {
		t.Fatalf("POST on the standby: %d %s", code, body)
	}
	wantRows(t, dbPath, 0)

	putState(t, kv, "a", 2)
	waitReady(t, base)
	j := postJob(t, base, `{"printer":"Floor3","document":"report.pdf","copies":2}`)
	if j.Printer != "Floor3" || j.Document != "report.pdf" || j.Copies != 2 || j.State != "queued" || j.Node != "a" || len(j.ID) != 32 {
		t.Fatalf("created job: %+v", j)
	}
	second := postJob(t, base, `{"printer":"Floor3","document":"b.pdf"}`)
	if second.Copies != 1 {
		t.Fatalf("copies not given: %d, want 1", second.Copies)
	}
	wantList(t, base, 2, j, second)
	wantGet(t, base, j)
	if code, _ := call(t, "GET", base+"/jobs/nosuchjob", ""); code != http.StatusNotFound {
		t.Fatalf("GET of a missing job: %d, want 404", code)
	}
	wantRows(t, dbPath, 2)

	wantBadRequests(t, base)
	wantRows(t, dbPath, 2)

	putState(t, kv, "b", 3)
	waitNotActive(t, base, "b", 3)
	if code, body := call(t, "POST", base+"/jobs", `{"printer":"Floor3","document":"c.pdf"}`); code != http.StatusServiceUnavailable {
		t.Fatalf("POST after the switch: %d %s", code, body)
	}
	wantRows(t, dbPath, 2)

	if err := kv.Delete(t.Context(), "p"); err != nil {
		t.Fatal(err)
	}
	waitNotActive(t, base, "", 0)
}

// A lost NATS connection stops the serving at once (printq cannot see the
// pair; the other node may be taking over); after the server comes back the
// watch resumes from the current state.
func TestStateSurvivesNATSRestart(t *testing.T) {
	store := t.TempDir()
	srv := startNATS(t, store, "127.0.0.1:-1")
	addr := strings.TrimPrefix(srv.ClientURL(), "nats://")
	dbPath := filepath.Join(t.TempDir(), "printq.db")
	base := startPrintq(t, dbPath, srv.ClientURL())
	putState(t, stateBucket(t, srv), "a", 1)
	waitReady(t, base)

	postJob(t, base, `{"printer":"Floor3","document":"before-nats-went-down.pdf"}`)
	srv.Shutdown()
	waitNotActive(t, base, "", 0)
	wantRows(t, dbPath, 1)

	srv = startNATS(t, store, addr)
	js, err := jetstream.New(clientOf(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := js.KeyValue(t.Context(), subject.StateBucket)
	if err != nil {
		t.Fatal(err)
	}
	waitReady(t, base) // the stored state again: a active
	putState(t, bucket, "b", 2)
	waitNotActive(t, base, "b", 2)
}

// run: one line on stderr and status 1 for bad flags or a database it
// cannot open; flags from the environment; status 0 at a signal.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	env := func(m map[string]string) func(string) (string, bool) {
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	bad := []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"--pair", "p", "--node", "a"}, nil, "--db is required"},
		{[]string{"--db", "x.db", "--pair", "p", "--node", "A_1"}, nil, `node name "A_1"`},
		{[]string{"--db", "x.db", "--node", "a"}, map[string]string{"PRINTQ_PAIR": "P"}, `pair name "P"`},
		{[]string{"--db", "x.db", "--pair", "p", "--node", "a", "--colour"}, nil, "flag provided but not defined: -colour"},
		{[]string{"--db", "x.db", "--pair", "p", "--node", "a"}, map[string]string{"PRINTQ_LOG_FORMAT": "xml"}, "--log-format"},
		{[]string{"--db", filepath.Join(dir, "missing", "x.db"), "--pair", "p", "--node", "a", "--listen", "127.0.0.1:0"}, nil, "open database"},
	}
	for _, c := range bad {
		var stderr bytes.Buffer
		if code := run(t.Context(), c.args, env(c.env), &stderr); code != 1 {
			t.Errorf("%q: status %d, want 1", c.args, code)
		}
		if out := stderr.String(); !strings.Contains(out, c.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%q: stderr %q, want one line with %q", c.args, out, c.want)
		}
	}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	vars := map[string]string{"PRINTQ_DB": filepath.Join(dir, "printq.db"), "PRINTQ_PAIR": "p",
		"PRINTQ_NODE": "a", "PRINTQ_LISTEN": "127.0.0.1:0", "PRINTQ_NATS": "nats://127.0.0.1:1"}
	go func() { done <- run(ctx, nil, env(vars), &stderr) }()
	poll(t, "printq to serve", func() error {
		if !strings.Contains(stderr.String(), "printq listening") {
			return errors.New("no listening line on stderr")
		}
		return nil
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("status %d at a signal, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(waitTimeout):
		t.Fatal("printq did not stop")
	}
	if !strings.Contains(stderr.String(), "printq stopped") {
		t.Fatalf("no stop line; stderr:\n%s", stderr.String())
	}
}

func wantBadRequests(t *testing.T, base string) {
	t.Helper()
	long := strings.Repeat("x", 201)
	cases := []struct{ body, want string }{
		{`{"document":"a.pdf","copies":1}`, "printer"},
		{`{"printer":"` + long + `","document":"a.pdf"}`, "printer"},
		{`{"printer":"Floor3","document":""}`, "document"},
		{`{"printer":"Floor3","document":"a.pdf","copies":0}`, "copies"},
		{`{"printer":"Floor3","document":"a.pdf","copies":1000}`, "copies"},
		{`{"printer":"Floor3","document":"a.pdf","copies":"2"}`, "copies"},
		{`{"printer":"Floor3","document":"a.pdf","colour":true}`, "colour"},
		{`{"printer":"Floor3","document":"` + strings.Repeat("x", maxBody) + `"}`, "body: larger than 65536 bytes"},
		{`print this please`, "body: not a JSON object"},
		{``, "body: not a JSON object"},
		{`["Floor3"]`, "body: not a JSON object"},
		{`{"printer":"Floor3","document":"a.pdf"} {}`, "body: more than one JSON value"},
	}
	for _, c := range cases {
		code, body := call(t, "POST", base+"/jobs", c.body)
		var e struct{ Error string }
		json.Unmarshal(body, &e)
		if code != http.StatusBadRequest || !strings.Contains(e.Error, c.want) {
			t.Errorf("POST %.60q: %d %.200s, want 400 with %q", c.body, code, body, c.want)
		}
	}
}

func wantList(t *testing.T, base string, epoch uint64, want ...job) {
	t.Helper()
	code, body := call(t, "GET", base+"/jobs", "")
	var got struct {
		Node  string
		Epoch uint64
		Jobs  []job
	}
	if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil {
		t.Fatalf("GET /jobs: %d %s", code, body)
	}
	if got.Node != "a" || got.Epoch != epoch || len(got.Jobs) != len(want) {
		t.Fatalf("GET /jobs: %s, want node a, epoch %d, %d jobs", body, epoch, len(want))
	}
	for i := range want {
		if got.Jobs[i] != want[i] {
			t.Fatalf("job %d: %+v, want %+v", i, got.Jobs[i], want[i])
		}
	}
}

func wantGet(t *testing.T, base string, want job) {
	t.Helper()
	code, body := call(t, "GET", base+"/jobs/"+want.ID, "")
	var got job
	if err := json.Unmarshal(body, &got); code != http.StatusOK || err != nil || got != want {
		t.Fatalf("GET /jobs/%s: %d %s, want %+v", want.ID, code, body, want)
	}
}

func postJob(t *testing.T, base, body string) job {
	t.Helper()
	code, out := call(t, "POST", base+"/jobs", body)
	var j job
	if err := json.Unmarshal(out, &j); code != http.StatusCreated || err != nil {
		t.Fatalf("POST /jobs %s: %d %s", body, code, out)
	}
	return j
}

// wantNotActive checks that /jobs and /readyz refuse, naming active ("" when
// unknown).
func wantNotActive(t *testing.T, base, active string) {
	t.Helper()
	if err := notActive(t, base, active, 0); err != nil {
		t.Fatal(err)
	}
}

// waitNotActive waits until /jobs and /readyz refuse, naming active at epoch.
func waitNotActive(t *testing.T, base, active string, epoch uint64) {
	t.Helper()
	poll(t, "printq to refuse for node "+active, func() error { return notActive(t, base, active, epoch) })
}

func notActive(t *testing.T, base, active string, epoch uint64) error {
	t.Helper()
	code, body := call(t, "GET", base+"/jobs", "")
	var got struct {
		Error  string
		Active *string
		Epoch  uint64
	}
	json.Unmarshal(body, &got)
	named := got.Active == nil && active == "" || got.Active != nil && *got.Active == active
	if code != http.StatusServiceUnavailable || !named || got.Epoch != epoch || got.Error != "node a is not active" {
		return fmt.Errorf("GET /jobs: %d %s", code, body)
	}
	if code, body := call(t, "GET", base+"/readyz", ""); code != http.StatusServiceUnavailable {
		return fmt.Errorf("GET /readyz: %d %s", code, body)
	}
	return nil
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	poll(t, "printq to be ready", func() error {
		if code, body := call(t, "GET", base+"/readyz", ""); code != http.StatusOK || !strings.Contains(string(body), `"active":true`) {
			return fmt.Errorf("GET /readyz: %d %s", code, body)
		}
		return nil
	})
	if code, _ := call(t, "GET", base+"/healthz", ""); code != http.StatusOK {
		t.Fatalf("healthz: %d", code)
	}
}

func wantRows(t *testing.T, dbPath string, want int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+dbPath+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	var mode string
	if err := db.QueryRow(`SELECT count(*) FROM jobs WHERE node = 'a'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if n != want || mode != "wal" {
		t.Fatalf("%d rows in the database, journal mode %s; want %d, wal", n, mode, want)
	}
}

// startPrintq runs printq for node a of pair p until the test ends and
// returns its base URL.
func startPrintq(t *testing.T, dbPath, natsURL string) string {
	t.Helper()
	log := pairtest.Logger(t)
	ctx, cancel := context.WithCancel(context.Background())
	cfg := config{listen: "127.0.0.1:0", db: dbPath, pair: "p", node: "a", nats: natsURL, logFormat: "json"}
	a, err := start(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.wait(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("printq: %v", err)
			}
		case <-time.After(waitTimeout):
			t.Error("printq did not stop")
		}
		client.CloseIdleConnections()
	})
	return "http://" + a.addr.String()
}

// startNATS starts a node's server with JetStream in store, listening on
// listen, until the test ends.
func startNATS(t *testing.T, store, listen string) *natsnode.Server {
	t.Helper()
	srv, err := natsnode.Start(natsnode.Options{Pair: "p", Node: "a", Listen: listen, StoreDir: store, Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

func clientOf(t *testing.T, srv *natsnode.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// stateBucket creates the state bucket as the notifier does.
func stateBucket(t *testing.T, srv *natsnode.Server) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(clientOf(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(t.Context(), jetstream.KeyValueConfig{Bucket: subject.StateBucket})
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func putState(t *testing.T, kv jetstream.KeyValue, active string, epoch uint64) {
	t.Helper()
	failed := "a"
	if active == "a" {
		failed = "b"
	}
	n := api.Notification{V: api.NotificationVersion, Pair: "p", Epoch: epoch, Active: active, Failed: failed,
		Hosts: map[string]string{}, Reason: "test", Time: time.Now().UTC(), Source: api.SourceLocal}
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.DecodeNotification(b); err != nil {
		t.Fatalf("test notification: %v", err)
	}
	if _, err := kv.Put(t.Context(), "p", b); err != nil {
		t.Fatal(err)
	}
}

var client = &http.Client{Timeout: 5 * time.Second}

func call(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s %s: content type %q", method, url, ct)
	}
	return resp.StatusCode, out
}

// poll waits up to waitTimeout for cond to return nil.
func poll(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for err := cond(); err != nil; err = cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

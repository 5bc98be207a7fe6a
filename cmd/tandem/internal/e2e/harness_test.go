package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
)

// The stack under test: deploy/docker-compose.yml, run as its own Compose
// project, driven with the docker and compose commands as an operator would.
// `make e2e` sets the environment; without it the test is skipped.
type stack struct {
	t       *testing.T
	compose []string // "docker compose" or "docker-compose"
	file    string
	project string
}

const (
	pair      = "print"
	cmdLimit  = 3 * time.Minute // one docker or compose command
	pollEvery = 250 * time.Millisecond
)

func newStack(t *testing.T) *stack {
	file := os.Getenv("TANDEM_E2E_FILE")
	if file == "" {
		t.Skip("the Compose end-to-end test runs with make e2e (TANDEM_E2E_FILE unset)")
	}
	s := &stack{t: t, compose: strings.Fields(os.Getenv("TANDEM_E2E_COMPOSE")), file: file,
		project: os.Getenv("TANDEM_E2E_PROJECT")}
	if len(s.compose) == 0 {
		s.compose = []string{"docker-compose"}
	}
	if s.project == "" {
		s.project = fmt.Sprintf("tandem-e2e-%d", os.Getpid())
	}
	return s
}

// run runs a command and returns its standard output; standard error is
// part of the error.
func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	// Published printq and dashboard ports: random host ports, so that the test never
	// collides with a pair a user runs (make up).
	cmd.Env = append(os.Environ(), "PRINTQ_A_PORT=", "PRINTQ_B_PORT=", "DASHBOARD_A_PORT=", "DASHBOARD_B_PORT=")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

func (s *stack) composeRun(args ...string) (string, error) {
	all := append(append(s.compose[1:], "-p", s.project, "-f", s.file), args...)
	return run(s.compose[0], all...)
}

func (s *stack) must(out string, err error) string {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// up starts the stack and registers its removal — containers, networks and
// volumes — also when a step fails; a failed test first prints the logs.
func (s *stack) up() {
	s.t.Cleanup(func() {
		if s.t.Failed() {
			logs, _ := s.composeRun("logs", "--no-color", "--tail", "40")
			s.t.Logf("logs of the stack:\n%s", logs)
		}
		// The daemon may still hold a network's endpoints a moment after
		// the containers are gone ("has active endpoints"): down again,
		// a bounded number of times.
		// A network the daemon keeps a stale endpoint of for good (seen
		// after the test's disconnect and reconnect of a container) is
		// the daemon's leak, not the stack's: it is logged, not failed.
		var err error
		for try := 1; try <= 5; try++ {
			if _, err = s.composeRun("down", "-v", "--remove-orphans"); err == nil {
				break
			}
			time.Sleep(time.Duration(try) * time.Second) // bounded retry of the daemon's cleanup
		}
		switch {
		case err != nil && strings.Contains(err.Error(), "has active endpoints"):
			s.t.Logf("the stack's containers are removed; the daemon keeps a network: %v", err)
		case err != nil:
			s.t.Errorf("remove the stack: %v", err)
		}
	})
	s.must(s.composeRun("up", "-d"))
}

// id is the container of a Compose service.
func (s *stack) id(service string) string {
	s.t.Helper()
	id := strings.TrimSpace(s.must(s.composeRun("ps", "-q", service)))
	if id == "" {
		s.t.Fatalf("no container for %s", service)
	}
	return id
}

// tandem runs the tandem command inside a service's container (the image
// has no shell; the binary is all it needs), against that node's server.
func (s *stack) tandem(service string, args ...string) (string, error) {
	return run("docker", append([]string{"exec", s.id(service), "/tandem"}, args...)...)
}

// status is the pair as seen through one node's NATS server.
func (s *stack) status(via string) (api.PairStatus, error) {
	var ps api.PairStatus
	out, err := s.tandem(via, "status", "--pair", pair, "--json")
	if err != nil {
		return ps, err
	}
	return ps, json.Unmarshal([]byte(out), &ps)
}

// await polls check until it holds, failing the test after limit with the
// last thing check said.
func (s *stack) await(what string, limit time.Duration, check func() (bool, string)) {
	s.t.Helper()
	deadline := time.Now().Add(limit)
	last := ""
	for {
		ok, said := check()
		if ok {
			s.t.Logf("%s: %s", what, said)
			return
		}
		last = said
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within %s; last: %s", what, limit, last)
		}
		time.Sleep(pollEvery)
	}
}

// node is the status of one node in ps.
func node(ps api.PairStatus, name string) api.NodeStatus {
	for _, n := range ps.Nodes {
		if n.Node == name {
			return n
		}
	}
	return api.NodeStatus{}
}

func describe(ps api.PairStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "epoch %d;", ps.Epoch)
	for _, n := range ps.Nodes {
		fmt.Fprintf(&b, " %s %s/%d reachable=%v", n.Node, n.State, n.Epoch, n.Reachable)
	}
	return b.String()
}

// printq is the HTTP client of one node's print queue, on its published
// port (looked up each time: a restarted container may get another one).
func (s *stack) printq(service string) (string, error) {
	out, err := s.composeRun("port", service, "8081")
	if err != nil {
		return "", err
	}
	return "http://" + strings.TrimSpace(out), nil
}

// The Compose pair's dashboard user (deploy/compose/dashboard.users).
const dashboardUser, dashboardPassword = "operator", "compose"

// dashboard gets the page at / of a dashboard container's published port;
// with credentials unless anonymous.
func (s *stack) dashboard(service string, anonymous bool) (string, int, error) {
	out, err := s.composeRun("port", service, "8080")
	if err != nil {
		return "", 0, err
	}
	req, err := http.NewRequest(http.MethodGet, "http://"+strings.TrimSpace(out)+"/", nil)
	if err != nil {
		return "", 0, err
	}
	if !anonymous {
		req.SetBasicAuth(dashboardUser, dashboardPassword)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return string(b), resp.StatusCode, err
}

// dashboardCode is the status a request without credentials gets.
func (s *stack) dashboardCode(service string) (int, error) {
	_, code, err := s.dashboard(service, true)
	return code, err
}

// awaitDashboard waits until a dashboard's page shows every one of want.
func (s *stack) awaitDashboard(service string, want ...string) {
	s.t.Helper()
	s.await(service+" shows "+strings.Join(want, ", "), stepLimit, func() (bool, string) {
		page, code, err := s.dashboard(service, false)
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("%d %v %.200s", code, err, page)
		}
		for _, w := range want {
			if !strings.Contains(page, w) {
				return false, "missing " + w
			}
		}
		return true, "ok"
	})
}

type job struct {
	ID      string `json:"id"`
	Printer string `json:"printer"`
	Node    string `json:"node"`
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// submit posts one job; it returns the job's id once the queue accepted it
// (201), which is the acknowledgement the invariants hold Tandem to.
func (s *stack) submit(service, printer, doc string) (string, int, error) {
	base, err := s.printq(service)
	if err != nil {
		return "", 0, err
	}
	body := fmt.Sprintf(`{"printer":%q,"document":%q,"copies":1}`, printer, doc)
	resp, err := httpClient.Post(base+"/jobs", "application/json", strings.NewReader(body))
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		return "", resp.StatusCode, fmt.Errorf("POST %s/jobs: %d %s", base, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var j job
	if err := json.Unmarshal(b, &j); err != nil || j.ID == "" {
		return "", resp.StatusCode, fmt.Errorf("POST %s/jobs: reply %q: %v", base, b, err)
	}
	return j.ID, resp.StatusCode, nil
}

// jobs lists a queue's jobs (only the active node's queue answers).
func (s *stack) jobs(service string) (map[string]job, int, error) {
	base, err := s.printq(service)
	if err != nil {
		return nil, 0, err
	}
	resp, err := httpClient.Get(base + "/jobs")
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	var list struct {
		Jobs []job `json:"jobs"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("GET %s/jobs: %d", base, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&list); err != nil {
		return nil, resp.StatusCode, err
	}
	out := map[string]job{}
	for _, j := range list.Jobs {
		out[j.ID] = j
	}
	return out, resp.StatusCode, nil
}

// switchLine is what `tandem session` prints for each switch.
type switchLine struct {
	Session string `json:"session"`
	Epoch   uint64 `json:"epoch"`
	From    string `json:"from"`
	To      string `json:"to"`
}

// switches are the switches a session container has printed so far.
func (s *stack) switches(service string) ([]switchLine, error) {
	out, err := run("docker", "logs", s.id(service))
	if err != nil {
		return nil, err
	}
	var lines []switchLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l switchLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Session != "" {
			lines = append(lines, l)
		}
	}
	return lines, sc.Err()
}

// story is the pair's events as one node's audit trail holds them (its own
// stream and its mirror of the peer's), in time order.
func (s *stack) story(via string) ([]event.Envelope, error) {
	out, err := s.tandem(via, "audit", "replay", "--pair", pair, "--json")
	if err != nil {
		return nil, err
	}
	var evs []event.Envelope
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		e, err := event.Decode(sc.Bytes())
		if err != nil {
			return nil, fmt.Errorf("audit line %q: %w", sc.Text(), err)
		}
		evs = append(evs, e)
	}
	return evs, sc.Err()
}

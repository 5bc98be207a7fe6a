package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/agent/plan"
	"github.com/tandem-ha/tandem/pkg/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeDriver holds connections in memory. Apply can be held (to deliver a
// notification while the agent is switching) and refused per resource.
type fakeDriver struct {
	mu       sync.Mutex // guards the fields below
	conns    []plan.Connection
	refuse   map[string]error // by connection ID
	listErrs int              // List fails this many more times
	applied  []string         // "ID from→to" per Apply that succeeded

	started chan string   // if not nil, receives the ID at every Apply
	hold    chan struct{} // if not nil, Apply waits for it
}

func (f *fakeDriver) List(context.Context) ([]plan.Connection, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listErrs > 0 {
		f.listErrs--
		return nil, errors.New("lpstat: cups is starting")
	}
	return append([]plan.Connection(nil), f.conns...), nil
}

func (f *fakeDriver) Apply(_ context.Context, s Step) error {
	if f.started != nil {
		f.started <- s.ID
	}
	if f.hold != nil {
		<-f.hold
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.refuse[s.ID]; err != nil {
		return err
	}
	for i := range f.conns {
		if f.conns[i].ID == s.ID {
			f.conns[i].Address = s.To
		}
	}
	f.applied = append(f.applied, fmt.Sprintf("%s %s→%s", s.ID, s.From, s.To))
	return nil
}

func (f *fakeDriver) addresses() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var s []string
	for _, c := range f.conns {
		s = append(s, c.ID+"="+c.Address)
	}
	return strings.Join(s, " ")
}

// fakeAcks records acknowledgements and signals each on a channel.
type fakeAcks struct {
	ch chan api.SessionAck
}

func (f *fakeAcks) PublishAck(a api.SessionAck) error {
	if err := a.Validate(); err != nil {
		return err
	}
	f.ch <- a
	return nil
}

type harness struct {
	t      *testing.T
	a      *Agent
	d      *fakeDriver
	acks   *fakeAcks
	out    *syncBuffer
	cancel context.CancelFunc
	done   chan error
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

func start(t *testing.T, d *fakeDriver) *harness {
	t.Helper()
	h := &harness{t: t, d: d, acks: &fakeAcks{ch: make(chan api.SessionAck, 64)}, out: &syncBuffer{}, done: make(chan error, 1)}
	a, err := New(Config{Pair: "p", Session: "ws1", Driver: d, Acks: h.acks, Out: h.out, Log: zerolog.Nop(), Retry: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	h.a = a
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go func() { h.done <- a.Run(ctx) }()
	t.Cleanup(h.stop)
	if ack := h.ack(); ack.Kind != api.AckHello || ack.Epoch != 0 {
		t.Fatalf("first acknowledgement %+v", ack)
	}
	return h
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	if err := <-h.done; err != nil {
		h.t.Errorf("run: %v", err)
	}
}

// ack waits for the next acknowledgement.
func (h *harness) ack() api.SessionAck {
	h.t.Helper()
	select {
	case a := <-h.acks.ch:
		return a
	case <-time.After(10 * time.Second):
		h.t.Fatal("no acknowledgement")
	}
	return api.SessionAck{}
}

func note(epoch uint64, active, failed, from, to string) api.Notification {
	return api.Notification{V: 1, Pair: "p", Epoch: epoch, Active: active, Failed: failed,
		Hosts: map[string]string{from: to}, Source: api.SourceDatabase, Time: time.Now()}
}

func printers() *fakeDriver {
	return &fakeDriver{conns: []plan.Connection{
		{ID: "Floor3", Address: "ipp://print-a:631/printers/Floor3", Default: true},
		{ID: "Plotter", Address: "ipp://print-a:631/printers/Plotter"},
		{ID: "Scan", Address: "ipp://files:631/printers/Scan"},
	}}
}

// A failover moves the queues on the failed host, reports a printer missing
// on the backup and one the system refused, each with its reason, and
// prints the pass as a JSON line; the unrelated queue is untouched.
func TestAgentSwitchesAndReports(t *testing.T) {
	d := printers()
	d.conns = append(d.conns, plan.Connection{ID: "Lab", Address: "ipp://print-a:631/printers/Lab"})
	d.refuse = map[string]error{"Lab": errors.New("lpadmin: Unable to modify\nprinter")}
	h := start(t, d)
	n := note(2, "b", "a", "print-a", "print-b")
	n.Missing = []string{"ipp://print-a:631/printers/Plotter"}
	h.a.Notify(n)
	ack := h.ack()
	if ack.Kind != api.AckSwitched || ack.Epoch != 2 || len(ack.Switched) != 1 ||
		ack.Switched[0] != (api.Switch{From: "ipp://print-a:631/printers/Floor3", To: "ipp://print-b:631/printers/Floor3"}) {
		t.Fatalf("ack %+v", ack)
	}
	want := []api.Skip{
		{Address: "ipp://print-a:631/printers/Plotter", Reason: "no resource of the same name on node b"},
		{Address: "ipp://print-a:631/printers/Lab", Reason: "lpadmin: Unable to modify printer"},
	}
	if fmt.Sprint(ack.Skipped) != fmt.Sprint(want) {
		t.Fatalf("skipped %+v, want %+v", ack.Skipped, want)
	}
	if got := d.addresses(); got != "Floor3=ipp://print-b:631/printers/Floor3 Plotter=ipp://print-a:631/printers/Plotter Scan=ipp://files:631/printers/Scan Lab=ipp://print-a:631/printers/Lab" {
		t.Fatal(got)
	}
	if !strings.Contains(h.out.String(), `"skipped":[{"address":"ipp://print-a:631/printers/Plotter"`) {
		t.Fatalf("printed %s", h.out.String())
	}
	// A re-announcement retries what was refused and reports the missing
	// printer again; the switched queue stays.
	d.mu.Lock()
	d.refuse = nil
	d.mu.Unlock()
	h.a.Notify(n)
	ack = h.ack()
	if ack.Kind != api.AckSwitched || len(ack.Switched) != 1 || ack.Switched[0].From != "ipp://print-a:631/printers/Lab" || len(ack.Skipped) != 1 {
		t.Fatalf("re-announcement: %+v", ack)
	}
	h.stop()
	if ack := h.ack(); ack.Kind != api.AckBye || ack.Epoch != 2 {
		t.Fatalf("last acknowledgement %+v", ack)
	}
}

// A stale notification moves nothing back; a re-announcement with nothing
// to do is answered with a hello at the applied epoch.
func TestAgentStaleAndReannounced(t *testing.T) {
	d := printers()
	h := start(t, d)
	h.a.Notify(note(5, "b", "a", "print-a", "print-b"))
	if ack := h.ack(); ack.Kind != api.AckSwitched || ack.Epoch != 5 || len(ack.Switched) != 2 {
		t.Fatalf("%+v", ack)
	}
	h.a.Notify(note(4, "a", "b", "print-b", "print-a"))
	h.a.Notify(note(5, "b", "a", "print-a", "print-b"))
	if ack := h.ack(); ack.Kind != api.AckHello || ack.Epoch != 5 {
		t.Fatalf("%+v", ack)
	}
	if got := d.addresses(); !strings.HasPrefix(got, "Floor3=ipp://print-b:631/printers/Floor3 Plotter=ipp://print-b:") {
		t.Fatal(got)
	}
	d.mu.Lock()
	applied := len(d.applied)
	d.mu.Unlock()
	if applied != 2 {
		t.Fatalf("%d changes, want 2", applied)
	}
}

// The active node changes while the agent is switching: it finishes the
// change in progress (nothing half-done), acknowledges the older epoch with
// the rest as superseded, and plans the newest from the connections as they
// are; everything ends on the newest active node.
func TestAgentNewerEpochWhileSwitching(t *testing.T) {
	d := printers()
	d.started, d.hold = make(chan string), make(chan struct{})
	h := start(t, d)
	h.a.Notify(note(2, "b", "a", "print-a", "print-b"))
	if id := <-d.started; id != "Floor3" {
		t.Fatal(id)
	}
	h.a.Notify(note(3, "a", "b", "print-b", "print-a"))
	h.a.Notify(note(2, "b", "a", "print-a", "print-b")) // older than pending: dropped
	d.hold <- struct{}{}                                // Floor3 a→b completes
	ack := h.ack()
	if ack.Epoch != 2 || len(ack.Switched) != 1 || len(ack.Skipped) != 1 || ack.Skipped[0].Reason != "superseded by epoch 3" {
		t.Fatalf("superseded pass: %+v", ack)
	}
	if id := <-d.started; id != "Floor3" { // back b→a; Plotter never moved
		t.Fatal(id)
	}
	d.hold <- struct{}{}
	ack = h.ack()
	if ack.Epoch != 3 || len(ack.Switched) != 1 || ack.Switched[0].To != "ipp://print-a:631/printers/Floor3" || len(ack.Skipped) != 0 {
		t.Fatalf("newest pass: %+v", ack)
	}
	if got := d.addresses(); got != "Floor3=ipp://print-a:631/printers/Floor3 Plotter=ipp://print-a:631/printers/Plotter Scan=ipp://files:631/printers/Scan" {
		t.Fatal(got)
	}
}

// Connections that cannot be read are read again until they can; nothing
// is acknowledged meanwhile.
func TestAgentRetriesList(t *testing.T) {
	d := printers()
	d.listErrs = 3
	h := start(t, d)
	h.a.Notify(note(2, "b", "a", "print-a", "print-b"))
	if ack := h.ack(); ack.Kind != api.AckSwitched || ack.Epoch != 2 || len(ack.Switched) != 2 {
		t.Fatalf("%+v", ack)
	}
}

// The exec driver runs the command per switched resource with the
// documented environment, and leaves a resource whose command fails.
func TestExecDriver(t *testing.T) {
	dir := t.TempDir()
	e, err := NewExec(`[ "$TANDEM_RESOURCE" != sip://pbx-a/lineB ] || exit 3; echo "$TANDEM_RESOURCE $TANDEM_FROM $TANDEM_TO $TANDEM_EPOCH $TANDEM_ACTIVE $TANDEM_FAILED" >> `+dir+`/log`,
		[]string{"sip://pbx-a/lineA", "sip://pbx-a/lineB", "sip://other/lineC"}, "")
	if err != nil {
		t.Fatal(err)
	}
	acks := &fakeAcks{ch: make(chan api.SessionAck, 8)}
	a, _ := New(Config{Pair: "p", Session: "phone1", Driver: e, Acks: acks, Log: zerolog.Nop()})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-acks.ch // hello
	a.Notify(note(7, "b", "a", "pbx-a", "pbx-b"))
	ack := <-acks.ch
	if len(ack.Switched) != 1 || ack.Switched[0].To != "sip://pbx-b/lineA" || len(ack.Skipped) != 1 || !strings.Contains(ack.Skipped[0].Reason, "exit status 3") {
		t.Fatalf("%+v", ack)
	}
	log, _ := readFile(dir + "/log")
	if log != "sip://pbx-a/lineA sip://pbx-a/lineA sip://pbx-b/lineA 7 b a\n" {
		t.Fatalf("command saw %q", log)
	}
	conns, _ := e.List(ctx)
	if conns[0].Address != "sip://pbx-b/lineA" || conns[1].Address != "sip://pbx-a/lineB" || !conns[0].Default {
		t.Fatalf("%+v", conns)
	}
	if _, err := NewExec(" ", []string{"x"}, ""); err == nil {
		t.Fatal("empty command accepted")
	}
}

func TestReason(t *testing.T) {
	long := strings.Repeat("é", 150)
	if r := reason(errors.New(long)); len(r) > 200 || !strings.HasPrefix(long, r) {
		t.Fatalf("%q", r)
	}
	if r := reason(errors.New("a\x00b\n")); r != "a b" {
		t.Fatalf("%q", r)
	}
}

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// With Recheck, a re-announcement of a cleanly carried-out epoch is only
// acknowledged until Recheck has passed; then the connections are read
// again (a queue added meanwhile on the failed host moves).
func TestAgentRecheck(t *testing.T) {
	d := printers()
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	acks := &fakeAcks{ch: make(chan api.SessionAck, 8)}
	a, _ := New(Config{Pair: "p", Session: "ws1", Driver: d, Acks: acks, Log: zerolog.Nop(), Recheck: time.Minute, Now: clock})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-acks.ch // hello
	n := note(2, "b", "a", "print-a", "print-b")
	a.Notify(n)
	if ack := <-acks.ch; len(ack.Switched) != 2 {
		t.Fatalf("%+v", ack)
	}
	d.mu.Lock()
	d.conns = append(d.conns, plan.Connection{ID: "New", Address: "ipp://print-a/printers/New"})
	d.mu.Unlock()
	a.Notify(n)
	if ack := <-acks.ch; ack.Kind != api.AckHello || ack.Epoch != 2 {
		t.Fatalf("within Recheck: %+v", ack)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	a.Notify(n)
	if ack := <-acks.ch; ack.Kind != api.AckSwitched || len(ack.Switched) != 1 || ack.Switched[0].To != "ipp://print-b/printers/New" {
		t.Fatalf("after Recheck: %+v", ack)
	}
}

package proctest

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func beat(node, state string, epoch uint64, sent int) Beat {
	return Beat{Node: node, State: state, Epoch: epoch, Sent: time.Unix(int64(sent), 0)}
}

func TestViolations(t *testing.T) {
	good := []Beat{
		beat("a", "active", 2, 1), beat("b", "passive", 0, 1),
		beat("b", "active", 3, 2), beat("a", "active", 2, 2), // two actives, different epochs (F7)
		beat("a", "active", 4, 3), beat("b", "passive", 3, 4),
		beat("a", "active", 4, 3), // the same beat through the other server
	}
	if v := Violations(good); len(v) != 0 {
		t.Errorf("good record: %v", v)
	}
	bad := append(good, beat("b", "active", 4, 5), beat("a", "passive", 2, 6))
	v := Violations(bad)
	if len(v) != 2 || !strings.Contains(v[0], "two nodes active in epoch 4") || !strings.Contains(v[1], "a's epoch went down from 4") {
		t.Errorf("bad record: %q", v)
	}
}

func TestSetKey(t *testing.T) {
	c := map[string]any{}
	setKey(c, "pair", "p")
	setKey(c, "nats.listen", "x")
	setKey(c, "nats.peer", "y")
	nats, ok := c["nats"].(map[string]any)
	if c["pair"] != "p" || !ok || nats["listen"] != "x" || nats["peer"] != "y" {
		t.Errorf("got %v", c)
	}
}

func TestMatch(t *testing.T) {
	b := Beat{Node: "a", State: "active", Epoch: 4, Via: "b"}
	for m, want := range map[Match]bool{
		{}:                                 true,
		{Node: "a", State: "active"}:       true,
		{Node: "b"}:                        false,
		{Via: "a"}:                         false,
		{MinEpoch: 4}:                      true,
		{MinEpoch: 5}:                      false,
		{Node: "a", State: "passive"}:      false,
		{Node: "a", Via: "b", MinEpoch: 1}: true,
	} {
		if got := m.Func()(b); got != want {
			t.Errorf("%v on %v: %v, want %v", m, b, got, want)
		}
	}
}

func TestWatchAwait(t *testing.T) {
	w := newWatch()
	w.add(beat("a", "passive", 0, 1))
	go w.add(beat("a", "active", 2, 2))
	b, next, ok := w.Await(0, 10*time.Second, Match{State: "active"}.Func())
	if !ok || b.Epoch != 2 || next != 2 {
		t.Fatalf("Await: %v %d %v", b, next, ok)
	}
	if _, _, ok := w.Await(next, time.Millisecond, Match{}.Func()); ok {
		t.Error("Await found a beat past the end")
	}
}

func TestStandalone(t *testing.T) {
	var order []string
	err := Run("x", io.Discard, func(t T) {
		dir := t.TempDir()
		t.Cleanup(func() {
			if _, err := os.Stat(dir); err != nil {
				order = append(order, "dir gone too early")
			}
			order = append(order, "first")
		})
		t.Cleanup(func() { order = append(order, "second") })
		t.Fatalf("stop %d", 1)
		order = append(order, "not reached")
	})
	if err == nil || !strings.Contains(err.Error(), "stop 1") {
		t.Errorf("Run: %v", err)
	}
	if strings.Join(order, ",") != "second,first" {
		t.Errorf("cleanups: %v", order)
	}
	if err := Run("ok", io.Discard, func(T) {}); err != nil {
		t.Errorf("Run without failure: %v", err)
	}
	defer func() {
		if r := recover(); !errors.Is(r.(error), io.EOF) {
			t.Errorf("a foreign panic: %v", r)
		}
	}()
	_ = Run("panics", io.Discard, func(T) { panic(io.EOF) })
}

func TestUsageOfSelf(t *testing.T) {
	u, err := ReadUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.CPU < 0 {
		t.Errorf("usage of this process: %+v", u)
	}
	before, err := OnCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the figure grows by 5 ms, which it must long before 5 s.
	after := before
	for deadline := time.Now().Add(5 * time.Second); after-before < 5*time.Millisecond && time.Now().Before(deadline); {
		if after, err = OnCPU(os.Getpid()); err != nil {
			t.Fatal(err)
		}
	}
	if after-before < 5*time.Millisecond {
		t.Errorf("on CPU %v, and %v after 5 s of spinning", before, after)
	}
	if _, err := OnCPU(-1); err == nil {
		t.Error("OnCPU of no process: no error")
	}
	if st, err := readProcState(os.Getpid()); err != nil || st == 'T' || st == 'Z' {
		t.Errorf("state of this process: %c %v", st, err)
	}
}

// A log line a SIGKILL cut mid-write is ended and accepted, and only it: a
// malformed line written by a running process still fails the check.
func TestLogLineCutByKill(t *testing.T) {
	n := &Node{LogPath: filepath.Join(t.TempDir(), "n.log")}
	if err := os.WriteFile(n.LogPath, []byte("{\"level\":\"info\"}\n{\"level\":\"info\",\"message\":\"probing the p"), 0o644); err != nil {
		t.Fatal(err)
	}
	n.endCutLine()
	f, err := os.OpenFile(n.LogPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("{\"level\":\"info\",\"message\":\"started again\"}\n"); err != nil {
		t.Fatal(err)
	}
	if err := n.checkLog(); err != nil {
		t.Fatalf("a line cut by a kill refused: %v", err)
	}
	n.endCutLine() // the log ends with a newline: nothing to end
	if _, err := f.WriteString("{\"level\":\"info\",\"message\":\"cut\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := n.checkLog(); err == nil {
		t.Fatal("a malformed line no kill cut accepted")
	}
}

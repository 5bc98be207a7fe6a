package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/event"
)

// TestAuditCommands replays a node's events through the command line: JSON
// lines exactly as stored, filters, refusals of bad flags, and --follow.
func TestAuditCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startMaster(ctx, t, nil)
	server := n.Server().ClientURL()
	cli := func(wantCode int, args ...string) (string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := run(ctx, args, &out, &errOut); code != wantCode {
			t.Fatalf("tandem %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}

	out, _ := cli(0, "audit", "replay", "--pair", "p", "--json", "--server", server)
	var types []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		e, err := event.Decode([]byte(line))
		if err != nil {
			t.Fatalf("replay --json printed a line that is not an event: %v: %s", err, line)
		}
		types = append(types, e.Type)
	}
	if len(types) < 2 || types[0] != event.NodeStarted || !contains(types, event.NodeActivated) {
		t.Fatalf("replay shows %v, want node.started first and node.activated", types)
	}

	out, _ = cli(0, "audit", "replay", "--pair", "p", "--type", "tandem.node.activated", "--since", "1h", "--server", server)
	if !strings.Contains(out, "F2: no peer heard during discovery") || strings.Contains(out, event.NodeStarted) {
		t.Fatalf("filtered table:\n%s", out)
	}
	exported, _ := cli(0, "audit", "export", "--pair", "p", "--since", "1h", "--server", server)
	if got := strings.Count(exported, "\n"); got != len(types) {
		t.Fatalf("export printed %d events, replay %d", got, len(types))
	}

	_, errOut := cli(1, "audit", "replay", "--pair", "p", "--since", "yesterday", "--server", server)
	if !strings.Contains(errOut, "neither an RFC 3339 time nor a duration") {
		t.Fatalf("bad --since: %s", errOut)
	}
	cli(1, "audit", "export", "--pair", "p", "--server", server)                              // export needs --since
	cli(1, "audit", "replay", "--pair", "p", "--follow", "--until", "1h", "--server", server) // contradictory
	if out, _ := cli(1, "audit", "replay", "--pair", "nope", "--server", server); out != "" { // no streams of that pair
		t.Fatalf("an unknown pair's replay printed %q on stdout", out)
	}
	cli(2, "audit", "rewrite")

	// --follow prints the history, then new events as they come: a
	// maintenance switch makes one.
	r, w := io.Pipe()
	fctx, stop := context.WithCancel(ctx)
	done := make(chan int, 1)
	go func() {
		done <- run(fctx, []string{"audit", "replay", "--pair", "p", "--follow", "--json", "--server", server}, w, io.Discard)
		w.Close()
	}()
	lines := bufio.NewScanner(r)
	for i := 0; i < len(types); i++ {
		if !lines.Scan() {
			t.Fatal("follow ended during the history")
		}
	}
	cli(0, "maintenance", "on", "--pair", "p", "--for", "1m", "--server", server)
	for lines.Scan() {
		var e struct{ Type string }
		if json.Unmarshal(lines.Bytes(), &e) == nil && e.Type == event.MaintenanceChanged {
			break
		}
	}
	stop()
	go io.Copy(io.Discard, r) //nolint:errcheck // drain until the command exits
	if code := <-done; code != 0 {
		t.Fatalf("follow exited %d", code)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

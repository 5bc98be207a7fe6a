package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
)

// TestStatusWatch: tandem status --watch --json prints the pair at once,
// and again when it changes (maintenance switched on: an event), until
// interrupted, then exits 0.
func TestStatusWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n := startMaster(ctx, t, nil)
	server := n.Server().ClientURL()
	wctx, stop := context.WithCancel(ctx)
	r, w := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(wctx, []string{"status", "--watch", "--json", "--pair", "p", "--server", server}, w, io.Discard)
		w.Close()
	}()
	views := make(chan api.PairStatus, 16)
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			var ps api.PairStatus
			if json.Unmarshal(sc.Bytes(), &ps) == nil {
				views <- ps
			}
		}
		close(views)
	}()
	next := func(what string, ok func(api.PairStatus) bool) {
		t.Helper()
		for {
			select {
			case ps, open := <-views:
				if !open {
					t.Fatalf("watch ended before %s", what)
				}
				if ok(ps) {
					return
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no view with %s", what)
			}
		}
	}
	next("a active", func(ps api.PairStatus) bool { return ps.Active != nil && *ps.Active == "a" && !ps.Nodes[0].Maintenance })
	var out, errOut bytes.Buffer
	if code := run(ctx, []string{"maintenance", "on", "--pair", "p", "--server", server}, &out, &errOut); code != 0 {
		t.Fatalf("maintenance on: %d %s", code, errOut.String())
	}
	next("maintenance on", func(ps api.PairStatus) bool { return len(ps.Nodes) > 0 && ps.Nodes[0].Maintenance })
	stop()
	if code := <-done; code != 0 {
		t.Fatalf("watch exit %d", code)
	}
}

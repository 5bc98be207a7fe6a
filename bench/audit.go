//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/internal/proctest"
	"github.com/tandem-ha/tandem/pkg/audit"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	benchmarks = append(benchmarks, benchmark{"audit-replay", "tandem audit replay of 1,000,000 events", auditReplay})
}

const (
	replayEvents = 1_000_000
	replayRuns   = 3
	replayTarget = 10 * time.Second
	// floorRatio is the most a Tandem path may take beside what NATS alone
	// needs for the same work in the same run (issue 19).
	floorRatio = 2.0
)

// auditReplay: a node's event stream holding 1,000,000 events, replayed
// whole by the tandem command (`tandem audit replay --json`, a separate
// process) to a reader that counts the lines; timed from the command's start
// to its exit.
func auditReplay(t proctest.T, e env) []row {
	srv, err := natsnode.Start(natsnode.Options{Pair: "bench", Node: "a", Listen: "127.0.0.1:-1",
		StoreDir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatalf("start a node's NATS server: %v", err)
	}
	t.Cleanup(srv.Shutdown)
	fill(t, srv, e.log)
	var samples, floor, ratio []float64
	for i := range replayRuns {
		bare := bareReplay(t, srv)
		took, lines := replayOnce(t, e.bin, srv.ClientURL())
		if lines != replayEvents {
			t.Fatalf("the replay printed %d events, want %d", lines, replayEvents)
		}
		samples, floor = append(samples, took.Seconds()), append(floor, bare.Seconds())
		ratio = append(ratio, took.Seconds()/bare.Seconds())
		fmt.Fprintf(e.log, "  run %d: tandem audit replay --json %v, a bare ordered consumer %v (%.2f×)\n",
			i+1, took.Round(time.Millisecond), bare.Round(time.Millisecond), took.Seconds()/bare.Seconds())
	}
	return []row{
		{what: fmt.Sprintf("audit replay of %d events (tandem audit replay --json)", replayEvents),
			unit: seconds, samples: samples, target: &target{stat: "max", limit: replayTarget.Seconds()}},
		{what: "  the floor: a bare ordered consumer over the same events, same run", unit: seconds, samples: floor},
		{what: "  replay ÷ floor, per run", unit: ratioUnit, samples: ratio, target: &target{stat: "max", limit: floorRatio}},
	}
}

// bareReplay is the floor of a replay: this program run again as a
// separate process (as the tandem command is), reading the node's event
// stream to its end with an ordered consumer (bareConsume), touching
// nothing but the count of messages; timed from its start to its exit.
func bareReplay(t proctest.T, srv *natsnode.Server) time.Duration {
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("this program: %v", err)
	}
	cmd := exec.Command(self, "-bare-replay", srv.ClientURL())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("the bare consumer: %v: %s", err, out)
	}
	return took
}

// bareConsume reads the bench pair's event stream on url to its end with
// an ordered consumer, as a replay reads it, and does nothing else.
func bareConsume(url string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, subject.EventStream("bench", "a"), jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2048))
	if err != nil {
		return err
	}
	defer it.Stop()
	for n := 0; n < replayEvents; n++ {
		if _, err := it.Next(); err != nil {
			return fmt.Errorf("read %d of %d events: %w", n, replayEvents, err)
		}
	}
	return nil
}

// fill publishes the events with their ids as message ids, as the emitter
// does, but asynchronously so that setting up takes seconds.
func fill(t proctest.T, srv *natsnode.Server, log io.Writer) {
	nc, err := srv.Connect("bench-fill")
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.NewWithDomain(nc, srv.Domain(), jetstream.WithPublishAsyncMaxPending(8192))
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := audit.EnsureOrigin(ctx, js, "bench", "a", audit.Retention{}); err != nil {
		t.Fatalf("event stream: %v", err)
	}
	start, t0 := time.Now(), time.Now().Add(-24*time.Hour)
	types := []string{event.NodeActivated, event.PeerLost, event.ReplConflict, event.HookFinished}
	for i := range replayEvents {
		ev, err := event.New("bench", "a", "monitor", types[i%len(types)], uint64(i/1000), t0.Add(time.Duration(i)*time.Millisecond),
			map[string]any{"reason": "F6: outage: link to the peer closed and its process refused the connection", "peer": "b"})
		if err != nil {
			t.Fatalf("event: %v", err)
		}
		b, _ := ev.Encode()
		m := nats.NewMsg(ev.Subject())
		m.Data, m.Header = b, nats.Header{jetstream.MsgIDHeader: {ev.ID}}
		// A loaded machine stalls the window for longer than the default
		// 200 ms wait (measured at load 20).
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			t.Fatalf("publish: %v", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatalf("publishing %d events did not finish", replayEvents)
	}
	fmt.Fprintf(log, "  stored %d events in %v\n", replayEvents, time.Since(start).Round(time.Millisecond))
}

// replayOnce runs the replay command and counts the lines it prints.
func replayOnce(t proctest.T, bin, url string) (time.Duration, int) {
	cmd := exec.Command(bin, "audit", "replay", "--pair", "bench", "--json", "--server", url, "--timeout", "30s")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("pipe: %v", err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the replay: %v", err)
	}
	lines := 0
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines++
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the replay failed: %v: %s", err, stderr.String())
	}
	return time.Since(start), lines
}

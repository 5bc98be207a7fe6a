package main

// tandem status --watch (like patronictl list -W, pg_autoctl watch): a live
// view redrawn on every change. It is driven by the pair's own news, not by
// polling: every event of the pair (tandem.<pair>.events.>: activations,
// peer lost/found, maintenance, switchovers, replication and license
// changes), every update of the pair's state in the KV bucket tandem_state,
// and the client's reconnection to the other node each make it ask the pair
// again (askPair) and redraw when the answer differs.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func watchStatus(ctx context.Context, p pairFlags, out io.Writer, live bool) error {
	nc, err := p.dialAny("status --watch")
	if err != nil {
		return err
	}
	defer nc.Close()
	news := make(chan struct{}, 1) // size 1: one pending redraw covers any number of news
	poke := func() {
		select {
		case news <- struct{}{}:
		default:
		}
	}
	sub, err := nc.Subscribe(subject.Events(p.pair), func(*nats.Msg) { poke() })
	if err != nil {
		return fmt.Errorf("subscribe to the pair's events: %w", err)
	}
	defer sub.Unsubscribe() //nolint:errcheck
	nc.SetReconnectHandler(func(*nats.Conn) { poke() })
	if stop := watchState(ctx, nc, p.pair, poke); stop != nil {
		defer stop()
	}
	var last []byte
	for {
		ps, _, err := askPair(ctx, nc, p.pair, p.timeout)
		if ctx.Err() != nil {
			return nil
		}
		if b := viewKey(ps, err); !bytes.Equal(b, last) {
			last = b
			drawWatch(out, p, ps, err, live)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-news:
		}
	}
}

// watchState pokes on every update of the pair's key in tandem_state, where
// the JetStream of the connected server has that bucket; it returns how to
// stop, or nil.
func watchState(ctx context.Context, nc *nats.Conn, pair string, poke func()) func() {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil
	}
	kctx, cancel := context.WithTimeout(ctx, time.Second)
	kv, err := js.KeyValue(kctx, subject.StateBucket)
	cancel()
	if err != nil {
		return nil
	}
	w, err := kv.Watch(ctx, pair, jetstream.UpdatesOnly())
	if err != nil {
		return nil
	}
	go func() {
		for range w.Updates() {
			poke()
		}
	}()
	return func() { _ = w.Stop() }
}

// viewKey is what a redraw depends on: the status without the heartbeat
// ages, which change with every heartbeat and are no news.
func viewKey(ps api.PairStatus, err error) []byte {
	if err != nil {
		return []byte("error: " + err.Error())
	}
	nodes := make([]api.NodeStatus, len(ps.Nodes))
	for i, n := range ps.Nodes {
		n.HeartbeatAgeMS = nil
		nodes[i] = n
	}
	ps.Nodes = nodes
	b, _ := json.Marshal(ps)
	return b
}

func drawWatch(out io.Writer, p pairFlags, ps api.PairStatus, err error, live bool) {
	now := time.Now().Format("15:04:05.000")
	switch {
	case p.json && err != nil:
		_ = json.NewEncoder(out).Encode(map[string]string{"time": now, "error": err.Error()})
	case p.json:
		_ = json.NewEncoder(out).Encode(ps)
	default:
		if live {
			fmt.Fprint(out, "\x1b[H\x1b[2J") // home, clear: redraw in place
		} else {
			fmt.Fprintln(out)
		}
		fmt.Fprintf(out, "%s  tandem status --watch --pair %s (redrawn on every change; Ctrl-C ends)\n", now, p.pair)
		if err != nil {
			fmt.Fprintf(out, "no answer: %s\n", oneLine(err.Error()))
			return
		}
		printStatus(out, ps)
	}
}

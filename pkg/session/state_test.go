package session

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// A client reads the state on a real node's server: nothing while there is
// no bucket (no stream answers the direct get: the KV handle tells a
// missing bucket), nothing while the key is missing, the value once
// written, nothing again once deleted — done each time, never an error.
func TestReadState(t *testing.T) {
	_, nc := startServer(t, "p")
	l := &link{nc: nc}
	c := &Client{links: []*link{l}, pair: "p", sessions: map[string]*Session{}, quit: make(chan struct{})}
	read := func(what string, want uint64) {
		t.Helper()
		if !c.readState(l) {
			t.Fatalf("%s: the read is not done", what)
		}
		got, ok := c.Latest()
		if want == 0 && ok || want > 0 && (!ok || got.Epoch != want) {
			t.Fatalf("%s: latest %+v (%v), want epoch %d", what, got, ok, want)
		}
	}
	read("no bucket", 0)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: subject.StateBucket, History: 1})
	if err != nil {
		t.Fatal(err)
	}
	read("no key", 0)
	b, _ := json.Marshal(api.Notification{V: api.NotificationVersion, Pair: "p", Epoch: 4, Active: "b", Failed: "a",
		Time: time.Now(), Source: api.SourceLocal})
	if _, err := kv.Put(ctx, "p", b); err != nil {
		t.Fatal(err)
	}
	read("a value", 4)
	if err := kv.Delete(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.directGet(ctx, nc); err != nil {
		t.Fatalf("deleted key: %v", err)
	}
	if _, found, _ := c.directGet(ctx, nc); found {
		t.Fatal("a deleted key is found")
	}
	if _, err := kv.Put(ctx, "p", []byte("not json")); err != nil {
		t.Fatal(err)
	}
	read("a bad value", 4)
	if s := c.Stats(); s.Rejected != 1 {
		t.Fatalf("rejected %d, want 1 (the bad value)", s.Rejected)
	}
}

// startServer starts node a's server of pair and connects to it.
func startServer(t *testing.T, pair string) (*natsnode.Server, *nats.Conn) {
	t.Helper()
	srv, err := natsnode.Start(natsnode.Options{Pair: pair, Node: "a", Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	nc, err := srv.Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return srv, nc
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/natsnode"
	"github.com/tandem-ha/tandem/pkg/subject"
	"github.com/tandem-ha/tandem/services/notifier"
)

// The session key's consumers on the state bucket (issue 12 §5): it can make
// none — no durable, no ephemeral watch, no direct or sourcing consumer
// (which nats-server 2.15 neither counts against max_consumers nor lists)
// delivering to a subject it may not publish on — and still reads the
// pair's state. An application's watches (printq) are bounded by the
// stream: notifier.state_consumers of them at most, and no inactivity
// longer than the stream allows.
func TestSessionKeyConsumersBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	seeds := filepath.Join(t.TempDir(), "nkeys")
	auth, err := natsnode.WriteSeeds(seeds, config.AuthRoles)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 5
	var cfg config.Config
	n := startMasterNode(ctx, t, func(c *config.Config) {
		c.NATS.Auth, c.NATS.CredsDir = auth, seeds
		c.Notifier.StateConsumers = limit
		cfg = *c
	}, nil)
	own, err := n.Server().Connect("test")
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	ojs, err := jetstream.NewWithDomain(own, n.Server().Domain())
	if err != nil {
		t.Fatal(err)
	}
	stream := "KV_" + subject.StateBucket
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := ojs.Stream(ctx, stream)
		if err == nil && st.CachedInfo().Config.MaxConsumers == limit &&
			st.CachedInfo().Config.ConsumerLimits.InactiveThreshold == notifier.StateConsumerInactive {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the state bucket's stream is not bounded by notifier.state_consumers: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	connect := func(role string) *nats.Conn {
		opts, err := natsnode.ClientOptions(cfg, role)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(n.Server().ClientURL(), append(opts, nats.NoReconnect(),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		return nc
	}
	key := "$KV." + subject.StateBucket + ".p"
	consumers := func() int {
		st, err := ojs.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().State.Consumers
	}
	// create asks for a consumer on the state stream through subj, as a raw
	// client could (every field of the request is the client's choice).
	create := func(nc *nats.Conn, subj string, cfg map[string]any) error {
		cfg["deliver_policy"], cfg["ack_policy"] = "last_per_subject", "none"
		cfg["filter_subject"] = key
		req, _ := json.Marshal(map[string]any{"stream_name": stream, "config": cfg})
		m, err := nc.Request(subj, req, 2*time.Second)
		if err != nil {
			return err
		}
		var resp struct {
			Error *struct {
				Description string `json:"description"`
			} `json:"error"`
		}
		if err := json.Unmarshal(m.Data, &resp); err != nil {
			return err
		}
		if resp.Error != nil {
			return errors.New(resp.Error.Description)
		}
		return nil
	}
	sess := connect(config.RoleSession)
	base := "$JS.API.CONSUMER.CREATE." + stream
	inbox := natsnode.InboxPrefix(config.RoleSession) + ".w"
	for _, c := range []struct {
		what, subj string
		cfg        map[string]any
	}{
		{"a durable, named form", base + ".hoard." + key, map[string]any{"durable_name": "hoard", "deliver_subject": inbox}},
		{"a durable, legacy form", "$JS.API.CONSUMER.DURABLE.CREATE." + stream + ".hoard", map[string]any{"durable_name": "hoard", "deliver_subject": inbox}},
		{"a durable, unnamed form", base, map[string]any{"durable_name": "hoard", "deliver_subject": inbox}},
		{"an ephemeral watch", base, map[string]any{"deliver_subject": inbox}},
		{"a named ephemeral watch", base + ".w1." + key, map[string]any{"name": "w1", "deliver_subject": inbox}},
		// Not counted against max_consumers by nats-server 2.15, and not
		// listed: only a permission keeps it out.
		{"a direct consumer delivering to the monitor's control subject", base, map[string]any{"direct": true, "deliver_subject": subject.Control("p", "a")}},
		{"a sourcing consumer", base, map[string]any{"sourcing": true, "deliver_subject": inbox}},
	} {
		before := consumers()
		if err := create(sess, c.subj, c.cfg); err == nil || consumers() != before {
			t.Errorf("the session key made %s (err %v, consumers %d → %d)", c.what, err, before, consumers())
		}
	}
	// What sessions do read: the pair's state, by direct get.
	sjs, err := jetstream.New(sess)
	if err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		kv, err := sjs.KeyValue(ctx, subject.StateBucket)
		if err == nil {
			if _, err = kv.Get(ctx, "p"); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the session key cannot read the pair's state: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// An application's watches (printq) are bounded by the stream: at most
	// notifier.state_consumers, every client's together, and none that
	// would outlive its client's inactivity for an hour.
	app := connect(config.RolePrintq)
	if err := create(app, base+".long."+key, map[string]any{"name": "long", "deliver_subject": natsnode.InboxPrefix(config.RolePrintq) + ".w",
		"inactive_threshold": int64(time.Hour)}); err == nil || !strings.Contains(err.Error(), "inactive threshold") {
		t.Fatalf("a watch kept for an hour of inactivity: %v", err)
	}
	made := 0
	var last error
	for i := range limit + 10 {
		name := "w" + strconv.Itoa(i)
		if last = create(app, base+"."+name+"."+key, map[string]any{"name": name,
			"deliver_subject": natsnode.InboxPrefix(config.RolePrintq) + "." + name}); last != nil {
			break
		}
		made++
	}
	if n := consumers(); n > limit || made == 0 || last == nil || !strings.Contains(last.Error(), "maximum consumers") {
		t.Fatalf("made %d watches, %d consumers on the stream, then %v; want at most %d, then the maximum consumers limit", made, n, last, limit)
	}
}

package session

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// The sessions of one connection acknowledge a notification in batches of
// at most api.MaxAckBatch lines on the client's batch subject, every line
// one session's acknowledgement of what it switched, each session once; a
// client with one session acknowledges on the session's own subject.
func TestAcksInBatches(t *testing.T) {
	const pair = "p"
	srv, nc := startServer(t, pair)

	var mu sync.Mutex
	batches := map[string][]int{} // subject → lines of each message
	acks := map[string][]api.AckCount{}
	record := func(m *nats.Msg) {
		var got []api.AckCount
		if a, err := api.DecodeAck(m.Data); err == nil {
			got = []api.AckCount{a.Count()}
		} else if got, err = api.CountAckBatch(m.Data, pair); err != nil {
			t.Errorf("%s: %v", m.Subject, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		batches[m.Subject] = append(batches[m.Subject], len(got))
		for _, a := range got {
			acks[a.Session] = append(acks[a.Session], a)
		}
	}
	for _, subj := range []string{subject.Acks(pair), subject.AckBatches(pair)} {
		if _, err := nc.Subscribe(subj, record); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	many, err := Dial([]string{srv.ClientURL()}, pair)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(many.Close)
	one, err := Dial([]string{srv.ClientURL()}, pair)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(one.Close)
	const n = 2*api.MaxAckBatch + 5
	var sessions []*Session
	for i := range n {
		s, err := many.Add(fmt.Sprintf("ts%05d", i), []Connection{{Address: `\\a.test\Floor3`}, {Address: `\\files.test\Scan`}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		sessions = append(sessions, s)
	}
	alone, err := one.Add("alone", []Connection{{Address: "ipp://a.test:631/printers/Label"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every hello", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acks) == n+1
	})
	mu.Lock()
	clear(batches)
	clear(acks)
	mu.Unlock()

	b, _ := json.Marshal(api.Notification{V: api.NotificationVersion, Pair: pair, Epoch: 4, Active: "b", Failed: "a",
		Hosts: map[string]string{"a.test": "b.test"}, Time: time.Now(), Source: api.SourceLocal})
	if err := nc.Publish(subject.Notify(pair), b); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "every acknowledgement of epoch 4", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acks) == n+1
	})
	if !allAt(append(sessions, alone), 4) {
		t.Fatal("not every session applied epoch 4")
	}
	mu.Lock()
	defer mu.Unlock()
	for name, got := range acks {
		if len(got) != 1 || got[0] != (api.AckCount{Session: name, Kind: api.AckSwitched, Epoch: 4, Switched: 1}) {
			t.Fatalf("%s acknowledged %+v, want one switch of 1 connection at epoch 4", name, got)
		}
	}
	if got := batches[subject.Ack(pair, "alone")]; len(got) != 1 {
		t.Fatalf("the lone session's acknowledgements on its own subject: %v", got)
	}
	total := 0
	for _, lines := range batches[subject.AckBatch(pair, many.id)] {
		if lines > api.MaxAckBatch {
			t.Fatalf("a batch of %d lines, limit %d", lines, api.MaxAckBatch)
		}
		total += lines
	}
	if k := len(batches[subject.AckBatch(pair, many.id)]); k != 3 || total != n {
		t.Fatalf("%d acknowledgements in %d batches, want %d in 3: %v", total, k, n, batches)
	}
}

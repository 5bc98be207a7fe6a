package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/reply"
)

func validNotification() Notification {
	return Notification{V: 1, Pair: "p", Epoch: 3, Active: "b", Failed: "a", Hosts: map[string]string{"print-a": "print-b"},
		Renames: map[string]string{"x": "y"}, Reason: "F6", Outage: true, Time: time.Unix(1, 0).UTC(), Source: SourceCache}
}

func TestNotificationRoundTrip(t *testing.T) {
	b, _ := json.Marshal(validNotification())
	n, err := DecodeNotification(b)
	if err != nil || n.Epoch != 3 || n.Hosts["print-a"] != "print-b" {
		t.Fatalf("%+v %v", n, err)
	}
	for _, edit := range []func(*Notification){
		func(n *Notification) { n.V = 2 },
		func(n *Notification) { n.Epoch = 0 },
		func(n *Notification) { n.Active = "B" },
		func(n *Notification) { n.Failed = n.Active },
		func(n *Notification) { n.Source = "guess" },
		func(n *Notification) { n.Hosts = map[string]string{"a": "b", "c": "d", "e": "f"} },
		func(n *Notification) { n.Renames = map[string]string{"x": ""} },
	} {
		n := validNotification()
		edit(&n)
		b, _ := json.Marshal(n)
		if _, err := DecodeNotification(b); err == nil {
			t.Errorf("accepted %+v", n)
		}
	}
}

func TestAckAndSubject(t *testing.T) {
	if got := SessionFromAckSubject("p", "tandem.p.ack.ts1"); got != "ts1" {
		t.Fatal(got)
	}
	for _, s := range []string{"tandem.q.ack.ts1", "tandem.p.ack.a.b", "tandem.p.notify"} {
		if got := SessionFromAckSubject("p", s); got != "" {
			t.Errorf("%s: %q", s, got)
		}
	}
	b, _ := json.Marshal(SessionAck{V: 1, Pair: "p", Session: "ts1", Kind: AckSwitched, Epoch: 3, Switched: []Switch{{From: "a", To: "b"}}})
	if _, err := DecodeAck(b); err != nil {
		t.Fatal(err)
	}
}

func TestConfigReply(t *testing.T) {
	pc := PairConfig{Hosts: map[string]string{"a": "h"}, Resources: []Resource{{Node: "a", Name: "n", Address: `\\h\n`}}}
	r, err := DecodeConfigReply(reply.OK(ConfigReply{Config: pc}))
	if err != nil || r.Config.Resources[0].Address != `\\h\n` {
		t.Fatalf("%+v %v", r, err)
	}
	if _, err := DecodeConfigReply(reply.Fail(reply.Errorf(reply.CodeUnavailable, "db down"))); err == nil {
		t.Fatal("refusal accepted")
	}
	bad := PairConfig{Resources: []Resource{{Node: "A", Name: "n", Address: "x"}}}
	if _, err := DecodeConfigReply(reply.OK(ConfigReply{Config: bad})); err == nil {
		t.Fatal("bad node accepted")
	}
}

func FuzzDecodeNotification(f *testing.F) {
	b, _ := json.Marshal(validNotification())
	f.Add(b)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := DecodeNotification(data)
		if err != nil {
			return
		}
		if n.Validate() != nil {
			t.Fatal("decoded an invalid notification")
		}
		again, _ := json.Marshal(n)
		if _, err := DecodeNotification(again); err != nil {
			t.Fatalf("re-encoded notification refused: %v", err)
		}
	})
}

func FuzzDecodeAck(f *testing.F) {
	b, _ := json.Marshal(SessionAck{V: 1, Pair: "p", Session: "s", Kind: AckHello, Epoch: 1})
	f.Add(b)
	f.Add([]byte(`{"v":1,"kind":"bye"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAck(data)
		if err == nil && a.Validate() != nil {
			t.Fatal("decoded an invalid ack")
		}
	})
}

func FuzzDecodeConfigReply(f *testing.F) {
	f.Add(reply.OK(ConfigReply{Config: PairConfig{Hosts: map[string]string{"a": "h"}}}))
	f.Add([]byte(`{"ok":false,"error":{"code":"x","message":"y"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := DecodeConfigReply(data)
		if err == nil && r.Config.Validate() != nil {
			t.Fatal("decoded an invalid configuration")
		}
	})
}

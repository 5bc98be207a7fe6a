package event

import (
	"encoding/json"
	"errors"
	"reflect"
	"sort"
	"testing"
)

// sample is a value of every event type's data, as producers fill them.
func sample(typ string) any {
	left := 3
	acked := int64(12)
	v := dataTypes[typ]()
	switch d := v.(type) {
	case *Activation:
		*d = Activation{Why: Why{"F6: outage"}, From: "passive", Outage: true}
	case *MaintenanceChange:
		*d = MaintenanceChange{Why: Why{"on"}, On: true, LeftTicks: &left}
	case *Notified:
		*d = Notified{Epoch: 4, Active: "b", Failed: "a", Known: 2, Acknowledged: 2, Complete: true, AllAckedMS: &acked}
	case *Conflict:
		*d = Conflict{Why: Why{"R3"}, Table: "t", PK: "1", LoserRow: json.RawMessage(`{"id":"1"}`)}
	case *Snapshot:
		*d = Snapshot{Phase: "discarded", Discarded: map[string]int{"t": 2}}
	}
	return v
}

func TestEveryTypeRoundTrips(t *testing.T) {
	types := Types()
	sort.Strings(types)
	for _, typ := range types {
		want := sample(typ)
		e, err := New("p", "a", "monitor", typ, 4, t0, want)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got, err := DecodeData(e)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: decoded %#v, want %#v", typ, got, want)
		}
	}
}

func TestDecodeDataStrict(t *testing.T) {
	for _, tt := range []struct {
		name, typ, data string
	}{
		{"unknown field", NodeActivated, `{"reason":"x","from":"passive","outage":false,"extra":1}`},
		{"wrong field type", NodeActivated, `{"reason":"x","outage":"yes"}`},
		{"trailing data", PeerLost, `{"peer":"b"} {}`},
		{"unknown type", "tandem.made.up", `{}`},
		{"too large", PeerLost, `{"peer":"` + string(make([]byte, MaxSize)) + `"}`},
	} {
		e := Envelope{Type: tt.typ, Data: json.RawMessage(tt.data)}
		if _, err := DecodeData(e); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", tt.name, err)
		}
	}
	if _, err := As[PeerMissing](Envelope{Type: NodeActivated, Data: json.RawMessage(`{}`)}); err == nil {
		t.Error("As decoded node.activated data as PeerLost")
	}
}

// TestActivationEmittedJSON keeps the emitted JSON of an activation as
// consumers have read it: reason, from and outage.
func TestActivationEmittedJSON(t *testing.T) {
	b, _ := json.Marshal(Activation{Why: Why{"F6: link closed"}, From: "passive", Outage: true})
	var m map[string]json.RawMessage
	_ = json.Unmarshal(b, &m)
	if len(m) != 3 || string(m["reason"]) != `"F6: link closed"` || string(m["from"]) != `"passive"` || string(m["outage"]) != "true" {
		t.Fatalf("activation data %s", b)
	}
}

func TestActivationOf(t *testing.T) {
	mk := func(typ string, epoch uint64, data any) Envelope {
		e, err := New("p", "a", "monitor", typ, epoch, t0, data)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, ok, err := ActivationOf(mk(NodeActivated, 3, Activation{Why: Why{"F6: x"}, From: "passive", Outage: true}))
	if !ok || err != nil || !a.Outage || a.Reason != "F6: x" {
		t.Fatalf("node.activated: %+v %v %v", a, ok, err)
	}
	a, ok, err = ActivationOf(mk(CollisionResolved, 5, Collision{Why: Why{"F7"}, Peer: "b", PeerEpoch: 4, PreviousEpoch: 2}))
	if !ok || err != nil || a.Outage || a.Reason != "F7" {
		t.Fatalf("collision.resolved: %+v %v %v", a, ok, err)
	}
	// The case the notifier and the replicator once disagreed on: the
	// taking node's switchover.completed names itself, but its
	// node.activated of the same epoch is the activation.
	done := mk(SwitchoverCompleted, 5, SwitchoverDone{Why: Why{"a is active in epoch 5"}, To: "a", Epoch: 5})
	if _, ok, err := ActivationOf(done); ok || err != nil || IsActivation(done.Type) {
		t.Fatalf("switchover.completed to self counted as an activation: %v %v", ok, err)
	}
	if _, ok, err := ActivationOf(mk(NodeActivated, 0, Activation{})); ok || err == nil {
		t.Fatal("activation in epoch 0 accepted")
	}
	for _, typ := range ActivationTypes() {
		if !IsActivation(typ) {
			t.Fatalf("%s in ActivationTypes but not IsActivation", typ)
		}
	}
}

func FuzzDecodeData(f *testing.F) {
	types := Types()
	sort.Strings(types)
	for i, typ := range types {
		b, _ := json.Marshal(sample(typ))
		f.Add(uint8(i), b)
	}
	f.Add(uint8(0), []byte(`{"reason":1}`))
	f.Add(uint8(1), []byte(`{"loser_row":{"a":[1,2]}}`))
	f.Fuzz(func(t *testing.T, i uint8, in []byte) {
		e := Envelope{Type: types[int(i)%len(types)], Data: in}
		v, err := DecodeData(e)
		if err != nil {
			return
		}
		// Whatever is accepted encodes and decodes to the same value.
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: accepted data does not encode: %v", e.Type, err)
		}
		e.Data = out
		v2, err := DecodeData(e)
		if err != nil {
			t.Fatalf("%s: re-decode of %s: %v", e.Type, out, err)
		}
		if out2, _ := json.Marshal(v2); string(out2) != string(out) {
			t.Fatalf("%s: %s re-encodes as %s", e.Type, out, out2)
		}
		if _, _, err := ActivationOf(e); err != nil && IsActivation(e.Type) && e.Epoch != 0 {
			t.Fatalf("%s: accepted data is no activation: %v", e.Type, err)
		}
	})
}

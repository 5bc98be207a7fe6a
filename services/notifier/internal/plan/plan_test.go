package plan

import (
	"reflect"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
)

var db = &api.PairConfig{
	Hosts: map[string]string{"a": "db-a", "b": "db-b"},
	Resources: []api.Resource{
		{Node: "a", Name: "F3", Address: `\\db-a\F3`},
		{Node: "b", Name: "F3", Address: `\\db-b\F3`},
		{Node: "a", Name: "L", Address: "ipp://db-a:631/printers/L"},
		{Node: "b", Name: "L", Address: "ipp://db-b:631/printers/L2"},
		{Node: "a", Name: "only-a", Address: `\\db-a\X`},
	},
}

func TestNotification(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	act := Activation{Pair: "p", Node: "b", Epoch: 5, Reason: "F6: outage", Outage: true, Time: at, EventID: "e1"}
	cases := []struct {
		name    string
		p       Pair
		hosts   map[string]string
		renames map[string]string
		source  string
		failed  string
		missing []string
	}{
		{"database", Pair{Self: "b", Peer: "a", Hosts: map[string]string{"a": "cfg-a", "b": "cfg-b"}, DB: db, Source: api.SourceDatabase},
			map[string]string{"db-a": "db-b"}, map[string]string{"ipp://db-a:631/printers/L": "ipp://db-b:631/printers/L2"}, api.SourceDatabase, "a", []string{`\\db-a\X`}},
		{"cache", Pair{Self: "a", Peer: "b", DB: db, Source: api.SourceCache},
			map[string]string{"db-a": "db-b"}, map[string]string{"ipp://db-a:631/printers/L": "ipp://db-b:631/printers/L2"}, api.SourceCache, "a", []string{`\\db-a\X`}},
		{"never read", Pair{Self: "b", Peer: "a", Hosts: map[string]string{"a": "cfg-a", "b": "cfg-b"}},
			map[string]string{"cfg-a": "cfg-b"}, nil, api.SourceLocal, "a", nil},
		{"database without hosts table", Pair{Self: "b", Peer: "a", Hosts: map[string]string{"a": "cfg-a", "b": "cfg-b"}, DB: &api.PairConfig{}, Source: api.SourceDatabase},
			map[string]string{"cfg-a": "cfg-b"}, nil, api.SourceDatabase, "a", nil},
		{"peer unknown", Pair{Self: "b", Hosts: map[string]string{"b": "cfg-b"}},
			map[string]string{}, nil, api.SourceLocal, "", nil},
	}
	for _, c := range cases {
		n := Notification(act, c.p)
		if err := n.Validate(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if n.Active != "b" || n.Failed != c.failed || n.Epoch != 5 || n.Source != c.source || !n.Outage || !n.Time.Equal(at) {
			t.Errorf("%s: %+v", c.name, n)
		}
		if !reflect.DeepEqual(n.Hosts, c.hosts) || !reflect.DeepEqual(n.Renames, c.renames) {
			t.Errorf("%s: hosts %v renames %v", c.name, n.Hosts, n.Renames)
		}
		if want := c.missing; !reflect.DeepEqual(n.Missing, want) {
			t.Errorf("%s: missing %v, want %v", c.name, n.Missing, want)
		}
	}
}

func TestFromEvent(t *testing.T) {
	now := time.Now()
	e, _ := event.New("p", "a", "monitor", event.NodeActivated, 4, now, map[string]any{"reason": "F2", "outage": false})
	a, ok, err := FromEvent(e)
	if err != nil || !ok || a.Node != "a" || a.Epoch != 4 || a.Reason != "F2" || a.EventID != e.ID {
		t.Fatalf("%+v %v %v", a, ok, err)
	}
	c, _ := event.New("p", "a", "monitor", event.CollisionResolved, 6, now, map[string]any{"reason": "F7"})
	if a, ok, err := FromEvent(c); err != nil || !ok || a.Epoch != 6 {
		t.Fatalf("collision: %+v %v %v", a, ok, err)
	}
	h, _ := event.New("p", "a", "monitor", event.HookFinished, 6, now, nil)
	if _, ok, err := FromEvent(h); ok || err != nil {
		t.Fatal("a hook event is no activation")
	}
	z, _ := event.New("p", "a", "monitor", event.NodeActivated, 0, now, nil)
	if _, _, err := FromEvent(z); err == nil {
		t.Fatal("epoch 0 accepted")
	}
}

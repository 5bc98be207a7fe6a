package session

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
)

// BenchmarkStep is one session's share of a failover: apply the
// notification and encode the acknowledgement into its connection's batch.
func BenchmarkStep(b *testing.B) {
	c := &Client{pair: "p"}
	conns := []Connection{
		{Address: `\\print-a\Floor3`, Default: true, Options: map[string]string{"duplex": "long-edge"}},
		{Address: "ipp://print-a:631/printers/Label", Options: map[string]string{"tray": "2"}},
		{Address: `\\files\Scanner`},
	}
	n := api.Notification{V: 1, Pair: "p", Active: "b", Failed: "a", Hosts: map[string]string{"print-a": "print-b"},
		Time: time.Now(), Source: api.SourceDatabase}
	var epoch uint64
	buf := make([]byte, 0, ackCap)
	rw := newRewriter(n, 1000)
	for b.Loop() {
		epoch++
		n.Epoch = epoch
		s := &Session{c: c, name: "ts00042", conns: conns}
		var acked, applied bool
		var ch Change
		if buf, acked, applied = s.step(buf[:0], n, rw, &ch); !acked || !applied {
			b.Fatal("not applied")
		}
	}
}

func BenchmarkDecodeNotification(b *testing.B) {
	n := api.Notification{V: 1, Pair: "p", Epoch: 3, Active: "b", Failed: "a", Hosts: map[string]string{"print-a": "print-b"},
		Renames: map[string]string{"ipp://print-a:631/printers/Label": "ipp://print-b:631/printers/Label-B"},
		Reason:  "F6: outage: the peer refused the connection", Outage: true, Time: time.Now(), Source: api.SourceDatabase, Event: "01JABCDEFGHJKMNPQRSTVWXYZ0"}
	raw, _ := json.Marshal(n)
	for b.Loop() {
		if _, err := api.DecodeNotification(raw); err != nil {
			b.Fatal(err)
		}
	}
}

package api

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tandem-ha/tandem/pkg/event"
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
		func(n *Notification) { n.Missing = []string{"ok", ""} },
		func(n *Notification) { n.Missing = []string{"bad\x00"} },
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

// An acknowledgement with skipped connections round-trips through
// AppendAck and DecodeAck; a bad skip is refused.
func TestAckSkipped(t *testing.T) {
	a := SessionAck{V: 1, Pair: "p", Session: "ts1", Kind: AckSwitched, Epoch: 3,
		Switched: []Switch{{From: `\\a\x`, To: `\\b\x`}},
		Skipped:  []Skip{{Address: `\\a\y`, Reason: "missing on node b"}}}
	got, err := DecodeAck(AppendAck(nil, a))
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range []Skip{{Address: "", Reason: "r"}, {Address: "x", Reason: ""}, {Address: "x", Reason: "a\nb"}} {
		a.Skipped = []Skip{bad}
		if _, err := DecodeAck(AppendAck(nil, a)); err == nil {
			t.Errorf("accepted %+v", bad)
		}
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
	f.Add([]byte(`{"v":1,"pair":"p","session":"s1","kind":"switched","epoch":3,"switched":[{"from":"\\\\print-a\\Floor3","to":"\\\\print-b\\Floor3"}],"ms":12}`))
	f.Add([]byte(` { "v" : 1 , "pair":"p","session":"s","kind":"hello","epoch":0,"switched":[] } `))
	f.Add([]byte(`{"v":1,"V":2,"pair":"p\u0041","session":"s","kind":"hello","epoch":01,"ms":-1,"switched":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodeAck(data)
		if err == nil && a.Validate() != nil {
			t.Fatal("decoded an invalid ack")
		}
		// CountAck refuses what DecodeAck refuses (or another pair), and
		// counts what it decodes.
		c, cerr := CountAck(data, "p")
		if err == nil && a.Pair != "p" {
			err = fmt.Errorf("ack: pair %q, want %q", a.Pair, "p")
		}
		if fmt.Sprint(err) != fmt.Sprint(cerr) || err == nil && c != a.Count() {
			t.Fatalf("%q: DecodeAck %+v, %v; CountAck %+v, %v", data, a.Count(), err, c, cerr)
		}
		// The fast path accepts only what DecodeStrict accepts, with the
		// same result.
		fast, ok := decodeAckFast(data)
		if !ok || len(data) > MaxAck {
			return
		}
		var slow SessionAck
		if err := event.DecodeStrict(data, MaxAck, &slow); err != nil {
			t.Fatalf("fast path accepted %q, DecodeStrict refused it: %v", data, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, strict %+v", data, fast, slow)
		}
	})
}

// The acknowledgements sessions send take the fast path, and give what
// DecodeStrict gives; other forms go the slow way, with the same result.
func TestDecodeAckFastPath(t *testing.T) {
	acks := []SessionAck{
		{V: 1, Pair: "p", Session: "s1", Kind: AckSwitched, Epoch: 3, MS: 12,
			Switched: []Switch{{From: `\\print-a\Floor3`, To: `\\print-b\Floor3`}, {From: "ipp://a/<x>&", To: "ipp://b/é"}}},
		{V: 1, Pair: "p", Session: "s2", Kind: AckHello, Epoch: 0},
		{V: 1, Pair: "p", Session: "s3", Kind: AckBye, Epoch: 18446744073709551615},
	}
	for _, a := range acks {
		b, _ := json.Marshal(a)
		fast, ok := decodeAckFast(b)
		if !ok && !strings.Contains(string(b), `\u00`) { // encoding/json writes < as \u003c: the slow path
			t.Fatalf("%s: not on the fast path", b)
		}
		if ok && !reflect.DeepEqual(fast, a) {
			t.Fatalf("%s: fast %+v", b, fast)
		}
		got, err := DecodeAck(b)
		if err != nil || !reflect.DeepEqual(got, a) {
			t.Fatalf("%s: %+v, %v", b, got, err)
		}
	}
	for _, raw := range []string{
		`{"v":1,"pair":"p","session":"s","kind":"hello","epoch":1,"x":1}`,   // unknown field
		`{"v":1,"pair":"p","session":"s","kind":"hello","epoch":1} {}`,      // trailing data
		`{"v":1,"pair":"p","session":"s","kind":"hello","epoch":1.5}`,       // fraction
		`{"v":1,"pair":"p","session":"s","kind":"hello","epoch":-1}`,        // negative epoch
		`{"v":1,"pair":"p","session":"s","kind":"hello","epoch":1,"ms":-2}`, // negative ms
		`{"v":2,"pair":"p","session":"s","kind":"hello","epoch":1}`,         // version
		`{"v":1,"pair":"p","session":"s.x","kind":"hello","epoch":1}`,       // session name
		`{"v":1,"pair":"p","session":"s","kind":"hello","epoch":1,"switched":[{"from":"a","to":"b\u0007"}]}`,
	} {
		if _, err := DecodeAck([]byte(raw)); err == nil {
			t.Errorf("%s: accepted", raw)
		}
	}
	// Other spellings encoding/json accepts still decode, the slow way.
	got, err := DecodeAck([]byte(`{"V":1,"pair":"\u0070","session":"s","kind":"hello","epoch":1,"switched":null}`))
	if err != nil || got.Pair != "p" || got.V != 1 {
		t.Fatalf("slow path: %+v, %v", got, err)
	}
}

func BenchmarkDecodeAck(b *testing.B) {
	raw, _ := json.Marshal(SessionAck{V: 1, Pair: "p", Session: "ts00042", Kind: AckSwitched, Epoch: 3, MS: 12,
		Switched: []Switch{{From: `\\print-a\Floor3`, To: `\\print-b\Floor3`}, {From: "ipp://print-a:631/printers/Label", To: "ipp://print-b:631/printers/Label-B"}}})
	b.Run("fast", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeAck(raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("strict", func(b *testing.B) {
		for b.Loop() {
			var a SessionAck
			if err := event.DecodeStrict(raw, MaxAck, &a); err != nil {
				b.Fatal(err)
			}
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

func TestDecodeAckBatch(t *testing.T) {
	line := func(session string, epoch uint64) string {
		b, _ := json.Marshal(SessionAck{V: 1, Pair: "p", Session: session, Kind: AckSwitched, Epoch: epoch,
			Switched: []Switch{{From: `\\print-a\Floor3`, To: `\\print-b\Floor3`}}, MS: 3})
		return string(b)
	}
	got, err := DecodeAckBatch([]byte(line("s1", 3)+"\n"+line("s2", 3)+"\n"), "p")
	if err != nil || len(got) != 2 || got[1].Session != "s2" || got[0].Switched[0].To != `\\print-b\Floor3` {
		t.Fatalf("%+v, %v", got, err)
	}
	other := strings.Replace(line("s3", 3), `"pair":"p"`, `"pair":"q"`, 1)
	for name, raw := range map[string]string{
		"empty":      "",
		"blank line": line("s1", 3) + "\n\n" + line("s2", 3),
		"bad line":   line("s1", 3) + "\n" + `{"v":1}`,
		"other pair": line("s1", 3) + "\n" + other,
		"too many":   strings.Repeat(line("s1", 3)+"\n", MaxAckBatch+1),
		"too large":  strings.Repeat("x", MaxAckBatchBytes+1),
	} {
		if _, err := DecodeAckBatch([]byte(raw), "p"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzDecodeAckBatch also checks CountAckBatch against DecodeAckBatch: the
// same batches refused with the same error, the same counts of the others.
func FuzzDecodeAckBatch(f *testing.F) {
	f.Add([]byte(`{"v":1,"pair":"p","session":"s","kind":"hello","epoch":1}` + "\n" + `{"v":1,"pair":"p","session":"t","kind":"bye","epoch":1}`))
	for _, c := range countCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		acks, err := DecodeAckBatch(data, "p")
		counts, cerr := CountAckBatch(data, "p")
		if fmt.Sprint(err) != fmt.Sprint(cerr) {
			t.Fatalf("%q: DecodeAckBatch says %v, CountAckBatch %v", data, err, cerr)
		}
		if err != nil {
			return
		}
		if len(counts) != len(acks) {
			t.Fatalf("%q: %d counts of %d acks", data, len(counts), len(acks))
		}
		for i, a := range acks {
			if a.Validate() != nil || a.Pair != "p" {
				t.Fatalf("decoded an invalid ack %+v", a)
			}
			if counts[i] != a.Count() {
				t.Fatalf("%q line %d: counted %+v, decoded %+v", data, i+1, counts[i], a.Count())
			}
		}
	})
}

// countCases are batches CountAckBatch must treat as DecodeAckBatch does:
// valid ones, and ones each check of Validate refuses on the fast path.
var countCases = []string{
	`{"v":1,"pair":"p","session":"ts00042","kind":"switched","epoch":12,"switched":[{"from":"\\\\a.test\\Floor3","to":"\\\\b.test\\Floor3"},{"from":"ipp://a.test:631/printers/Label","to":"ipp://b.test:631/printers/Label"}],"ms":40}`,
	`{"v":1,"pair":"p","session":"s","kind":"switched","epoch":2,"switched":[]}` + "\n" + `{"v":1,"pair":"p","session":"t","kind":"hello","epoch":2}` + "\n",
	`{"v":2,"pair":"p","session":"s","kind":"hello","epoch":1}`,
	`{"pair":"p","session":"s","kind":"hello","epoch":1}`,
	`{"v":1,"pair":"q","session":"s","kind":"hello","epoch":1}`,
	`{"v":1,"pair":"P","session":"s","kind":"hello","epoch":1}`,
	`{"v":1,"session":"s","kind":"hello","epoch":1}`,
	`{"v":1,"pair":"p","session":"-s","kind":"hello","epoch":1}`,
	`{"v":1,"pair":"p","kind":"hello","epoch":1}`,
	`{"v":1,"pair":"p","session":"s","kind":"hi","epoch":1}`,
	`{"v":1,"pair":"p","session":"s","epoch":1}`,
	`{"v":1,"pair":"p","session":"s","kind":"switched","epoch":1,"switched":[{"from":"a"}]}`,
	`{"v":1,"pair":"p","session":"s","kind":"switched","epoch":1,"switched":[{"to":"a","from":""}]}`,
	`{"v":1,"pair":"p","session":"s","kind":"switched","epoch":1,"switched":[{}]}`,
	`{"v":1,"pair":"p","session":"s","kind":"switched","epoch":1,"switched":[{"from":"a","to":"b","to":"c"}]}`,
	`{"v":1,"pair":"p","session":"s","kind":"switched","epoch":1,"switched":[{"from":"a\u0001","to":"b"}]}`,
	`{"v":1,"pair":"p","session":"s","kind":"switched","epoch":1,"switched":[{"from":"a","to":"b"}],"skipped":[{"address":"x","reason":"y"}]}`,
	`{"v":1,"pair":"p","session":"s","kind":"bye","epoch":1,"ms":-1}`,
	`{"v":1,"pair":"p","session":"s","kind":"bye","epoch":1,"v":1}`,
	`{"v":1,"pair":"p","session":"s","kind":"bye","epoch":1}` + "\n\n" + `{"v":1,"pair":"p","session":"t","kind":"bye","epoch":1}`,
}

// CountAckBatch counts what DecodeAckBatch decodes, and refuses what it
// refuses, with the same error; including too many connections switched.
func TestCountAckBatch(t *testing.T) {
	many := make([]Switch, MaxAckSwitches+1)
	for i := range many {
		many[i] = Switch{From: "a", To: "b"}
	}
	tooMany, _ := json.Marshal(SessionAck{V: 1, Pair: "p", Session: "s", Kind: AckSwitched, Epoch: 1, Switched: many})
	most, _ := json.Marshal(SessionAck{V: 1, Pair: "p", Session: "s", Kind: AckSwitched, Epoch: 1, Switched: many[:MaxAckSwitches]})
	cases := append([]string{string(tooMany), string(most)}, countCases...)
	valid := 0
	for _, c := range cases {
		acks, err := DecodeAckBatch([]byte(c), "p")
		counts, cerr := CountAckBatch([]byte(c), "p")
		if fmt.Sprint(err) != fmt.Sprint(cerr) {
			t.Fatalf("%s: DecodeAckBatch says %v, CountAckBatch %v", c, err, cerr)
		}
		if err != nil {
			continue
		}
		valid++
		for i, a := range acks {
			if counts[i] != a.Count() {
				t.Fatalf("%s line %d: counted %+v, decoded %+v", c, i+1, counts[i], a.Count())
			}
		}
	}
	if valid != 6 { // most, the first two, skipped, and the two repeated keys DecodeStrict takes
		t.Fatalf("%d valid batches among the cases, want 6", valid)
	}
	c, ok := countAckFast(&ackScanner{}, []byte(countCases[0]), "p")
	if !ok || c != (AckCount{Session: "ts00042", Kind: AckSwitched, Epoch: 12, Switched: 2}) {
		t.Fatalf("the form sessions send is not counted on the fast path: %+v %v", c, ok)
	}
}

// A batch's lines share one scanner: a line's escaped strings (a UNC
// path's backslashes) cost no allocation of their own, only its session's
// name does.
func TestCountAckBatchAllocations(t *testing.T) {
	var batch []byte
	for i := range 100 {
		batch = AppendAck(batch, SessionAck{V: NotificationVersion, Pair: "p", Session: fmt.Sprintf("ts%05d", i), Kind: AckSwitched, Epoch: 12,
			Switched: []Switch{{From: `\\print-a\Floor3`, To: `\\print-b\Floor3`}, {From: "ipp://print-a:631/printers/Label", To: "ipp://print-b:631/printers/Label"}}, MS: 40})
		batch = append(batch, '\n')
	}
	var counts []AckCount
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		if counts, err = CountAckBatch(batch, "p"); err != nil {
			t.Fatal(err)
		}
	})
	if len(counts) != 100 || counts[99] != (AckCount{Session: "ts00099", Kind: AckSwitched, Epoch: 12, Switched: 2}) {
		t.Fatalf("counted %d, the last %+v", len(counts), counts[len(counts)-1])
	}
	if allocs > 100+5 {
		t.Errorf("%v allocations for a batch of 100, want a session name each and a few for the batch", allocs)
	}
}

// AppendAck writes what DecodeAck reads back, on its fast path unless a
// string needs escaping; negative numbers (which Validate refuses) too.
func FuzzAppendAck(f *testing.F) {
	f.Add("p", "s1", AckSwitched, uint64(3), `\\print-a\Floor3`, "ipp://b/<é>&", int64(12), 1)
	f.Add("p", "s1", AckHello, uint64(0), "a\u2028\"", "\x00", int64(-1), -3)
	f.Fuzz(func(t *testing.T, pair, session, kind string, epoch uint64, from, to string, ms int64, v int) {
		a := SessionAck{V: v, Pair: pair, Session: session, Kind: kind, Epoch: epoch, MS: ms}
		if from != "" || to != "" {
			a.Switched = []Switch{{From: from, To: to}, {From: to, To: from}}
		}
		b := AppendAck(nil, a)
		var got SessionAck
		if err := event.DecodeStrict(b, 1<<20, &got); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		want := a
		valid := true
		for _, s := range []string{pair, session, kind, from, to} {
			valid = valid && utf8.ValidString(s)
		}
		if !valid {
			b2, _ := json.Marshal(a) // invalid UTF-8 becomes U+FFFD
			want = SessionAck{}
			_ = json.Unmarshal(b2, &want)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: %+v, want %+v", b, got, want)
		}
		plain := true
		for _, s := range []string{pair, session, kind, from, to} {
			plain = plain && plainString(s)
		}
		if fast, ok := decodeAckFast(b); plain && (!ok || !reflect.DeepEqual(fast, want)) && v >= 0 && ms >= 0 {
			t.Fatalf("%q: not read back on the fast path: %+v %v", b, fast, ok)
		}
	})
}

// BenchmarkAckBatch is a notifier's share of a failover per connection of
// 100 sessions: a batch of 100 acknowledgements, decoded or counted.
func BenchmarkAckBatch(b *testing.B) {
	var batch []byte
	for i := range 100 {
		batch = AppendAck(batch, SessionAck{V: NotificationVersion, Pair: "p", Session: fmt.Sprintf("ts%05d", i), Kind: AckSwitched, Epoch: 12,
			Switched: []Switch{{From: `\\a.test\Floor3`, To: `\\b.test\Floor3`}, {From: "ipp://a.test:631/printers/Label", To: "ipp://b.test:631/printers/Label"}}, MS: 40})
		batch = append(batch, '\n')
	}
	b.Run("decode", func(b *testing.B) {
		for b.Loop() {
			if _, err := DecodeAckBatch(batch, "p"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("count", func(b *testing.B) {
		for b.Loop() {
			if _, err := CountAckBatch(batch, "p"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

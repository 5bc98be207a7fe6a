package notifier_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// TestBadInputRefusedCountedNothingChanged: malformed acknowledgements over
// NATS (single and in batches) and HTTP, unknown pairs, missing or wrong credentials on the push
// endpoint, and malformed status requests are refused, counted and
// reported, and change neither the state nor the session counts.
func TestBadInputRefusedCountedNothingChanged(t *testing.T) {
	w := newWorld(t)
	a := w.start("a", nil)
	w.sessionsOn("a", 2, 10, 1, "ts")
	before := a.svc.Status()

	good := func(session string) api.SessionAck {
		return api.SessionAck{V: 1, Pair: pairName, Session: session, Kind: api.AckSwitched, Epoch: 9}
	}
	enc := func(v any) []byte { b, _ := json.Marshal(v); return b }
	wrongKind, wrongPair, badVersion, tooMany := good("x1"), good("x2"), good("x3"), good("x4")
	wrongKind.Kind = "delete"
	wrongPair.Pair = "q"
	badVersion.V = 7
	for range api.MaxAckSwitches + 1 {
		tooMany.Switched = append(tooMany.Switched, api.Switch{From: "a", To: "b"})
	}
	bad := []struct {
		subj string
		data []byte
	}{
		{subject.Ack(pairName, "x0"), []byte("not json")},
		{subject.Ack(pairName, "x0"), []byte(`{"v":1,"pair":"p","session":"x0","kind":"hello","epoch":1,"extra":1}`)},
		{subject.Ack(pairName, "x0"), append(enc(good("x0")), []byte(" {}")...)},
		{subject.Ack(pairName, "other"), enc(good("x0"))}, // names another session
		{subject.Ack(pairName, "x1"), enc(wrongKind)},
		{subject.Ack(pairName, "x2"), enc(wrongPair)},
		{subject.Ack(pairName, "x3"), enc(badVersion)},
		{subject.Ack(pairName, "x4"), enc(tooMany)},
		{subject.Ack(pairName, "x5"), []byte(strings.Repeat(" ", api.MaxAck+1))},
		// A batch with one bad line is refused whole: y1 stays unknown.
		{subject.AckBatch(pairName, "c1"), append(append(enc(good("y1")), '\n'), []byte("not json")...)},
		{subject.AckBatch(pairName, "c1"), append(append(enc(good("y1")), '\n'), enc(wrongPair)...)},
		{subject.AckBatch(pairName, "c1"), append(append(enc(good("y1")), "\n\n"...), enc(good("y2"))...)},
		{subject.AckBatch(pairName, "c1"), []byte(strings.Repeat(string(enc(good("y1")))+"\n", api.MaxAckBatch+1))},
	}
	for _, b := range bad {
		if err := a.nc.Publish(b.subj, b.data); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "every bad ack counted", func() bool { return metric(t, a, "tandem_notifier_rejected_total") >= float64(len(bad)) })

	// Admin: a malformed status request gets an error reply.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	err := reply.Request(ctx, a.nc, subject.NotifierStatus(pairName), map[string]any{"v": 1, "pair": "q"}, nil)
	if re, ok := err.(*reply.Error); !ok || re.Code != reply.CodeWrongPair {
		t.Fatalf("status for another pair: %v", err)
	}

	// Push endpoint.
	base := "http://" + a.svc.PushAddr()
	do := func(method, path, auth, body string) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	ackPath := "/v1/pairs/p/sessions/web1/ack"
	okAck := string(enc(api.SessionAck{V: 1, Pair: pairName, Session: "web1", Kind: api.AckHello, Epoch: 2}))
	refusals := []struct {
		method, path, auth, body string
		want                     int
	}{
		{"GET", "/v1/pairs/p/active", "", "", http.StatusUnauthorized},
		{"GET", "/v1/pairs/p/events", "", "", http.StatusUnauthorized},
		{"GET", "/v1/pairs/p/active", "Bearer wrong", "", http.StatusUnauthorized},
		{"GET", "/v1/pairs/p/active", "Basic " + token, "", http.StatusUnauthorized},
		{"POST", ackPath, "Bearer wrong", okAck, http.StatusUnauthorized},
		{"GET", "/v1/pairs/q/active", "Bearer " + token, "", http.StatusNotFound},
		{"GET", "/v1/pairs/q/events", "Bearer " + token, "", http.StatusNotFound},
		{"POST", ackPath, "Bearer " + token, "{", http.StatusBadRequest},
		{"POST", "/v1/pairs/p/sessions/web2/ack", "Bearer " + token, okAck, http.StatusBadRequest}, // path names another session
		{"POST", ackPath, "Bearer " + token, strings.Repeat("x", api.MaxAck+10), http.StatusBadRequest},
	}
	for _, r := range refusals {
		if got := do(r.method, r.path, r.auth, r.body); got != r.want {
			t.Errorf("%s %s (%q): status %d, want %d", r.method, r.path, r.auth, got, r.want)
		}
	}
	if got := metric(t, a, "tandem_notifier_push_refused_total"); got != float64(len(refusals)) {
		t.Fatalf("push refusals counted %v, want %d", got, len(refusals))
	}
	waitFor(t, "refusals reported as events", func() bool { return len(a.eventsOf(event.InputRejected)) > 0 })

	after := a.svc.Status()
	if cur, _ := a.svc.Current(); cur.Epoch != 2 || after.Known != before.Known || after.Acknowledged != before.Acknowledged {
		t.Fatalf("state changed by bad input: epoch %d, status %+v, before %+v", cur.Epoch, after, before)
	}

	// With the right credentials it works: the current state as JSON, and
	// an HTTP acknowledgement counts a new session.
	if got := do("GET", "/v1/pairs/p/active", "Bearer "+token, ""); got != http.StatusOK {
		t.Fatalf("active: %d", got)
	}
	if got := do("POST", ackPath, "Bearer "+token, okAck); got != http.StatusNoContent {
		t.Fatalf("ack: %d", got)
	}
	waitFor(t, "the HTTP session known", func() bool { return a.svc.Status().Known == before.Known+1 })
}

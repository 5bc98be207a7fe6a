package logging

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
)

// lines decodes buf's JSON lines.
func lines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if n := strings.Count(line, `"time":`); n != 1 {
			t.Errorf("line %q has %d time fields, want 1", line, n)
		}
		out = append(out, m)
	}
	return out
}

var timeRE = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestJSONFixedFields(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	l = For(l, "monitor", "shop", "alpha", "master")
	l.Info().Uint64(FieldEpoch, 7).Str(FieldSubject, "tandem.shop.hb.alpha").
		Str(FieldState, "active").Str(FieldReason, "peer lost").Msg("activated")
	l.Debug().Msg("not at info")

	got := lines(t, &buf)
	if len(got) != 1 {
		t.Fatalf("got %d lines, want 1 (debug is below info): %v", len(got), got)
	}
	m := got[0]
	want := map[string]any{
		FieldService: "monitor", FieldPair: "shop", FieldNode: "alpha", FieldRole: "master",
		FieldEpoch: 7.0, FieldSubject: "tandem.shop.hb.alpha", FieldState: "active",
		FieldReason: "peer lost", "level": "info", "message": "activated",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	ts, _ := m["time"].(string)
	if !timeRE.MatchString(ts) {
		t.Errorf("time = %q, want RFC 3339 with milliseconds in UTC", ts)
	}
	if at, err := time.Parse(time.RFC3339, ts); err != nil || time.Since(at) > time.Minute {
		t.Errorf("time %q is not now (%v)", ts, err)
	}
}

func TestConsole(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatConsole, "debug")
	if err != nil {
		t.Fatal(err)
	}
	l = For(l, "monitor", "shop", "alpha", "master")
	l.Debug().Str(FieldState, "passive").Msg("started")
	out := buf.String()
	for _, s := range []string{"DBG", "started", "state=passive", "node=alpha"} {
		if !strings.Contains(out, s) {
			t.Errorf("console line %q does not contain %q", out, s)
		}
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z `).MatchString(out) {
		t.Errorf("console line %q does not start with the time", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("console line %q is coloured on a buffer", out)
	}
}

func TestNewRefuses(t *testing.T) {
	tests := []struct{ format, level, want string }{
		{"text", "info", `log format "text"`},
		{"", "info", `log format ""`},
		{"json", "verbose", `log level "verbose"`},
		{"json", "", `log level ""`},
		{"json", "1", `log level "1"`},
		{"json", "INFO", `log level "INFO"`},
	}
	for _, tt := range tests {
		_, err := New(&bytes.Buffer{}, tt.format, tt.level)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, %q) = %v, want an error containing %q", tt.format, tt.level, err, tt.want)
		}
	}
}

func TestWatermill(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	wl := Watermill(For(l, "replicator", "shop", "alpha", "master")).
		With(watermill.LogFields{"topic": "changes"})
	wl.Info("subscriber started", nil) // mapped to debug: not written
	wl.Error("publish failed", errors.New("nats: timeout"), watermill.LogFields{"attempt": 2})

	got := lines(t, &buf)
	if len(got) != 1 {
		t.Fatalf("got %d lines, want 1: %v", len(got), got)
	}
	m := got[0]
	want := map[string]any{
		"level": "error", "message": "publish failed", "error": "nats: timeout",
		"topic": "changes", "attempt": 2.0, FieldService: "replicator", FieldNode: "alpha",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if ts, _ := m["time"].(string); !timeRE.MatchString(ts) {
		t.Errorf("time = %q, want RFC 3339 with milliseconds in UTC", ts)
	}
}

func TestWatermillDebug(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatJSON, "debug")
	if err != nil {
		t.Fatal(err)
	}
	Watermill(l).Info("subscriber started", watermill.LogFields{"topic": "changes"})
	got := lines(t, &buf)
	if len(got) != 1 || got[0]["level"] != "debug" || got[0]["topic"] != "changes" {
		t.Errorf("got %v, want one debug line with the topic", got)
	}
}

// TestOneKeyOnce: a field added twice (For, then a service's own context)
// appears once; a repeated key with another value is kept under key_2; the
// check used on every log line in tests finds a repeated key at any depth.
func TestOneKeyOnce(t *testing.T) {
	var buf bytes.Buffer
	l, err := New(&buf, FormatJSON, "info")
	if err != nil {
		t.Fatal(err)
	}
	l = For(l, "", "p", "a", "master")
	l.Info().Str("service", "notifier").Str("pair", "p").Str("node", "a").Str("role", "standby").Uint64("epoch", 2).Msg("notification")
	line := buf.Bytes()
	if err := CheckJSONLine(line); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(line, &m); err != nil {
		t.Fatal(err)
	}
	if m["pair"] != "p" || m["node"] != "a" || m["role"] != "master" || m["role_2"] != "standby" || m["message"] != "notification" {
		t.Errorf("fields: %v", m)
	}
	for _, bad := range []string{`{"a":1,"a":1}`, `{"a":{"b":1,"b":2}}`, `{"a":[{"c":1,"c":1}]}`, `{"a":`, `{} {}`} {
		if CheckJSONLine([]byte(bad)) == nil {
			t.Errorf("CheckJSONLine(%s) passed", bad)
		}
	}
	if n, err := CheckJSONLines([]byte("{\"a\":1}\npanic: x\n{\"b\":2}\n")); n != 2 || err != nil {
		t.Errorf("CheckJSONLines: %d, %v", n, err)
	}
}

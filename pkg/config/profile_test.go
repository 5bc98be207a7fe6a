package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestHeartbeatProfile: heartbeat.profile fills the interval and the timeout
// that no source sets; an explicit value overrides only its own key, from
// any source; seed is the default (F16).
func TestHeartbeatProfile(t *testing.T) {
	tests := []struct {
		name              string
		file              string
		environ           []string
		flags             map[string]string
		interval, timeout time.Duration
		profile           string
	}{
		{name: "default is seed", interval: time.Second, timeout: 3 * time.Second, profile: "seed"},
		{name: "fast in the file", file: "heartbeat:\n  profile: fast\n", interval: 25 * time.Millisecond, timeout: 380 * time.Millisecond, profile: "fast"},
		{name: "fast in the environment", environ: []string{"TANDEM_HEARTBEAT_PROFILE=fast"}, interval: 25 * time.Millisecond, timeout: 380 * time.Millisecond, profile: "fast"},
		{name: "fast as a flag", flags: map[string]string{"heartbeat.profile": "fast"}, interval: 25 * time.Millisecond, timeout: 380 * time.Millisecond, profile: "fast"},
		{name: "explicit timeout over fast", file: "heartbeat:\n  profile: fast\n  timeout: 500ms\n", interval: 25 * time.Millisecond, timeout: 500 * time.Millisecond, profile: "fast"},
		{name: "explicit interval over seed", environ: []string{"TANDEM_HEARTBEAT_INTERVAL=500ms"}, interval: 500 * time.Millisecond, timeout: 3 * time.Second, profile: "seed"},
		{name: "explicit both over fast", file: "heartbeat:\n  interval: 100ms\n  timeout: 400ms\n", flags: map[string]string{"heartbeat.profile": "fast"}, interval: 100 * time.Millisecond, timeout: 400 * time.Millisecond, profile: "fast"},
		{name: "explicit 1s with fast", file: "heartbeat:\n  profile: fast\n  interval: 1s\n  timeout: 3s\n", interval: time.Second, timeout: 3 * time.Second, profile: "fast"},
		{name: "flag back to seed", file: "heartbeat:\n  profile: fast\n", flags: map[string]string{"heartbeat.profile": "seed"}, interval: time.Second, timeout: 3 * time.Second, profile: "seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			c, err := Load(path, append(slices.Clone(named), tt.environ...), tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if h := c.Heart; h.Interval != tt.interval || h.Timeout != tt.timeout || h.Profile != tt.profile {
				t.Errorf("heartbeat = %s %v/%v, want %s %v/%v", h.Profile, h.Interval, h.Timeout, tt.profile, tt.interval, tt.timeout)
			}
		})
	}
}

// TestHeartbeatProfileRefused: an unknown profile, or a profile's value that
// does not fit an explicit one, is refused with the key named, and the hint
// says where the other value came from.
func TestHeartbeatProfileRefused(t *testing.T) {
	tests := []struct {
		name    string
		environ []string
		flags   map[string]string
		err     []string
	}{
		{name: "unknown", environ: []string{"TANDEM_HEARTBEAT_PROFILE=turbo"}, err: []string{`heartbeat.profile: "turbo" is neither seed nor fast`}},
		{name: "case matters", flags: map[string]string{"heartbeat.profile": "Fast"}, err: []string{`heartbeat.profile: "Fast"`}},
		{name: "empty", flags: map[string]string{"heartbeat.profile": ""}, err: []string{`heartbeat.profile: ""`}},
		{name: "fast timeout below an explicit interval", environ: []string{"TANDEM_HEARTBEAT_PROFILE=fast", "TANDEM_HEARTBEAT_INTERVAL=1s"},
			err: []string{"heartbeat.timeout: 380ms must be at least 2 × heartbeat.interval (1s)", "heartbeat.profile fast sets 25ms and 380ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load("", append(slices.Clone(named), tt.environ...), tt.flags)
			wantErr(t, err, tt.err...)
			if strings.Contains(tt.err[0], "heartbeat.profile") && strings.Contains(err.Error(), "heartbeat.interval") {
				t.Errorf("an unknown profile also blamed heartbeat.interval: %v", err)
			}
		})
	}
}

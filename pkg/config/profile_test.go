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

// TestHeartbeatExplicitZeroRefused: heartbeat.interval or .timeout set to 0
// (or below) by any source is refused naming the key, the value and what is
// allowed; only a key no source sets takes the profile's value.
func TestHeartbeatExplicitZeroRefused(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		environ []string
		flags   map[string]string
		err     []string
	}{
		{name: "interval 0s in the file", file: "heartbeat:\n  interval: 0s\n",
			err: []string{"heartbeat.interval: 0s: want at least 10ms", "heartbeat.profile seed's 1s"}},
		{name: "interval 0 in the environment", environ: []string{"TANDEM_HEARTBEAT_INTERVAL=0"}, err: []string{"heartbeat.interval: 0s"}},
		{name: "timeout 0s as a flag", flags: map[string]string{"heartbeat.timeout": "0s"},
			err: []string{"heartbeat.timeout: 0s: want at least 2 × heartbeat.interval", "seed's 3s"}},
		{name: "timeout 0s with fast", file: "heartbeat:\n  profile: fast\n  timeout: 0s\n", err: []string{"heartbeat.timeout: 0s", "heartbeat.profile fast's 380ms"}},
		{name: "interval negative", file: "heartbeat:\n  interval: -1s\n", err: []string{"heartbeat.interval: -1s is below 10ms"}},
		{name: "timeout equal to interval", file: "heartbeat:\n  interval: 1s\n  timeout: 1s\n", err: []string{"heartbeat.timeout: 1s must be at least 2 × heartbeat.interval (1s)"}},
		{name: "timeout negative", environ: []string{"TANDEM_HEARTBEAT_TIMEOUT=-3s"}, err: []string{"heartbeat.timeout: -3s must be at least 2 × heartbeat.interval"}},
		{name: "discovery negative", file: "heartbeat:\n  discovery: -1s\n", err: []string{"heartbeat.discovery: -1s must not be negative"}},
		{name: "settle negative", flags: map[string]string{"heartbeat.settle": "-5s"}, err: []string{"heartbeat.settle: -5s must not be negative"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var path string
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			_, err := Load(path, append(slices.Clone(named), tt.environ...), tt.flags)
			wantErr(t, err, tt.err...)
		})
	}
}

// TestZeroMeansDefaultWhereDocumented: heartbeat.discovery and .settle
// document 0 as 3 × heartbeat.interval, so 0 is still accepted there.
func TestZeroMeansDefaultWhereDocumented(t *testing.T) {
	c, err := Load(writeFile(t, "heartbeat:\n  discovery: 0s\n  settle: 0s\n"), named, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Heart.DiscoveryWindow() != 3*time.Second || c.Heart.SettleDelay() != 3*time.Second {
		t.Errorf("discovery %v, settle %v; want 3s each", c.Heart.DiscoveryWindow(), c.Heart.SettleDelay())
	}
}

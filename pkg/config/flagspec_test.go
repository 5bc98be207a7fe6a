package config

import "testing"

func TestFlagSpecs(t *testing.T) {
	specs := FlagSpecs()
	if len(specs) != len(Keys()) {
		t.Fatalf("%d specs for %d keys", len(specs), len(Keys()))
	}
	byKey := map[string]FlagSpec{}
	for _, s := range specs {
		byKey[s.Key] = s
	}
	for key, typ := range map[string]string{"heartbeat.interval": "duration", "hosts": "map", "pair": "string", "database.tables": "strings"} {
		if s := byKey[key]; s.Type != typ {
			t.Errorf("%s: type %q, want %q", key, s.Type, typ)
		}
	}
	if s := byKey["heartbeat.interval"]; s.Default != "1s" || s.Help == "" {
		t.Errorf("heartbeat.interval: %+v", s)
	}
}

package member

import "testing"

func TestValid(t *testing.T) {
	for _, r := range []Role{Master, Standby} {
		if !r.Valid() {
			t.Errorf("%q invalid", r)
		}
	}
	for _, r := range []Role{"", "Master", "boss", "active"} {
		if r.Valid() {
			t.Errorf("role %q valid", r)
		}
	}
	for _, s := range []State{Starting, Passive, Active} {
		if !s.Valid() {
			t.Errorf("%q invalid", s)
		}
	}
	for _, s := range []State{"", "on", "master"} {
		if s.Valid() {
			t.Errorf("state %q valid", s)
		}
	}
}

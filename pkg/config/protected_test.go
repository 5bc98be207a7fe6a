package config

import (
	"strings"
	"testing"
)

func TestProtectedModeDefaultsLoopback(t *testing.T) {
	c := Default()
	c.Pair, c.Node = "shop", "alpha"
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults without nats.auth: %v", err)
	}
	for key, addr := range c.Listeners() {
		if !Loopback(addr) {
			t.Errorf("default %s = %q is not loopback", key, addr)
		}
	}
	if len(c.Listeners()) != 4 {
		t.Errorf("listeners %v: want client, leaf, admin and push", c.Listeners())
	}
}

func TestProtectedModeRefuses(t *testing.T) {
	for _, tt := range []struct {
		key, env, addr string
	}{
		{"nats.listen", "TANDEM_NATS_LISTEN", "0.0.0.0:4222"},
		{"nats.leaf_listen", "TANDEM_NATS_LEAF_LISTEN", "10.0.0.1:7422"},
		{"admin.listen", "TANDEM_ADMIN_LISTEN", ":8080"},
		{"notifier.push_listen", "TANDEM_NOTIFIER_PUSH_LISTEN", "[::]:8009"},
		{"notifier.push_listen", "TANDEM_NOTIFIER_PUSH_LISTEN", "print-a:8009"},
	} {
		t.Run(tt.key+"="+tt.addr, func(t *testing.T) {
			env := append([]string{tt.env + "=" + tt.addr}, named...)
			_, err := Load("", env, nil)
			wantErr(t, err, tt.key, tt.addr, "protected mode", "tandem auth init", "nats.auth", "insecure: true")
			if n := strings.Count(err.Error(), "protected mode"); n != 1 {
				t.Errorf("%d listeners refused, want 1: %v", n, err)
			}
			c, err := Load("", append(env, "TANDEM_INSECURE=true"), nil)
			if err != nil {
				t.Fatalf("with insecure: true: %v", err)
			}
			if got := c.InsecureListeners(); len(got) != 1 || got[0] != tt.key+"="+tt.addr {
				t.Errorf("insecure listeners %v", got)
			}
			c, err = Load("", append(env, "TANDEM_NATS_AUTH=leaf="+keyA), nil)
			if err != nil {
				t.Fatalf("with nats.auth: %v", err)
			}
			if got := c.InsecureListeners(); got != nil {
				t.Errorf("insecure listeners with nats.auth %v", got)
			}
		})
	}
}

func TestProtectedModeExternalNATS(t *testing.T) {
	env := append([]string{"TANDEM_NATS_URL=nats://10.0.0.1:4222", "TANDEM_ADMIN_LISTEN=0.0.0.0:8081",
		"TANDEM_NATS_LISTEN=0.0.0.0:4222"}, named...)
	_, err := Load("", env, nil)
	wantErr(t, err, "admin.listen", "protected mode")
	if strings.Contains(err.Error(), "nats.listen") {
		t.Errorf("nats.listen is not this process's listener with nats.url: %v", err)
	}
	if _, err := Load("", append(env, "TANDEM_NATS_CREDS_DIR=/etc/tandem/nkeys"), nil); err != nil {
		t.Errorf("external NATS with credentials: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "127.0.0.2:1": true, "[::1]:1": true, "localhost:1": true,
		":1": false, "0.0.0.0:1": false, "[::]:1": false, "10.0.0.1:1": false, "example:1": false, "junk": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestUnknownEnv(t *testing.T) {
	got := UnknownEnv([]string{"TANDEM_HEARTBEAT_INTERVALL=1s", "TANDEM_PAIR=p", "TANDEM_SERVER=x", "TANDEM_EPOCH=3",
		"HOME=/root", "TANDEM_NATS_LEAF_LISTEN=x", "TANDEM_X=1", "TANDEM_X=2"})
	if strings.Join(got, ",") != "TANDEM_HEARTBEAT_INTERVALL,TANDEM_X" {
		t.Fatalf("unknown %v", got)
	}
}

package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadHub(t *testing.T) {
	const key = "UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4"
	c, err := LoadHub("", []string{"TANDEM_HUB_NAME=hub1", "TANDEM_HUB_ROUTES=nats-route://h2:6222,nats-route://h3:6222"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hub.Name != "hub1" || len(c.Hub.Routes) != 2 || c.Hub.Listen != "127.0.0.1:4222" {
		t.Fatalf("hub config: %+v", c.Hub)
	}
	secret, short := filepath.Join(t.TempDir(), "secret"), filepath.Join(t.TempDir(), "short")
	if os.WriteFile(secret, []byte("0123456789abcdef0123\n"), 0o600) != nil || os.WriteFile(short, []byte("0123"), 0o600) != nil {
		t.Fatal("write the secrets")
	}
	for _, tc := range []struct {
		flags map[string]string
		want  string // "" = accepted
	}{
		{map[string]string{}, "hub.name (--name)"},
		{map[string]string{"hub.name": "h", "hub.leaf_listen": "0.0.0.0:7422"}, "protected mode"},
		{map[string]string{"hub.name": "h", "hub.leaf_listen": "0.0.0.0:7422", "insecure": "true"}, ""},
		{map[string]string{"hub.name": "h", "hub.leaf_listen": "0.0.0.0:7422", "hub.uplinks": "print=" + key}, ""},
		{map[string]string{"hub.name": "h", "hub.uplinks": "Print=" + key}, "hub.uplinks"},
		{map[string]string{"hub.name": "h", "hub.uplinks": "print=SUAKEY"}, "not a public user nkey"},
		{map[string]string{"hub.name": "h", "hub.auth": "root=" + key}, "unknown role"},
		{map[string]string{"hub.name": "h", "hub.auth": "admin=" + key, "hub.uplinks": "print=" + key}, "same key"},
		{map[string]string{"hub.name": "h", "hub.routes": "h2:6222"}, "not a URL"},
		{map[string]string{"hub.name": "h", "hub.leaf_listen": "0.0.0.0:7422", "hub.sessions": "print=" + key}, ""},
		{map[string]string{"hub.name": "h", "hub.cluster_listen": "0.0.0.0:6222", "hub.auth": "admin=" + key}, "hub.cluster_secret is not set"},
		{map[string]string{"hub.name": "h", "hub.cluster_listen": "0.0.0.0:6222", "hub.auth": "admin=" + key, "hub.cluster_secret": secret}, ""},
		{map[string]string{"hub.name": "h", "hub.cluster_secret": short}, "shorter than 16"},
		{map[string]string{"hub.name": "h", "hub.cluster_secret": "/nonexistent/secret"}, "hub.cluster_secret"},
		{map[string]string{"hub.name": "h", "hub.sessions": "print/2=" + key}, "hub.sessions"},
		{map[string]string{"hub.name": "h", "hub.sessions": "print=" + key, "hub.uplinks": "print=" + key}, "same key"},
	} {
		_, err := LoadHub("", nil, tc.flags)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.flags, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%v: error %v, want one saying %q", tc.flags, err, tc.want)
		}
	}
}

func TestHubURL(t *testing.T) {
	c := Default()
	c.Pair, c.Node = "p", "a"
	c.Hub.URL = " nats-leaf://h1:7422 , nats-leaf://h2:7422"
	if urls, err := c.Hub.URLs(); err != nil || len(urls) != 2 || urls[1] != "nats-leaf://h2:7422" {
		t.Fatalf("urls %q, %v", urls, err)
	}
	c.Hub.URL = "h1:7422"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "hub.url") {
		t.Fatalf("hub.url without a scheme: %v", err)
	}
}

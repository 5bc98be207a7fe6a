package natsnode

import (
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/pkg/config"
)

// TestPortZeroIsAnyFreePort: nats.listen with port 0 gets a free port, not
// nats-server's default 4222 (which it reads 0 as).
func TestPortZeroIsAnyFreePort(t *testing.T) {
	c := config.Default()
	c.Pair, c.Node, c.Role, c.DataDir = "t", "a", config.Master, t.TempDir()
	c.NATS.Listen, c.NATS.LeafListen = "127.0.0.1:0", "127.0.0.1:0"
	o := FromConfig(c, testLogger(t))
	if o.Listen != "127.0.0.1:-1" || o.LeafListen != "127.0.0.1:-1" {
		t.Fatalf("listen %q, leaf listen %q: want port -1", o.Listen, o.LeafListen)
	}
	s, err := Start(o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown()
	for _, u := range []string{s.ClientURL(), s.LeafURL()} {
		if strings.HasSuffix(u, ":4222") || strings.HasSuffix(u, ":7422") || strings.HasSuffix(u, ":0") {
			t.Errorf("listening at %s: want a free port", u)
		}
	}
}

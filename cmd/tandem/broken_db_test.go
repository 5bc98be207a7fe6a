package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/internal/proctest"
)

// R11, "no failure of one part takes down another": a database the
// replicator cannot open on either node stops the replicator alone. Both
// nodes stay up, the pair fails over on a crash as ever, and /readyz and
// the log say what failed.
func TestBrokenDatabaseKeepsPairAvailable(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	broken := filepath.Join(t.TempDir(), "not-a-database")
	if err := os.Mkdir(broken, 0o755); err != nil { // a directory where the database should be
		t.Fatal(err)
	}
	p, st := proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit,
		Extra: func(string) map[string]any { return map[string]any{"database.path": broken} },
	})
	crashMaster(t, p, st)
	log, err := os.ReadFile(p.Node(standby).LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "the node's other services go on") {
		t.Fatalf("the standby's log does not say the replicator stopped alone:\n%s", log)
	}
	checkInvariants(t, p)
}

// A second tandem process started on a running node's data directory (a
// duplicate unit, a copied configuration with other ports) refuses to start
// and names the process holding it, instead of sharing its JetStream store,
// epoch file and database.
func TestSecondProcessOnSameDataDirRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts tandem processes")
	}
	p, _ := proctest.StartActive(t, proctest.Options{
		Pair: "p1", Master: master, Standby: standby, Heartbeat: testHeartbeat, Wait: waitLimit,
	})
	n := p.Node(master)
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, p.Binary(), "node", "--config", n.Config,
		"--nats.listen", "127.0.0.1:0", "--nats.leaf_listen", "127.0.0.1:0", "--admin.listen", "127.0.0.1:0",
		"--notifier.push_listen", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "in use by another tandem process") {
		t.Fatalf("a second node on the same data directory: %v\n%s", err, out)
	}
	checkInvariants(t, p)
}

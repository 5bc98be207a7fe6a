package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tandem-ha/tandem/cmd/tandem/internal/proctest"
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

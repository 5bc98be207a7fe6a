package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files in testdata")

// statusFixture is a pair as the monitors and each service's part answer
// it: a active and answering everything, b cut off (seen by a only).
func statusFixture(t *testing.T) api.PairStatus {
	at := time.Date(2026, 11, 2, 10, 30, 0, 0, time.UTC)
	age, yes := int64(120), true
	a := api.NodeStatus{Node: "a", Role: "master", State: "active", Epoch: 4, Maintenance: true, MaintenanceLeft: "9m",
		Healthy: &yes, Checks: []api.CheckStatus{{Name: "spooler", Healthy: true, Output: "HTTP 200", Since: at}},
		Server: "nats-a", Witness: &api.WitnessStatus{Reachable: true, Lease: true}}
	b := api.NodeStatus{Node: "b", Role: "standby", State: "passive", Epoch: 3, Reachable: true, HeartbeatAgeMS: &age, Checks: []api.CheckStatus{}}
	snap := 0.5
	answers := map[string]any{ // by the part's request subject
		"repl": api.ReplReply{Status: api.ReplStatus{Node: "a", Role: "master", State: "syncing", DB: "/data/app.db", Snapshot: &snap,
			Refused: map[string]string{"notes": "no primary key"}}},
		"license": api.LicenseStatusReply{Pair: "p", State: api.LicenseState{Node: "a", Role: "master", Status: "valid"}},
		"notifier": api.NotifierStatusReply{Status: api.SessionStatus{Node: "a", Epoch: 4, Active: "a", Source: "database",
			Known: 20, Acknowledged: 19}},
		"audit": api.AuditStatusReply{Pair: "p", State: api.AuditState{Node: "a", Status: api.AuditCritical,
			Changes: []string{"tandem_events_p_a: max_age is 1s, want 2160h0m0s"}, Since: &at, ClearsAt: &at}},
	}
	parts := make([]map[string]func(*api.NodeStatus), len(statusParts))
	found := 0
	for i, part := range statusParts {
		parts[i] = map[string]func(*api.NodeStatus){}
		subj := part.subject("p")
		for key, ans := range answers {
			if !strings.Contains(subj, key) {
				continue
			}
			node, add, err := part.decode(reply.OK(ans))
			if err != nil {
				t.Fatalf("%s: %v", subj, err)
			}
			parts[i][node] = add
			found++
		}
	}
	if found != len(answers) {
		t.Fatalf("%d of the %d parts matched a status part: %d parts", found, len(answers), len(statusParts))
	}
	return combine("p", []api.StatusReply{{Pair: "p", Self: a, Peer: &b, Time: at}}, parts)
}

// golden compares got with testdata/name, or rewrites it with -rewrite.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *rewrite {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (rewrite with -rewrite and review the diff):\n got: %s\nwant: %s", path, got, want)
	}
}

// The JSON of tandem status --json (SPEC §8) and the table, assembled from
// every service's part, byte for byte.
func TestStatusOutputGolden(t *testing.T) {
	ps := statusFixture(t)
	var js bytes.Buffer
	if err := printJSON(&js, ps); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.json", js.Bytes())
	var table bytes.Buffer
	printStatus(&table, ps)
	golden(t, "status.txt", table.Bytes())
}

package replicator_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/reply"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// configRequest sends raw on node's repl.config subject and decodes the
// reply (a refusal comes back as *reply.Error).
func (w *world) configRequest(node string, raw []byte) (api.ConfigReply, error) {
	w.t.Helper()
	m, err := w.nodes[node].nc.Request(subject.ReplConfig(pairName, node), raw, 5*time.Second)
	if err != nil {
		w.t.Fatalf("repl.config on %s: %v", node, err)
	}
	return api.DecodeConfigReply(m.Data)
}

func configReq(pair, node, hosts, resources string) []byte {
	b, _ := json.Marshal(api.ConfigRequest{Request: api.Request{V: api.Version, Pair: pair}, Node: node,
		HostsTable: hosts, ResourcesTable: resources})
	return b
}

// waitConfigServed waits until node's replicator answers repl.config.
func (w *world) waitConfigServed(node string) {
	w.t.Helper()
	w.waitFor(node+" answers repl.config", func() bool {
		_, err := w.nodes[node].nc.Request(subject.ReplConfig(pairName, node), configReq(pairName, node, "hosts", "resources"), time.Second)
		return err == nil
	})
}

// TestConfigRead: the replicator answers the notifier's configuration read
// from its own database: valid rows in order, invalid rows and rows of other
// nodes left out and counted; a missing table is an empty part.
func TestConfigRead(t *testing.T) {
	w := newWorld(t)
	w.exec("a", `CREATE TABLE hosts(node TEXT PRIMARY KEY, host TEXT)`)
	w.exec("a", `CREATE TABLE resources(node TEXT NOT NULL, name TEXT NOT NULL, address TEXT, PRIMARY KEY(node, name))`)
	w.exec("a", `INSERT INTO hosts VALUES('a', 'print-a'), ('b', 'print-b'), ('c', 'print-c'), ('x y', 'bad')`)
	w.exec("a", `INSERT INTO resources VALUES('a', 'Floor3', '\\print-a\Floor3'), ('b', 'Floor3', '\\print-b\Floor3-B'),
		('a', 'Null', NULL), ('a', 'Ctl', 'ipp://print-a/'||char(7)), ('c', 'Floor3', '\\print-c\Floor3')`)
	w.start("a")
	w.waitConfigServed("a")

	r, err := w.configRequest("a", configReq(pairName, "a", "hosts", "resources"))
	if err != nil {
		t.Fatal(err)
	}
	want := api.PairConfig{
		Hosts: map[string]string{"a": "print-a", "b": "print-b"},
		Resources: []api.Resource{
			{Node: "a", Name: "Floor3", Address: `\\print-a\Floor3`},
			{Node: "b", Name: "Floor3", Address: `\\print-b\Floor3-B`},
		},
	}
	if !reflect.DeepEqual(r.Config, want) || r.Skipped != 5 || r.ReadAt.IsZero() {
		t.Fatalf("reply %+v, want %+v with 5 skipped", r, want)
	}

	r, err = w.configRequest("a", configReq(pairName, "a", "no_hosts", "no_resources"))
	if err != nil || len(r.Config.Hosts) != 0 || len(r.Config.Resources) != 0 || r.Skipped != 0 {
		t.Fatalf("missing tables: %+v, %v", r, err)
	}
	if got := metricValue(t, w.nodes["a"], "tandem_input_rejected_total"); got != 0 {
		t.Fatalf("%v rejected", got)
	}
}

// TestConfigReadRefusesBadInput: another pair, another node, bad table
// names (SQLite's and Tandem's own tables, SQL in the name) and malformed
// requests are refused and counted; a table that cannot be read as the
// contract says is unavailable (the notifier keeps its cache).
func TestConfigReadRefusesBadInput(t *testing.T) {
	w := newWorld(t)
	w.exec("a", `CREATE TABLE hosts(node TEXT PRIMARY KEY, host TEXT)`)
	w.exec("a", `CREATE TABLE resources(node TEXT PRIMARY KEY, name TEXT)`) // no address column
	w.start("a")
	w.waitConfigServed("a")
	bad := []struct {
		raw  []byte
		code string
	}{
		{configReq("other", "a", "hosts", "resources"), reply.CodeWrongPair},
		{configReq(pairName, "b", "hosts", "resources"), reply.CodeBadRequest},
		{configReq(pairName, "a", "_tandem_meta", "resources"), reply.CodeBadRequest},
		{configReq(pairName, "a", "hosts", "sqlite_schema"), reply.CodeBadRequest},
		{configReq(pairName, "a", "hosts; DROP TABLE hosts", "resources"), reply.CodeBadRequest},
		{configReq(pairName, "a", `hosts"`, "resources"), reply.CodeBadRequest},
		{configReq(pairName, "a", "1hosts", "resources"), reply.CodeBadRequest},
		{[]byte(`{"v":1,"pair":"p","node":"a","hosts_table":"hosts","resources_table":"resources","extra":1}`), reply.CodeBadRequest},
		{[]byte(`not json`), reply.CodeBadRequest},
	}
	for i, b := range bad {
		_, err := w.configRequest("a", b.raw)
		var re *reply.Error
		if !errors.As(err, &re) || re.Code != b.code {
			t.Fatalf("request %d (%s): %v, want %s", i, b.raw, err, b.code)
		}
	}
	if got := metricValue(t, w.nodes["a"], "tandem_input_rejected_total"); got != float64(len(bad)) {
		t.Fatalf("%v rejected, want %d", got, len(bad))
	}
	if got := rowCount(w, "a", "hosts"); got != 0 {
		t.Fatalf("hosts has %d rows", got)
	}

	_, err := w.configRequest("a", configReq(pairName, "a", "hosts", "resources"))
	var re *reply.Error
	if !errors.As(err, &re) || re.Code != reply.CodeUnavailable {
		t.Fatalf("resources without an address column: %v, want %s", err, reply.CodeUnavailable)
	}
}

package replicator

import "github.com/tandem-ha/tandem/pkg/svcrun"

// Build makes a node's replicator from its node's parts (tandem node,
// tandem run replicator and tandem-replicator): it replicates
// database.path (default <data_dir>/tandem.db) with the peer.
func Build(d svcrun.Deps) (svcrun.Service, error) {
	return New(Options{Config: d.Config, Conn: d.Conn, JetStream: d.JS, Events: d.Events, Log: d.Log, Registry: d.Registry})
}

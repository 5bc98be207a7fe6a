package node

import "github.com/tandem-ha/tandem/services/replicator"

// newReplicator builds the node's replicator: it replicates database.path
// (default <data_dir>/tandem.db) with the peer named in hosts.
func newReplicator(d deps) (runner, error) {
	return replicator.New(replicator.Options{
		Config:    d.cfg,
		Conn:      d.nc,
		JetStream: d.js,
		Events:    d.events,
		Log:       d.log,
		Registry:  d.reg,
	})
}

package node

import "github.com/tandem-ha/tandem/services/replicator"

// newReplicator builds the node's replicator.
func newReplicator(d deps) (runner, error) {
	return replicator.New(d.cfg, d.log), nil
}

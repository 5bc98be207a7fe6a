// Command tandem-replicator runs a node's replicator alone, beside the node's NATS
// server (nats.url, run by `tandem run nats`): the split layout of the
// Compose file, one process or container per service. It reads the node's
// configuration as `tandem run replicator` does (--config, TANDEM_* variables, a
// flag per key) and stops cleanly on SIGTERM.
package main

import (
	"github.com/tandem-ha/tandem/pkg/svcrun"
	"github.com/tandem-ha/tandem/services/replicator"
)

func main() { svcrun.Main("replicator", replicator.Build) }

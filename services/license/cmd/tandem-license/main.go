// Command tandem-license runs a node's license alone, beside the node's NATS
// server (nats.url, run by `tandem run nats`): the split layout of the
// Compose file, one process or container per service. It reads the node's
// configuration as `tandem run license` does (--config, TANDEM_* variables, a
// flag per key) and stops cleanly on SIGTERM.
package main

import (
	"github.com/tandem-ha/tandem/pkg/svcrun"
	"github.com/tandem-ha/tandem/services/license"
)

func main() { svcrun.Main("license", license.Build) }

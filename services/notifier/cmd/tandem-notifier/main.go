// Command tandem-notifier runs a node's notifier alone, beside the node's NATS
// server (nats.url, run by `tandem run nats`): the split layout of the
// Compose file, one process or container per service. It reads the node's
// configuration as `tandem run notifier` does (--config, TANDEM_* variables, a
// flag per key) and stops cleanly on SIGTERM.
package main

import (
	"github.com/tandem-ha/tandem/pkg/svcrun"
	"github.com/tandem-ha/tandem/services/notifier"
)

func main() { svcrun.Main("notifier", notifier.Build) }

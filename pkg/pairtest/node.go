package pairtest

import "github.com/tandem-ha/tandem/pkg/config"

// NodeConfig is the default configuration of node of pair (Master or
// Standby) with its data in dir: the master is the master, the standby the
// standby, as Start runs them. Tests change the rest.
func NodeConfig(pair, node, dir string) config.Config {
	c := config.Default()
	c.Pair, c.Node, c.DataDir = pair, node, dir
	c.Role = config.Master
	if node == Standby {
		c.Role = config.Standby
	}
	return c
}

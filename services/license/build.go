package license

import "github.com/tandem-ha/tandem/pkg/svcrun"

// Build makes a node's license service from its node's parts (tandem node,
// tandem run license and tandem-license).
func Build(d svcrun.Deps) (svcrun.Service, error) {
	return New(Options{Config: d.Config, Conn: d.Conn, JS: d.JS, Events: d.Events, Log: d.Log, Registry: d.Registry})
}

package node

import "github.com/tandem-ha/tandem/services/license"

// newLicense builds the node's license service.
func newLicense(d deps) (runner, error) {
	return license.New(license.Options{Config: d.cfg, Conn: d.nc, JS: d.js, Events: d.events, Log: d.log, Registry: d.reg})
}

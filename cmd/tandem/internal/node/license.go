package node

import "github.com/tandem-ha/tandem/services/license"

// newLicense builds the node's license.
func newLicense(d deps) (runner, error) {
	return license.New(d.cfg, d.log), nil
}

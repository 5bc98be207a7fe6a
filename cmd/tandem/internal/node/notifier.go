package node

import "github.com/tandem-ha/tandem/services/notifier"

// newNotifier builds the node's notifier.
func newNotifier(d deps) (runner, error) {
	return notifier.New(d.cfg, d.log), nil
}

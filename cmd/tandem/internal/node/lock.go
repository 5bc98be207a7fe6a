package node

import (
	"fmt"
	"path/filepath"
)

// lockParts takes the data directory's lock of each part this process runs
// (the embedded server "nats", and each service), so that a second process
// started on the same data directory — a duplicate unit, a mistyped
// --config — refuses to start instead of sharing the JetStream store, the
// epoch file and the database with the running one. release frees them.
func (n *Node) lockParts(parts ...string) (release func(), err error) {
	dir := n.cfg.DataDir
	if err := checkDataDir(dir); err != nil {
		return nil, err
	}
	var held []func()
	release = func() {
		for _, r := range held {
			r()
		}
	}
	for _, p := range parts {
		r, err := lockFile(filepath.Join(dir, ".tandem-"+p+".lock"))
		if err != nil {
			release()
			return nil, fmt.Errorf("data directory %s: %s: %w", dir, p, err)
		}
		held = append(held, r)
	}
	return release, nil
}

//go:build !unix

package svcrun

// lockFile does nothing where flock(2) does not exist: a node runs on a
// Unix server; this lets the package build elsewhere.
func lockFile(string) (func(), error) { return func() {}, nil }

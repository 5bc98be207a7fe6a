//go:build !linux

package dbwatch

import "errors"

// Watcher signals C after writes to the database (Linux only).
type Watcher struct{}

// New is not supported here: the shipper keeps its short idle polls.
func New(string) (*Watcher, error) { return nil, errors.New("dbwatch: not supported on this system") }

// C never receives.
func (*Watcher) C() <-chan struct{} { return nil }

// Close does nothing.
func (*Watcher) Close() error { return nil }

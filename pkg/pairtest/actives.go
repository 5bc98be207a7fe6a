package pairtest

import (
	"errors"
	"fmt"
	"sync"
)

// Actives checks the pair's first invariant (STYLE §15): never two nodes
// active in one epoch. Feed it every sighting of a node active in an epoch
// — sampled status, heartbeats, activation events — in any order; it
// remembers, per epoch, the first node seen active. It is safe for
// concurrent use.
type Actives struct {
	mu     sync.Mutex        // guards the fields below
	first  map[uint64]string // epoch → the first node seen active in it
	broken []error
}

// Active records node seen active in epoch. It returns the violation, also
// kept for Err, when another node was seen active in the same epoch.
func (a *Actives) Active(node string, epoch uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.first == nil {
		a.first = map[uint64]string{}
	}
	other, ok := a.first[epoch]
	if !ok {
		a.first[epoch] = node
		return nil
	}
	if other == node {
		return nil
	}
	err := fmt.Errorf("%s and %s both active in epoch %d", other, node, epoch)
	a.broken = append(a.broken, err)
	return err
}

// Epochs is how many epochs had an active node: a check over none proves
// nothing.
func (a *Actives) Epochs() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.first)
}

// Err is every violation seen, or nil.
func (a *Actives) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.broken) == 0 {
		return nil
	}
	return fmt.Errorf("invariant broken: %w", errors.Join(a.broken...))
}

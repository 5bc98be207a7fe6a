package pairtest

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// Actives checks the pair's first invariant (STYLE §15): never two nodes
// active in one epoch. Feed it every sighting of a node active in an epoch
// — sampled status, heartbeats, activation events — in any order; it
// remembers, per epoch, the first node seen active. It is safe for
// concurrent use.
type Actives struct {
	mu     sync.Mutex          // guards the fields below
	first  map[uint64]Sighting // epoch → the first node seen active in it
	broken []error
}

// Sighting is a node seen active, and when (a heartbeat's send time; zero
// when not known).
type Sighting struct {
	Node string
	At   time.Time
}

func (s Sighting) String() string {
	if s.At.IsZero() {
		return s.Node
	}
	return fmt.Sprintf("%s (sent %s)", s.Node, s.At.Format("15:04:05.000000"))
}

// TwoActives is a violation: Then seen active in the epoch First was
// first seen active in.
type TwoActives struct {
	Epoch       uint64
	First, Then Sighting
}

func (e *TwoActives) Error() string {
	return fmt.Sprintf("%s and %s both active in epoch %d", e.First, e.Then, e.Epoch)
}

// Active records node seen active in epoch. It returns the violation (a
// *TwoActives), also kept for Err, when another node was seen active in
// the same epoch.
func (a *Actives) Active(node string, epoch uint64) error {
	return a.ActiveAt(node, epoch, time.Time{})
}

// ActiveAt is Active with the moment of the sighting, which a violation
// names.
func (a *Actives) ActiveAt(node string, epoch uint64, at time.Time) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.first == nil {
		a.first = map[uint64]Sighting{}
	}
	first, ok := a.first[epoch]
	if !ok {
		a.first[epoch] = Sighting{Node: node, At: at}
		return nil
	}
	if first.Node == node {
		return nil
	}
	err := &TwoActives{Epoch: epoch, First: first, Then: Sighting{Node: node, At: at}}
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

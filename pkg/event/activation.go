package event

import "fmt"

// IsActivation is the one answer to "does an event of type typ report a
// node becoming active in a new epoch?" that every consumer uses (the
// notifier's notification, the replicator's failover status R8):
//
//   - tandem.node.activated: every activation (F2, F4, F6, F8, F9, F15),
//     in the epoch of its envelope;
//   - tandem.collision.resolved: both nodes were active and the master
//     stays active in a new epoch (F7).
//
// tandem.switchover.completed is not one: the node that takes over emits
// tandem.node.activated in the same epoch first, and the node that yields
// emits it naming its peer, so counting it would act twice on one
// activation (or on another node's).
func IsActivation(typ string) bool {
	return typ == NodeActivated || typ == CollisionResolved
}

// ActivationTypes are the event types IsActivation accepts, for consumer
// filters.
func ActivationTypes() []string { return []string{NodeActivated, CollisionResolved} }

// ActivationOf reads the activation e reports, its data decoded strictly;
// ok is false for an event that is not an activation. A resolved collision
// is an activation of an active node (From "active"), never an outage.
func ActivationOf(e Envelope) (a Activation, ok bool, err error) {
	switch e.Type {
	case NodeActivated:
		a, err = As[Activation](e)
	case CollisionResolved:
		var c Collision
		c, err = As[Collision](e)
		a = Activation{Why: c.Why, From: "active"}
	default:
		return Activation{}, false, nil
	}
	if err != nil {
		return Activation{}, false, err
	}
	if e.Epoch == 0 {
		return Activation{}, false, fmt.Errorf("%w: %s in epoch 0", ErrInvalid, e.Type)
	}
	return a, true, nil
}

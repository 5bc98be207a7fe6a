package event

import (
	"errors"
	"fmt"
)

// Epoch bounds (SPEC §9: epochs are range-checked everywhere).
//
// An epoch grows by one per activation of a node: a failover, a
// switchover, a resolved collision. A pair that fails over once a minute
// for a hundred years reaches about 5·10⁷. MaxEpoch (2⁵³, the largest
// integer JSON readers such as JavaScript hold exactly) is far beyond any
// real pair and far below 2⁶⁴, so epoch+1 never wraps anywhere.
// MaxEpochJump bounds how far a message may be ahead of the newest epoch
// its receiver knows: while the nodes are apart each can activate at most
// once per start, so a real peer is ahead by a handful; 2²⁰ (about a
// million activations) also covers a node restored from an old backup,
// and refuses a forged 2⁶⁴−1 that would otherwise stick forever.
const (
	MaxEpoch     = uint64(1) << 53
	MaxEpochJump = uint64(1) << 20
)

// ErrEpoch is the error of an implausible epoch.
var ErrEpoch = errors.New("implausible epoch")

// CheckEpoch refuses an epoch beyond MaxEpoch, or ahead of newest (the
// newest epoch the receiver knows) by more than MaxEpochJump.
func CheckEpoch(epoch, newest uint64) error {
	switch {
	case epoch > MaxEpoch:
		return fmt.Errorf("%w: %d is beyond the largest epoch %d", ErrEpoch, epoch, MaxEpoch)
	case newest <= MaxEpoch && epoch > newest+MaxEpochJump:
		return fmt.Errorf("%w: %d is %d ahead of the newest known epoch %d (at most %d)", ErrEpoch, epoch, epoch-newest, newest, MaxEpochJump)
	}
	return nil
}

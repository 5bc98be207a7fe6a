// Package lineage is the replicator's pure decision core: which side seeds
// at first start; when to apply, skip or reject a batch of the peer's, and
// when to reconcile; how two database lineages compare; when to back off
// and show "blocked". It has no goroutines, no clock (the time arrives as a
// value) and no I/O; the replicator's goroutines carry out what it decides.
//
// # Lineages
//
// Every database has an id; its changes are numbered by a log sequence that
// starts after DBStart, and shipped into the owner's batch stream, where
// each batch also has a stream sequence. A lineage is one database id's
// history. The core compares lineages in two places:
//
//   - its own (CompareOwn): the shipper's stream ends with a batch of some id
//     up to some log sequence; the database holds an id and a highest log
//     sequence. The same id behind what it already shipped (or recorded
//     as shipped) is a database restored from an older backup (OwnRestored); another id is a database
//     replaced (rebuilt, restored from a snapshot: OwnReplaced); no batch at
//     all is a new stream (OwnNew). A new lineage is announced with a
//     genesis message before anything else is shipped under it.
//   - the peer's (ComparePeer): a batch of the id this node follows continues
//     the lineage (PeerSame); a genesis or a batch of another id means the
//     peer's database was replaced (PeerReplaced) or restored from a backup
//     (PeerRestored, as its genesis says); no position yet is PeerUnknown.
//
// # The safety rule
//
// A node's data is never overwritten by a snapshot from a node that lacks
// writes it holds. The master seeds: a standby that has no position in the
// master's lineage (first start, a deleted or foreign database), or whose
// master's lineage changed (replaced, restored from a backup), reconciles
// with a snapshot of the master row by row by version (the store's Restore):
// rows it holds that the master lacks are kept and sent back, concurrent
// ones go the master's way with the loser kept on both (R5). An empty
// standby simply takes the snapshot whole. The master never takes a
// snapshot: it accepts the standby's new lineage when the standby says it
// was reconciled with the master's current database (genesis Base), and
// asks the standby to reconcile again otherwise.
//
// # Driving it
//
// The receiving side is a Receiver machine: Step takes an input (a batch's
// metadata, the result of an apply or a reconcile, a request), Next says
// what the receive loop does next (reconcile, wait in "blocked", consume),
// and Ready returns what to carry out, in the order documented on Ready,
// after which the driver calls Advance. The shipping side is one pure
// function, PlanShip. Backoff is the back-off policy both use.
package lineage

import "fmt"

// OwnLineage is how this node's database compares with what its stream
// already holds.
type OwnLineage int

// Own lineages.
const (
	OwnSame     OwnLineage = iota // the stream continues this database
	OwnNew                        // the stream is empty: a first start
	OwnReplaced                   // another database id: replaced, or restored from a snapshot
	OwnRestored                   // this id, but behind what it shipped: restored from an older backup
)

func (o OwnLineage) String() string {
	return [...]string{"same", "new", "replaced", "restored-from-backup"}[o]
}

// Shipped is the end of this node's batch stream: the database id of its
// last batch and the log sequence up to which whole groups are in it.
type Shipped struct {
	DB   string
	To   uint64
	Have bool // the stream holds a batch
}

// Own is this node's database as the store reports it.
type Own struct {
	DB      string // the database id
	DBStart uint64 // the log sequence the id's batches start after
	LogHigh uint64 // the highest log sequence ever assigned
	// Shipped is how far the shipper recorded in the database that this id
	// was shipped; ShippedKnown whether it recorded it (a mark of 0 — a new
	// id — is a mark).
	Shipped      uint64
	ShippedKnown bool
}

// CompareOwn compares this node's database with its stream.
func CompareOwn(s Shipped, o Own) OwnLineage {
	switch {
	case !s.Have:
		return OwnNew
	case s.DB != o.DB:
		return OwnReplaced
	case s.To > o.LogHigh, o.ShippedKnown && s.To > o.Shipped:
		// The stream has changes this database never made, or never
		// recorded as shipped: an older copy of itself (writes made on a
		// restored backup may have filled its log up to the sequence
		// shipped, with other changes).
		return OwnRestored
	}
	return OwnSame
}

// ShipKind is what the shipper does at one look at the log.
type ShipKind int

// Ship kinds.
const (
	ShipNothing  ShipKind = iota // a standby with no position in the master's lineage ships nothing yet
	ShipGroup                    // ship the log after Shipped.To as one group
	ShipGenesis                  // announce the database id (purge the stream first if Purge)
	ShipRestored                 // restored from a backup: new id, then Genesis (master) or Reconcile (standby)
)

func (k ShipKind) String() string {
	return [...]string{"nothing", "group", "genesis", "restored"}[k]
}

// Genesis reasons, as announced to the peer (wire.Genesis.Reason).
const (
	ReasonCreated  = "created"
	ReasonNewID    = "new database id"
	ReasonSnapshot = "restored from a snapshot of the master"
	ReasonBackup   = "backup restore detected"
)

// ShipPlan is the shipper's decision.
type ShipPlan struct {
	Kind   ShipKind
	Own    OwnLineage
	Reason string // the genesis reason (ShipGenesis, and ShipRestored on the master)
	// Purge: drop the stream's batches of the old id before the genesis (a
	// standby restored from a snapshot: the master must never apply
	// changes the reconcile already merged).
	Purge bool
	// NewID: give the database a new id first (ShipRestored).
	NewID bool
	// Reconcile is why a standby must reconcile with the master (ShipRestored).
	Reconcile string
	// At is the log sequence the genesis announces, the new lineage's
	// start: after a new id (ShipRestored), the log's end, which the new
	// id's batches start after; the database's own start otherwise.
	At uint64
}

// PlanShip decides what the shipper does: master is this node's role,
// following whether a standby has a position in the master's lineage.
func PlanShip(master, following bool, s Shipped, o Own) ShipPlan {
	if !master && !following {
		return ShipPlan{Kind: ShipNothing, Own: CompareOwn(s, o)}
	}
	own := CompareOwn(s, o)
	switch own {
	case OwnRestored:
		p := ShipPlan{Kind: ShipRestored, Own: own, NewID: true, At: o.LogHigh}
		if master {
			p.Reason = ReasonBackup
		} else {
			p.Reconcile = "this database was restored from a backup"
		}
		return p
	case OwnNew, OwnReplaced:
		p := ShipPlan{Kind: ShipGenesis, Own: own, Reason: ReasonCreated, At: o.DBStart}
		if own == OwnReplaced {
			p.Reason = ReasonNewID
		}
		if !master {
			p.Reason, p.Purge = ReasonSnapshot, own == OwnReplaced
		}
		return p
	}
	return ShipPlan{Kind: ShipGroup, Own: own}
}

func (p ShipPlan) String() string {
	s := fmt.Sprintf("%s (own lineage %s)", p.Kind, p.Own)
	if p.NewID {
		s += " new-id"
	}
	if p.Purge {
		s += " purge"
	}
	if p.Kind == ShipGenesis || p.Kind == ShipRestored {
		s += fmt.Sprintf(" at %d", p.At)
	}
	if p.Reason != "" {
		s += ": " + p.Reason
	}
	if p.Reconcile != "" {
		s += "; reconcile: " + p.Reconcile
	}
	return s
}

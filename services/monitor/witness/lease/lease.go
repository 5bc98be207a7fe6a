// Package lease is the witness's lease rule (F14) and the messages of its
// protocol: Decide is a pure function of the current lease, a request and
// the witness's clock. The failover machine and its explorer use it
// directly; the server (package witness) applies it to requests over NATS.
// It imports nothing of Tandem's, so the failover machine does not depend
// on the server's configuration or NATS.
package lease

// Lease is the witness's record for one pair: who holds it, in which epoch,
// and until when (on the witness's clock, in its units: milliseconds for
// the server, ticks for the explorer).
//
// Unsure is set by a witness that started without a stored lease for the
// pair (a fresh or lost data directory): a lease its previous life granted
// may still run until then, one term after the start. A lease read back
// from storage at a start is unsure for its term too: its holder may be
// dead, and the pair may have moved on to a newer epoch meanwhile. Until Unsure it
// grants the lease only to a renewal (Request.Renew: the asker is active,
// so it is the one that may hold that lease) — to the renewal in the
// higher epoch, should a stale one have come first — and to a takeover
// (Request.Over), and refuses the rest, naming no holder while it has
// none.
type Lease struct {
	Holder  string `json:"holder"`
	Epoch   uint64 `json:"epoch"`
	Expires int64  `json:"expires"`
	Unsure  int64  `json:"-"`
}

// Request is a node's request to take or renew the lease.
type Request struct {
	Node  string `json:"node"`  // the node asking
	Epoch uint64 `json:"epoch"` // the epoch it is (or is about to become) active in
	// Over asks to take the lease from the peer before it lapses: the peer
	// handed over (F8 Take) or its process is proven dead (connection
	// refused). It is granted only while the peer's lease is in an epoch
	// no newer than PeerEpoch, the epoch the node knows the peer in.
	Over      bool   `json:"over,omitempty"`
	Peer      string `json:"peer,omitempty"`
	PeerEpoch uint64 `json:"peer_epoch,omitempty"`
	// Probe only asks whether the witness answers: nothing changes.
	Probe bool `json:"probe,omitempty"`
	// Renew says the node is active in Epoch: it renews the lease it holds
	// (or, in the seed fallback, is active without it). Only a witness that
	// lost its leases tells a renewal from a new request (Lease.Unsure).
	Renew bool `json:"renew,omitempty"`
	// TTLMS is the lease's term the node asks for, in milliseconds (the
	// server's unit; the explorer passes its own term to Decide).
	TTLMS int64 `json:"ttl_ms,omitempty"`
}

// Reply is the witness's answer.
type Reply struct {
	Granted bool   `json:"granted"`
	Holder  string `json:"holder"` // the holder after the request
	Epoch   uint64 `json:"epoch"`  // the holder's epoch
	Left    int64  `json:"left"`   // how long the holder's lease still runs
}

// Decide applies a request to the current lease at time now, with leases
// lasting ttl. The lease is granted when nobody holds it, when it has
// lapsed, when the node already holds it (a renewal), and when the node
// takes it over from its peer (Request.Over) in an epoch the node knows.
// While the witness is unsure of the holder (Lease.Unsure) it is granted
// only as unsureGrant says. Otherwise it is refused, and the reply says who
// holds it ("" for nobody known).
func Decide(cur Lease, r Request, now, ttl int64) (Lease, Reply) {
	unsure := now < cur.Unsure
	lapsed := now >= cur.Expires || (cur.Holder == "" && !unsure)
	if r.Probe {
		if lapsed {
			return cur, Reply{}
		}
		return cur, Reply{Holder: cur.Holder, Epoch: cur.Epoch, Left: cur.Expires - now}
	}
	over := r.Over && cur.Holder == r.Peer && cur.Epoch <= r.PeerEpoch
	grant := lapsed || cur.Holder == r.Node || over
	if unsure && !lapsed {
		grant = unsureGrant(cur, r)
	}
	if !grant {
		return cur, Reply{Holder: cur.Holder, Epoch: cur.Epoch, Left: cur.Expires - now}
	}
	next := Lease{Holder: r.Node, Epoch: r.Epoch, Expires: now + ttl, Unsure: cur.Unsure}
	return next, Reply{Granted: true, Holder: r.Node, Epoch: r.Epoch, Left: ttl}
}

// unsureGrant is the rule while the witness is unsure of the holder: a
// takeover (the peer handed over or is proven dead) and an active node's
// renewal are granted; a renewal replaces another node's only in a higher
// epoch (the other's may be a stale request, delayed past the restart).
func unsureGrant(cur Lease, r Request) bool {
	switch {
	case r.Over:
		return cur.Holder == "" || (cur.Holder == r.Peer && cur.Epoch <= r.PeerEpoch)
	case !r.Renew:
		return false
	default:
		return cur.Holder == "" || cur.Holder == r.Node || r.Epoch > cur.Epoch
	}
}

// Package member holds the words of SPEC §1 that describe a node as a
// member of its pair: its Role, fixed at install, and its State, which
// changes at run time. They are different things. The configuration, the
// failover machine, the heartbeat and the status all use these types, so
// none of them needs another's package for one type.
package member

// Role is fixed at install: master or standby.
type Role string

// Roles.
const (
	Master  Role = "master"
	Standby Role = "standby"
)

// Valid reports whether r is master or standby.
func (r Role) Valid() bool { return r == Master || r == Standby }

// State is what a node is doing at run time.
type State string

// States. Every node starts Starting (passive) and then is Passive or
// Active.
const (
	Starting State = "starting"
	Passive  State = "passive"
	Active   State = "active"
)

// Valid reports whether s is starting, passive or active.
func (s State) Valid() bool { return s == Starting || s == Passive || s == Active }

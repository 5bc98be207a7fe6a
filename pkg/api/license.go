package api

import "time"

// License verbs (the last token of subject.License).
const (
	VerbLicenseAdd    = "add"
	VerbLicenseList   = "list"
	VerbLicenseCheck  = "check"
	VerbLicenseStatus = "status"
	// VerbLicenseChallenge is the standby license service's challenge to
	// the master's (services/license/internal/contact): the answer, signed
	// with the master's node key, is the standby's proof of contact.
	VerbLicenseChallenge = "challenge"
)

// License states of a node (LicenseState.Status).
const (
	LicenseValid      = "valid"      // licensed, no grace concern
	LicenseWarning    = "warning"    // standby: grace running out (7, 3, 1 days)
	LicenseInvalid    = "invalid"    // standby: no contact with the master for longer than the grace
	LicenseUnlicensed = "unlicensed" // no valid license on this node
)

// LicenseAddRequest enters a license (L2): the armoured license text.
// Only the master accepts it.
type LicenseAddRequest struct {
	Request
	License string `json:"license"`
}

// LicenseListRequest asks a node for its licenses and license state.
type LicenseListRequest struct {
	Request
}

// LicenseCheckRequest asks a node whether Feature is licensed there (L5).
// With Seat (a client's stable name, e.g. its host), the answer also holds
// one of the license's seats for that client: a client beyond the
// license's seats is refused while the others hold theirs.
type LicenseCheckRequest struct {
	Request
	Feature string `json:"feature"`
	Seat    string `json:"seat,omitempty"`
}

// LicenseStatusRequest asks a node for its license state (tandem status).
type LicenseStatusRequest struct {
	Request
}

func (r *LicenseAddRequest) head() Request    { return r.Request }
func (r *LicenseListRequest) head() Request   { return r.Request }
func (r *LicenseCheckRequest) head() Request  { return r.Request }
func (r *LicenseStatusRequest) head() Request { return r.Request }

// LicenseInfo is one license as a node sees it.
type LicenseInfo struct {
	ID       string    `json:"id"`
	Customer string    `json:"customer"`
	Product  string    `json:"product"`
	Features []string  `json:"features"`
	Seats    int       `json:"seats"`
	Issued   time.Time `json:"issued"`
	Expires  string    `json:"expires"`
	Valid    bool      `json:"valid"`
	Reason   string    `json:"reason,omitempty"`
}

// LicenseState is a node's license state: what `tandem status` shows.
type LicenseState struct {
	Node   string `json:"node"`
	Role   string `json:"role"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// GraceLeft is how long the standby's licenses stay valid without
	// contact with the master (Go duration); absent on the master.
	GraceLeft string `json:"grace_left,omitempty"`
	// LastContact is the standby's last proof of contact with the master.
	LastContact *time.Time `json:"last_contact,omitempty"`
	Licenses    int        `json:"licenses"`
}

// LicenseAddReply is the master's answer to an accepted license.
type LicenseAddReply struct {
	Pair    string      `json:"pair"`
	Node    string      `json:"node"`
	License LicenseInfo `json:"license"`
}

// LicenseListReply is a node's licenses and state.
type LicenseListReply struct {
	Pair     string        `json:"pair"`
	State    LicenseState  `json:"state"`
	Licenses []LicenseInfo `json:"licenses"`
}

// LicenseCheckReply answers whether a feature is licensed on a node, and
// why not.
type LicenseCheckReply struct {
	Pair     string       `json:"pair"`
	Feature  string       `json:"feature"`
	Licensed bool         `json:"licensed"`
	Reason   string       `json:"reason"`
	License  string       `json:"license,omitempty"` // the id of the license that grants it
	State    LicenseState `json:"state"`
}

// LicenseStatusReply is a node's license state.
type LicenseStatusReply struct {
	Pair  string       `json:"pair"`
	State LicenseState `json:"state"`
}

package api

import "time"

// VerbAuditStatus asks a node's server part (`tandem node`, or `tandem run
// nats` in the split layout) for the state of its audit streams: tandem
// status and tandem check send it to subject.Admin(pair, PairScope, …) and
// every node answers.
const VerbAuditStatus = "audit"

// Audit states.
const (
	AuditOK       = "ok"
	AuditCritical = "critical"
	// AuditUnchecked: the guard has not checked the streams yet.
	AuditUnchecked = "unchecked"
)

// AuditStatusRequest asks a node for the state of its audit streams.
type AuditStatusRequest struct {
	Request
}

func (r *AuditStatusRequest) head() Request { return r.Request }

// AuditState is what a node's audit guard knows of its event stream and
// its mirror of the peer's (SPEC §7 A3): critical from the check that found
// a change (a stream or mirror deleted, its retention or deny flags changed)
// until the configuration has been restored and stayed as it must be for
// the guard's hold time.
type AuditState struct {
	Node   string `json:"node"`
	Status string `json:"status"` // ok, critical, unchecked
	// Changes are the differences found since Since, one line each
	// ("tandem_events_p_a: max_age is 1s, want 2160h0m0s").
	Changes []string `json:"changes,omitempty"`
	// Since is when the guard first found the streams changed.
	Since *time.Time `json:"since,omitempty"`
	// Restored tells whether the last restore succeeded; RestoreError says
	// why not.
	Restored     bool   `json:"restored,omitempty"`
	RestoreError string `json:"restore_error,omitempty"`
	// ClearsAt is when the state turns ok if the streams stay as restored.
	ClearsAt *time.Time `json:"clears_at,omitempty"`
	// Checked is the time of the last check; CheckError why it failed.
	Checked    *time.Time `json:"checked,omitempty"`
	CheckError string     `json:"check_error,omitempty"`
}

// AuditStatusReply is a node's answer.
type AuditStatusReply struct {
	Pair  string     `json:"pair"`
	State AuditState `json:"state"`
}

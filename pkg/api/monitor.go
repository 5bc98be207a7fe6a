package api

// SwitchoverReply is the monitor's answer to an accepted switchover
// request (F8): the request was taken; the outcome comes as events.
type SwitchoverReply struct {
	Pair     string `json:"pair"`
	Node     string `json:"node"`
	Accepted bool   `json:"accepted"`
}

// MaintenanceReply is the monitor's answer to a maintenance request (F10):
// the new setting and, when switched on, for how long (Go duration).
type MaintenanceReply struct {
	Pair        string `json:"pair"`
	Node        string `json:"node"`
	Maintenance bool   `json:"maintenance"`
	For         string `json:"for,omitempty"`
}

package main

// The parts of tandem status and tandem check, in one place: the monitors
// answer for the nodes (api.Combine); each service below adds its part to
// the node it is about, and prints its lines of the table after the nodes,
// in this order.

import (
	"io"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// head is the head of a request to pair.
func head(pair string) api.Request { return api.Request{V: api.Version, Pair: pair} }

// statusParts are the services' parts of the pair's status, asked at once
// beside the monitors (askPair), each named by its key in the node's JSON
// (the name api.NodeStatus.Unanswered lists it by).
var statusParts = []statusPart{
	newStatusPart("license", // the license service (L5)
		func(pair string) string { return subject.License(pair, subject.PairScope, api.VerbLicenseStatus) },
		func(pair string) any { return api.LicenseStatusRequest{Request: head(pair)} },
		func(r api.LicenseStatusReply) string { return r.State.Node },
		func(n *api.NodeStatus, r api.LicenseStatusReply) { n.License = &r.State }),
	newStatusPart("replication", // the replicator (R7)
		func(pair string) string { return subject.ReplAdmin(pair, api.VerbReplStatus) },
		func(pair string) any { return api.ReplRequest{Request: head(pair)} },
		func(r api.ReplReply) string { return r.Status.Node },
		func(n *api.NodeStatus, r api.ReplReply) { n.Replication = &r.Status }),
	newStatusPart("sessions", // the notifier (N1–N5)
		subject.NotifierStatus,
		func(pair string) any { return api.NotifierStatusRequest{Request: head(pair)} },
		func(r api.NotifierStatusReply) string { return r.Status.Node },
		func(n *api.NodeStatus, r api.NotifierStatusReply) { n.Sessions = &r.Status }),
	newStatusPart("audit", // the node's audit guard (A3)
		func(pair string) string { return subject.Admin(pair, subject.PairScope, api.VerbAuditStatus) },
		func(pair string) any { return api.AuditStatusRequest{Request: head(pair)} },
		func(r api.AuditStatusReply) string { return r.State.Node },
		func(n *api.NodeStatus, r api.AuditStatusReply) { n.Audit = &r.State }),
}

// statusLines print the services' parts of the table view, after the
// nodes and their checks.
var statusLines = []func(out io.Writer, ps api.PairStatus){
	licenseStatusLines,
	replStatusLines,
	sessionStatusLines,
	auditStatusLines,
}

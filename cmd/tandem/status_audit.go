package main

// The audit streams' part of tandem status and tandem check (SPEC §7 A3):
// each node's server part (tandem node, or tandem run nats in the split
// layout) answers with its audit guard's state; a node whose streams were
// changed behind its back is critical until they have been restored and
// stayed so.

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/subject"
)

func init() {
	statusParts = append(statusParts, newStatusPart(
		func(pair string) string { return subject.Admin(pair, subject.PairScope, api.VerbAuditStatus) },
		func(pair string) any {
			return api.AuditStatusRequest{Request: api.Request{V: api.Version, Pair: pair}}
		},
		func(r api.AuditStatusReply) string { return r.State.Node },
		func(n *api.NodeStatus, r api.AuditStatusReply) { n.Audit = r.State }))
	statusLines = append(statusLines, auditStatusLines)
}

// auditStatusLines prints one line per node once any node's server part
// answered: "audit a: ok", or what changed.
func auditStatusLines(out io.Writer, ps api.PairStatus) {
	if !anyNode(ps, func(n api.NodeStatus) bool { _, ok := n.Audit.(api.AuditState); return ok }) {
		return
	}
	for _, n := range ps.Nodes {
		s, ok := n.Audit.(api.AuditState)
		if !ok {
			fmt.Fprintf(out, "audit %s: %s\n", n.Node, noAnswer(n))
			continue
		}
		fmt.Fprintf(out, "audit %s: %s\n", n.Node, auditSummary(s))
	}
}

// auditSummary is a node's audit state in one line.
func auditSummary(s api.AuditState) string {
	if s.Status != api.AuditCritical {
		line := s.Status
		if s.CheckError != "" {
			line += " (last check failed: " + s.CheckError + ")"
		}
		return line
	}
	line := "CRITICAL: the event streams were changed"
	if s.Since != nil {
		line += " at " + s.Since.UTC().Format(time.RFC3339)
	}
	line += ": " + strings.Join(s.Changes, "; ")
	switch {
	case s.RestoreError != "":
		line += " — not restored: " + s.RestoreError
	case s.ClearsAt != nil:
		line += " — restored; ok from " + s.ClearsAt.UTC().Format(time.RFC3339) + " if it stays so"
	default:
		line += " — restored"
	}
	return line
}

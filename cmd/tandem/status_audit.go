package main

// The audit streams' part of tandem status and tandem check (SPEC §7 A3,
// statusParts): each node's server part (tandem node, or tandem run nats in
// the split layout) answers with its audit guard's state; a node whose streams were
// changed behind its back is critical until they have been restored and
// stayed so.

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/tandem-ha/tandem/pkg/api"
)

// auditStatusLines prints one line per node once any node's server part
// answered: "audit a: ok", or what changed.
func auditStatusLines(out io.Writer, ps api.PairStatus) {
	if !anyNode(ps, func(n api.NodeStatus) bool { return n.Audit != nil }) {
		return
	}
	for _, n := range ps.Nodes {
		if n.Audit == nil {
			fmt.Fprintf(out, "audit %s: %s\n", nodeName(n), noAnswer(n))
			continue
		}
		fmt.Fprintf(out, "audit %s: %s\n", n.Node, auditSummary(*n.Audit))
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

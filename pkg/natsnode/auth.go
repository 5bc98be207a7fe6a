package natsnode

// NATS users and their subject permissions (SPEC §9). This file is the one
// place that says who may publish and subscribe to what. nats.auth maps a
// role to the public nkey of its user; every role below becomes one user of
// account TANDEM on the node's server, with the permissions of its table
// entry, built from pkg/subject for this node's pair and name. Role users may
// connect only as ordinary clients (allowed_connection_types STANDARD): none of
// them can be used for a leaf connection, and the leaf user can be used for
// nothing else.
//
// The tables are allow lists: anything not listed is denied. Every role
// reads its replies (and its consumers' deliveries) under its own inbox
// prefix, InboxPrefix(role), which its clients set (ClientOptions, the CLI,
// tandem session, printq): a session cannot read the replicator's changes or
// the admins' replies. Services also get allow_responses, so they can answer
// requests wherever the reply subject points.
//
// Event subjects (tandem.<pair>.events.<node>.<kind>) are scoped per service
// to the kinds it emits on its own node: only the monitor may publish failover,
// switchover, peer and node events, only the replicator repl.*, only the
// notifier failover.notified, only the license service license.*. Every
// service may publish input.rejected, which they all emit (the subject does
// not say which service rejected the input; the envelope's source does). A new
// event type a service emits must be added to its list here.
//
// JetStream (SPEC §9, least privilege): each service may read any stream's
// info and messages and manage consumers on its own node, and create,
// update (and, the replicator, purge) only the streams and buckets it owns
// (jsFor). No service may create, update, purge or delete an event stream or
// its mirror, nor delete any stream or message, on its node or across the
// leaf ($JS.<domain>.API: consumers and reads only, jsPeer): the node's
// server part makes and configures the event streams under its own
// in-process identity. The nats role (the server part, should it connect
// over TCP) keeps the whole API but is denied every delete and purge.
// Sessions, printq and admins get narrow, read-only JetStream rights;
// sessions create no consumer at all (see stateWatch).

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tandem-ha/tandem/pkg/api"
	"github.com/tandem-ha/tandem/pkg/config"
	"github.com/tandem-ha/tandem/pkg/event"
	"github.com/tandem-ha/tandem/pkg/subject"
)

// InboxPrefix is the inbox prefix of role's clients (nats.CustomInboxPrefix):
// the only replies its user may subscribe to.
func InboxPrefix(role string) string { return "_INBOX_" + role }

// permissions is one user's allow lists (and publish deny list).
type permissions struct {
	pub, sub []string
	denyPub  []string
	// responses lets the user publish to the reply subject of a request it
	// received (allow_responses).
	responses bool
}

// Subjects shared by several roles.
const (
	jsAPI  = "$JS.API.>" // the node's own JetStream
	jsAck  = "$JS.ACK.>" // acks of pull consumers
	jsFlow = "$JS.FC.>"  // flow-control replies of push consumers
)

// jsRead is the JetStream API every service may use on its own node:
// account and stream info, message reads, and consumers (create, info,
// next, delete: ordered consumers recreate theirs).
var jsRead = []string{"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.INFO.*",
	"$JS.API.STREAM.MSG.GET.*", "$JS.API.DIRECT.GET.>", "$JS.API.CONSUMER.>"}

// jsPeer is what a service may do in another node's JetStream domain, across
// the leaf: read, and consumers.
var jsPeer = []string{"$JS.*.API.INFO", "$JS.*.API.STREAM.INFO.*", "$JS.*.API.STREAM.MSG.GET.*",
	"$JS.*.API.DIRECT.GET.>", "$JS.*.API.CONSUMER.>"}

// jsFor is a service's JetStream API: jsRead, plus create and update of the
// streams it owns, plus purge of those in purge.
func jsFor(own []string, purge ...string) []string {
	out := slices.Clone(jsRead)
	for _, name := range own {
		out = append(out, "$JS.API.STREAM.CREATE."+name, "$JS.API.STREAM.UPDATE."+name)
	}
	for _, name := range purge {
		out = append(out, "$JS.API.STREAM.PURGE."+name)
	}
	return out
}

// jsDestroy is what the nats role may not do although it has the whole API.
var jsDestroy = []string{"$JS.API.STREAM.DELETE.*", "$JS.API.STREAM.PURGE.*", "$JS.API.STREAM.MSG.DELETE.*",
	"$JS.*.API.STREAM.DELETE.*", "$JS.*.API.STREAM.PURGE.*", "$JS.*.API.STREAM.MSG.DELETE.*"}

// Events each service emits (see services/<name>); input.rejected is
// everybody's.
var (
	monitorEvents = []string{event.NodeStarted, event.NodeActivated, event.NodeDeactivated, event.NodeStalled,
		event.PeerLost, event.PeerFound, event.CollisionResolved, event.SwitchoverRequested,
		event.SwitchoverCompleted, event.SwitchoverRefused, event.SwitchoverRolledBack,
		event.MaintenanceChanged, event.HookFinished, event.FailoverSuppressed, event.InputRejected,
		event.CheckFailed, event.CheckRecovered, event.HealthCritical}
	replicatorEvents = []string{event.ReplPaused, event.ReplResumed, event.ReplSnapshot, event.ReplConflict,
		event.ReplStatusWritten, event.ReplBlocked, event.ReplRefused, event.InputRejected}
	notifierEvents = []string{event.FailoverNotified, event.InputRejected}
	licenseEvents  = []string{event.LicenseAdded, event.LicenseRefused, event.LicenseWarning,
		event.LicenseInvalid, event.LicenseValid, event.InputRejected}
)

// Admin verbs the monitor answers (services/monitor/transport.go).
var monitorVerbs = []string{"status", "switchover", "maintenance"}

// rolePermissions is the table: the permissions of role on node's server.
// The leaf role is not here: it is the leafnode authorization (see leafAuth).
func rolePermissions(role, pair, node string) permissions {
	events := func(types []string) []string {
		out := make([]string, len(types))
		for i, t := range types {
			out[i] = subject.Event(pair, node, t)
		}
		return out
	}
	inbox := InboxPrefix(role) + ".>"
	// jsClient is a service's JetStream rights with the streams it owns.
	jsClient := func(api []string) []string { return append(slices.Clone(api), jsAck, jsFlow, inbox) }
	stateStream := "KV_" + subject.StateBucket
	repl := subject.ReplStream(pair, node)
	stateKey := "$KV." + subject.StateBucket + "." + pair
	// Reading the pair's state: the bucket's info and its key by direct
	// get (sessions: the last value, N5; what changes comes as
	// notifications, re-announced, N7).
	stateRead := []string{
		"$JS.API.STREAM.INFO." + stateStream,
		"$JS.API.DIRECT.GET." + stateStream + "." + stateKey,
	}
	// Watching it (printq): an ordered consumer filtered on the key, its
	// number and inactivity bounded by the stream (notifier.state_consumers,
	// services/notifier/janitor.go). Sessions get no consumer at all:
	// nats-server 2.15 lets the creator of a consumer pick its deliver
	// subject without checking it (nats-io/nats-server#8274), lets a durable
	// be made through every named create form, and does not count a
	// consumer created with "direct" or "sourcing" set against
	// max_consumers, so only a session key that may create none is bounded.
	stateWatch := append(slices.Clone(stateRead),
		"$JS.API.CONSUMER.CREATE."+stateStream+".*."+stateKey,
		"$JS.FC."+stateStream+".>", // a watch's flow control
	)
	switch role {
	case config.RoleMonitor:
		// Publishes its heartbeats, coordination to the peer's monitor and
		// the failover/switchover/node events; hears heartbeats, its own
		// control subject, the link reports of the NATS process and the
		// admin verbs it answers.
		sub := []string{subject.Heartbeats(pair), subject.Control(pair, node), subject.Link(pair, node),
			subject.Admin(pair, subject.PairScope, "status"), inbox}
		for _, v := range monitorVerbs {
			sub = append(sub, subject.Admin(pair, node, v))
		}
		return permissions{
			// It asks its node's replicator whether it is in sync (F9).
			pub: append([]string{subject.Heartbeat(pair, node), subject.Control(pair, "*"), subject.ReplAdmin(pair, "repl.status")},
				append(events(monitorEvents), jsClient(jsFor(nil))...)...),
			sub:       sub,
			responses: true,
		}
	case config.RoleReplicator:
		// Ships its change batches, tells the peer how far it applied and
		// asks the peer for snapshots and the pieces of its large rows (core
		// and through the peer's JetStream domain); answers the peer's
		// snapshot and piece requests, the
		// notifier's configuration request and the pair's repl.* verbs;
		// hears the heartbeats (to learn the peer's name without hosts).
		return permissions{
			pub: append(append([]string{subject.ReplChanges(pair, node), subject.ReplApplied(pair, "*"),
				subject.ReplSnapshot(pair, "*"), subject.ReplChunk(pair, "*"), subject.ReplPiece(pair, "*")}, jsPeer...),
				append(events(replicatorEvents), jsClient(jsFor([]string{repl}, repl))...)...),
			sub: []string{subject.ReplApplied(pair, node), subject.ReplSnapshot(pair, node), subject.ReplChunk(pair, node), subject.ReplPiece(pair, node),
				subject.ReplConfig(pair, node), subject.ReplAdmin(pair, "repl.>"), subject.Heartbeats(pair), inbox},
			responses: true,
		}
	case config.RoleNotifier:
		// Publishes notifications (N1, N7), writes them as the pair's state
		// (KV put), and asks a replicator for the pair configuration; hears the sessions' acknowledgements,
		// its node's activations as they are published (the quick path
		// beside its consumer) and the heartbeats (to learn the peer's
		// name without hosts) and answers notifier.status; asks the peer's
		// notifier for the sessions it knows, and answers that for its own.
		return permissions{
			pub: append([]string{subject.Notify(pair), subject.ReplConfig(pair, "*"), subject.NotifierSessions(pair, "*"), stateKey},
				append(events(notifierEvents), jsClient(jsFor([]string{stateStream}))...)...),
			sub: append([]string{subject.Acks(pair), subject.AckBatches(pair), subject.NotifierStatus(pair),
				subject.NotifierSessions(pair, node), subject.Heartbeats(pair), inbox},
				events(event.ActivationTypes())...),
			responses: true,
		}
	case config.RoleLicense:
		// Publishes license events; writes (the master) and reads the
		// master's bucket (its own
		// JetStream, the master's domain for the mirror); hears the pair's
		// events and heartbeats (to learn the master) and its license verbs.
		// The standby challenges the master's license service for its
		// proof of contact (services/license/contact.go).
		return permissions{
			pub: append(append([]string{"$KV." + subject.LicenseBucket(pair) + ".>", subject.License(pair, "*", api.VerbLicenseChallenge)}, jsPeer...),
				append(events(licenseEvents), jsClient(jsFor([]string{"KV_" + subject.LicenseBucket(pair)}))...)...),
			sub: []string{subject.Events(pair), subject.Heartbeats(pair), subject.LicenseAll(pair, node),
				subject.LicenseAll(pair, subject.PairScope), inbox},
			responses: true,
		}
	case config.RoleNATS:
		// The node's NATS process, should it ever connect over TCP: it
		// reports the leaf link to the monitor and may set up streams.
		return permissions{pub: append([]string{subject.Link(pair, node)}, jsClient([]string{jsAPI})...), sub: []string{inbox},
			denyPub: jsDestroy}
	case config.RoleSession:
		// SPEC §9: reads the pair's notifications and state (no consumers:
		// see stateWatch), publishes acknowledgements. One key serves every
		// session, so it may acknowledge as any session of the pair
		// (per-client keys, SessionUsers, acknowledge as their own only).
		return permissions{
			pub: append([]string{subject.Acks(pair), subject.AckBatches(pair)}, stateRead...),
			sub: []string{subject.Notify(pair), inbox},
		}
	case config.RolePrintq:
		// A stand-in application on the node: reads and watches the pair's
		// state, reads notifications, publishes nothing of its own.
		return permissions{pub: stateWatch, sub: []string{subject.Notify(pair), inbox}}
	case config.RoleAdmin:
		// Operators: every admin and license verb of the pair, and
		// read-only JetStream (status, audit replay with ordered
		// consumers); no stream or bucket can be created, changed,
		// purged or deleted.
		return permissions{
			pub: []string{subject.Admin(pair, "*", ">"), subject.License(pair, "*", "*"),
				"$JS.API.INFO", "$JS.API.STREAM.NAMES", "$JS.API.STREAM.LIST", "$JS.API.STREAM.INFO.*",
				"$JS.API.STREAM.MSG.GET.*", "$JS.API.DIRECT.GET.>",
				"$JS.API.CONSUMER.CREATE.*", "$JS.API.CONSUMER.CREATE.*.>", "$JS.API.CONSUMER.INFO.*.*",
				"$JS.API.CONSUMER.MSG.NEXT.*.*", jsFlow},
			sub: []string{subject.Events(pair), inbox},
		}
	}
	panic(fmt.Sprintf("natsnode: no permissions for role %q", role))
}

// AuthUsers are the nats-server user entries (Options.Users) of the roles in
// auth (role → public nkey) on node's server; the leaf role is left out (see
// LeafAuthorization). Roles come out sorted, so the text is stable.
func AuthUsers(pair, node string, auth map[string]string) []string {
	var users []string
	for _, role := range slices.Sorted(maps.Keys(auth)) {
		if role == config.RoleLeaf {
			continue
		}
		users = append(users, userEntry(auth[role], rolePermissions(role, pair, node)))
	}
	return users
}

// LeafAuthorization is the leafnodes authorization body that admits the
// peer's leaf connection signed by the leaf key, into account TANDEM. The
// leaf connection carries the peer's services' traffic, so it is not
// restricted by subject: the leaf key is as strong as the whole account.
func LeafAuthorization(leafKey string) string {
	return fmt.Sprintf("nkey: %s, account: %s", q(leafKey), AppAccount)
}

func userEntry(key string, p permissions) string {
	list := func(s []string) string {
		quoted := make([]string, len(s))
		for i, x := range s {
			quoted[i] = q(x)
		}
		return "[" + strings.Join(quoted, ", ") + "]"
	}
	deny := ""
	if len(p.denyPub) > 0 {
		deny = ", deny: " + list(p.denyPub)
	}
	perm := fmt.Sprintf("publish: {allow: %s%s}, subscribe: {allow: %s}", list(p.pub), deny, list(p.sub))
	if p.responses {
		perm += ", allow_responses: true"
	}
	return fmt.Sprintf(`{nkey: %s, permissions: {%s}, allowed_connection_types: ["STANDARD"]}`, q(key), perm)
}

// SessionInboxPrefix is the inbox prefix of session name's clients: under
// the session role's, so one client works with the shared session key and
// with its own.
func SessionInboxPrefix(name string) string { return InboxPrefix(config.RoleSession) + "." + name }

// SessionUsers are the user entries of the per-client session keys
// (nats.sessions, tandem auth session): each may do what the session role
// may, but acknowledge only as its own session and read only its own
// replies.
func SessionUsers(pair string, sessions map[string]string) []string {
	var users []string
	for _, name := range slices.Sorted(maps.Keys(sessions)) {
		p := rolePermissions(config.RoleSession, pair, "")
		p.pub = slices.DeleteFunc(p.pub, func(s string) bool { return s == subject.Acks(pair) })
		p.pub = append(p.pub, subject.Ack(pair, name))
		p.sub = slices.DeleteFunc(p.sub, func(s string) bool { return strings.HasPrefix(s, InboxPrefix(config.RoleSession)) })
		p.sub = append(p.sub, SessionInboxPrefix(name)+".>")
		users = append(users, userEntry(sessions[name], p))
	}
	return users
}

package subject

// Notifier and session names (SPEC §5, §8, §9):
//
//	tandem.<pair>.notify                         notifications to the pair's sessions (subject.Notify)
//	tandem.<pair>.ack.<session>                  a session's acknowledgements and presence
//	tandem.<pair>.acks.<client>                  a batch of acknowledgements of a client's sessions
//	tandem.<pair>.admin.<node>.repl.config        the pair configuration, read from <node>'s database by its replicator
//	tandem.<pair>.admin._pair.notifier.status     session progress, answered by every node's notifier
//	tandem.<pair>.admin.<node>.notifier.sessions  the sessions <node>'s notifier knows (a restarted peer's catch-up)
//	KV tandem_state, key <pair>                  the last notification (each node's own bucket, own domain)
//
// A session's NATS user needs only: subscribe tandem.<pair>.notify, read
// the KV key (subscribe/request on $JS.API.STREAM.INFO.KV_tandem_state and
// $JS.API.DIRECT.GET.KV_tandem_state.$KV.tandem_state.<pair>) and publish
// tandem.<pair>.ack.<session>; nothing else (SPEC §9). A client that holds
// many sessions on one connection (a terminal server) acknowledges a
// notification for all of them in batches on tandem.<pair>.acks.<client>;
// its user needs that subject too, and may then acknowledge for any session
// of the pair, as a user allowed tandem.<pair>.ack.* may.

// Ack is the subject on which session acknowledges notifications of pair.
func Ack(pair, session string) string { return join(pair, "ack", session) }

// Acks matches every session's acknowledgements in pair.
func Acks(pair string) string { return join(pair, "ack", "*") }

// AckBatch is the subject on which client, holding many sessions of pair,
// publishes their acknowledgements in batches (api.DecodeAckBatch).
func AckBatch(pair, client string) string { return join(pair, "acks", client) }

// AckBatches matches every client's batches in pair.
func AckBatches(pair string) string { return join(pair, "acks", "*") }

// NotifierStatusVerb is the admin verb of the notifier's status (scope
// PairScope: every node's notifier answers).
const NotifierStatusVerb = "notifier.status"

// ReplConfigVerb is the admin verb, answered by a node's replicator, that
// returns the pair configuration read from that node's database (see
// pkg/api/notifier.go for the contract).
const ReplConfigVerb = "repl.config"

// ReplConfig is the request subject for the pair configuration held in
// node's database.
func ReplConfig(pair, node string) string { return Admin(pair, node, ReplConfigVerb) }

// NotifierStatus is the request subject of the notifier status, answered by
// every node.
func NotifierStatus(pair string) string { return Admin(pair, PairScope, NotifierStatusVerb) }

// NotifierSessionsVerb is the admin verb, answered by a node's notifier,
// that lists the sessions it knows, a page at a time: a notifier that
// starts asks its peer's, so that it knows the sessions before they
// reconnect to it.
const NotifierSessionsVerb = "notifier.sessions"

// NotifierSessions is the request subject of the sessions node's notifier
// knows.
func NotifierSessions(pair, node string) string { return Admin(pair, node, NotifierSessionsVerb) }

// ValidSession reports whether s is a valid session name: 1–64 of
// [A-Za-z0-9_-], starting with a letter or digit. Session names are one
// subject token.
func ValidSession(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '-')) {
			return false
		}
	}
	return true
}

// Package session is the Go client library of Tandem's sessions (SPEC §5):
// a terminal-server session or workstation that holds connections to
// resources (printer queues, lines) on the active node of a pair and must
// move them when the pair fails over.
//
// A Client made by Dial with both nodes' URLs holds a NATS connection to
// each node, so that a node's death leaves its sessions on the survivor
// without a reconnect; New follows the pair on the caller's one
// connection. On each connection a Client follows the pair's notifications
// (subject.Notify) and, on connect and after every reconnect, reads the
// current state (key <pair> of bucket subject.StateBucket on that node), so
// a session that connects late converges at once (N5). A notification that
// arrives on both connections (the pair's leaf link carries it to both
// servers) is taken once: the same bytes on the other connection within a
// second are its echo. Acknowledgements go on the connection that
// delivered the notification, else on a connected one. Many sessions share
// one Client, as a terminal server holds them (100 Clients for 10,000
// sessions).
//
// Each Session applies every notification newer than the last it applied,
// exactly once: it rewrites only the connections that point at the failed
// node (Rewrite), keeping each connection's settings (N2), and acknowledges
// on subject.Ack(pair, session) with what it switched. When one
// notification makes several sessions of a Client acknowledge, the Client
// sends their acknowledgements in batches on subject.AckBatch(pair, client)
// (api.DecodeAckBatch): one message per connection instead of one per
// session; the onChange callbacks run after the batch is sent. Older notifications
// (a node that was cut off, a replay) are ignored; a re-announcement of the
// epoch it is at (N7) is answered with a fresh acknowledgement, so the
// notifier's count converges even if an acknowledgement was lost while the
// connection was down. On a Client's one connection, a state read that
// finds the epoch the sessions are at is not answered (after a node's death
// its sessions would send 10,000 such acknowledgements to the survivor just
// as it activates); on a connection to each node it is (that connection
// comes back to a restarted node, whose notifier must learn the sessions
// again). Watchers see it all the same.
//
// A Client made by Dial reconnects forever, pausing ReconnectDelay (50 ms
// doubling to 2 s, with jitter) between rounds in which no server accepted;
// a connection over several servers (one or three URLs, a hub's) tries the
// next at once.
//
// A session agent that moves the operating system's connections (tandem
// session --driver cups|windows|exec) does not use a Session: it follows the
// Client's notifications with Watch, carries them out on its own goroutine
// and acknowledges what it really changed, and what it could not, with
// PublishAck.
//
// # Concurrency
//
// The Client's mutex guards its newest notification and the set of
// sessions. Notifications arrive on each connection's subscription
// goroutine; the state is read by one refresher goroutine per connection
// (started by the Client, stopped by Close) whenever it (re)connects. Both hand notifications to
// the sessions, whose own mutex guards their connections and epoch; a
// session's onChange callback runs on the goroutine that applied the change,
// outside that mutex (a notification and a state read applying two new
// epochs at the same moment may call it concurrently). The last
// notification decoded in the process is kept (an atomic pointer) for the
// other Clients that receive the same bytes.
package session

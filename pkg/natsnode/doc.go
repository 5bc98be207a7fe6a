// Package natsnode runs a node's embedded NATS server, the bus every Tandem
// service of that node talks through (SPEC §2, NOTES "NATS between the two
// nodes").
//
// # Topology
//
// Each node of a pair runs its own standalone server with JetStream in its own
// domain, subject.ServerName(pair, node), which is also the server name. The
// two servers are joined by one leafnode connection that exactly one node
// solicits: the standby (Options.Solicit); both soliciting would close one link
// as a loop. The remote sets ignore_discovered_servers and the listener sets
// no_advertise, so the soliciting node keeps dialing the configured URL (a
// proxy or a NAT address) instead of the peer's own idea of its address.
//
// # Accounts
//
// Two explicit accounts: SYS (the system account) and TANDEM (the application
// account, JetStream enabled). The leafnode joins the TANDEM accounts of both
// nodes: the remote binds its local side to TANDEM, and the accepting side maps
// the credential-less leaf connection to TANDEM through no_auth_user. Core
// subjects of TANDEM cross the link both ways; each server's JetStream API
// stays local (the domains differ), a peer's JetStream is reached as
// $JS.<domain>.API.
//
// The default identity of TANDEM is an nkey user generated at each start whose
// seed is thrown away: nobody can log in as it, clients that present no
// credentials are mapped to it (no_auth_user). In the open demo setup (the zero
// value of the auth fields) that includes loopback TCP clients and the peer's
// leaf connection. The seam for production credentials (issue 7) is
// Options.Users, Options.LeafAuthorization and Options.RequireAuth:
// RequireAuth limits the credential-less identity to in-process clients, so
// everything else must present one of Users (or LeafAuthorization for the
// peer's leaf connection, whose user and password then go into Peer's URL).
// FromConfig fills them from nats.auth (one user per role, permissions in
// auth.go, the leaf role as the leafnode authorization, signed by the
// standby's remote with nats.leaf_creds) and nats.tls (TLS on the client and
// leafnode ports, mutual on the leaf port with nats.tls.verify).
// SYS has one nkey user, also generated at each start and allowed only in
// process; the server uses it to watch its own connection advisories.
//
// # Keepalive
//
// ping_interval 1s and ping_max 3 are server-wide (nats-server has no separate
// leafnode keepalive): a silently dead link is closed at the ping tick that
// finds 3 pings unanswered, measured 4.0–4.1 s after a cut on both sides,
// instead of minutes with the defaults (2 min × 2). write_deadline is 3 s, so
// a link whose writes block cannot outlive a silent one. The leaf remote
// redials every 100–200 ms (reconnect 100 ms plus nats-server's jitter).
//
// # Link events
//
// LinkEvents reports every change of the leaf link, and Linked the latest
// state. The link is up while the server has an established leaf connection
// in account TANDEM (a future hub link, bound to another account, does not
// count). The server's own connection advisories for TANDEM
// ($SYS.ACCOUNT.TANDEM.CONNECT and .DISCONNECT, received by an in-process SYS
// client) wake a watcher that counts those connections (Leafz); as an
// advisory could overtake the server's bookkeeping, the watcher re-reads the
// count every millisecond for up to 100 ms until it changes (measured: it
// never needed to). A 1 s tick re-reads the count as a safety net.
//
// Measured on a 2-core machine: a peer's closed socket becomes a LinkEvent in
// 0.2–0.4 ms median without and 1.4 ms with the race detector (max 6 ms with
// both cores saturated); a peer's Shutdown about 1–2.5 ms after it was called.
// A silent link (partition) is reported when the pings close it (about 4 s).
// Idle cost is one wake-up per second plus one small JSON advisory
// per client connection or disconnection in TANDEM; polling the count every
// 2–5 ms instead would cost 1.2–3.4 % of a core per server.
//
// # Concurrency
//
// Start returns a Server whose watcher goroutine owns the link state: it alone
// writes Server.linked and sends on the events channel; the advisory handler
// (the nats.go subscription goroutine) only pokes the watcher through a
// channel of size 1. Shutdown stops the watcher, then the server, and closes
// the events channel. All methods are safe for concurrent use.
package natsnode

package subject

// The fleet hub (SPEC §11): names on the hub cluster's servers.

// HubDomain is the JetStream domain of the hub cluster.
const HubDomain = "hub"

// FleetBucket is the hub's KV bucket of every pair's current status (key:
// the pair; value: the `tandem status --json` object).
const FleetBucket = "tandem_fleet"

// FleetStream is the hub's stream of every pair's events.
const FleetStream = "tandem_fleet_events"

// FleetEvents is the subject filter of FleetStream: every pair's events.
const FleetEvents = Root + ".*.events.>"

// FleetKey is the subject a pair's status is written on in FleetBucket.
func FleetKey(pair string) string { return "$KV." + FleetBucket + "." + pair }

// StateKey is the subject a pair's last notification is written on in
// StateBucket.
func StateKey(pair string) string { return "$KV." + StateBucket + "." + pair }

// UplinkQueue is the queue group the two nodes of a pair use for what they
// take from the hub (admin requests, acknowledgements), so that the hub hands
// each message to one of them.
func UplinkQueue(pair string) string { return "tandem_uplink_" + pair }

// ViaHub is the subject under which a KV subject (FleetKey, StateKey) is
// reached across a leafnode: nats-server denies $KV.> on leaf connections
// and maps $JS.<domain>.API.$KV.> to it in the hub's domain.
func ViaHub(kvSubject string) string { return "$JS." + HubDomain + ".API." + kvSubject }

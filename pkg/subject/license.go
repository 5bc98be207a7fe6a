package subject

// License service names (SPEC §6):
//
//	tandem.<pair>.license.<node>.<verb>    license admin request/reply handled by <node>'s license service
//	tandem.<pair>.license._pair.<verb>     license request answered by every node (list, check, status)
//	tandem.<pair>.mirror.<origin>.license  delivery of the master's license bucket to the standby's mirror
//
// License requests have their own kind token, not admin: the monitor answers
// every verb under tandem.<pair>.admin.<node>.> itself (unknown verbs with an
// error), so a second service there would race it for the reply.

// License is the request subject of a license verb handled by node's license
// service (or by every node's when node is PairScope).
func License(pair, node, verb string) string { return join(pair, "license", node, verb) }

// LicenseAll matches every license request node handles.
func LicenseAll(pair, node string) string { return join(pair, "license", node, "*") }

// LicenseBucket is the KV bucket of the pair's licenses and the master's
// lease. The master owns it; the standby keeps a mirror under the same name.
func LicenseBucket(pair string) string { return "tandem_license_" + pair }

// LicenseMirrorDeliver is where the master's durable mirror consumer
// delivers the license bucket to the standby's mirror.
func LicenseMirrorDeliver(pair, origin string) string { return join(pair, "mirror", origin, "license") }

// LicenseMirrorConsumer is the name of the durable consumer on the master's
// license bucket that feeds the standby's mirror.
const LicenseMirrorConsumer = "tandem_license_mirror"

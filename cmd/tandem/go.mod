module github.com/tandem-ha/tandem/cmd/tandem

go 1.26.0

require (
	github.com/tandem-ha/tandem/pkg v0.0.0-00010101000000-000000000000
	github.com/tandem-ha/tandem/services/license v0.0.0-00010101000000-000000000000
	github.com/tandem-ha/tandem/services/monitor v0.0.0-00010101000000-000000000000
	github.com/tandem-ha/tandem/services/notifier v0.0.0-00010101000000-000000000000
	github.com/tandem-ha/tandem/services/replicator v0.0.0-00010101000000-000000000000
)

replace (
	github.com/tandem-ha/tandem/pkg => ../../pkg
	github.com/tandem-ha/tandem/services/license => ../../services/license
	github.com/tandem-ha/tandem/services/monitor => ../../services/monitor
	github.com/tandem-ha/tandem/services/notifier => ../../services/notifier
	github.com/tandem-ha/tandem/services/replicator => ../../services/replicator
)

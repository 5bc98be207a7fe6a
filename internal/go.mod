module github.com/tandem-ha/tandem/internal

go 1.26.0

replace (
	github.com/tandem-ha/tandem/pkg => ../pkg
	github.com/tandem-ha/tandem/services/license => ../services/license
	github.com/tandem-ha/tandem/services/monitor => ../services/monitor
	github.com/tandem-ha/tandem/services/notifier => ../services/notifier
	github.com/tandem-ha/tandem/services/replicator => ../services/replicator
)

require (
	github.com/nats-io/nats.go v1.56.0
	github.com/tandem-ha/tandem/pkg v0.0.0-00010101000000-000000000000
	golang.org/x/sys v0.50.0
)

require (
	github.com/ThreeDotsLabs/watermill v1.5.1 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/lithammer/shortuuid/v3 v3.0.7 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/oklog/ulid v1.3.1 // indirect
	github.com/rs/zerolog v1.35.1 // indirect
	golang.org/x/crypto v0.58.0 // indirect
)

module github.com/tandem-ha/tandem/services/replicator

go 1.26.0

require (
	github.com/rs/zerolog v1.35.1
	github.com/tandem-ha/tandem/pkg v0.0.0-00010101000000-000000000000
)

require (
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	golang.org/x/sys v0.49.0 // indirect
	gopkg.in/yaml.v3 v3.0.1 // indirect
)

replace github.com/tandem-ha/tandem/pkg => ../../pkg
